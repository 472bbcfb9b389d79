// Engine acceptance: docker-compose with docker-cni networks, with both
// Compose v1 (the Python docker-compose) and Compose v2 (the Go CLI plugin,
// run standalone): a network declared in the compose file (driver,
// driver_opts, ipam driver and subnet), --scale, an external network, and
// `down` leaving nothing behind.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  REPO_ROOT,
  docker,
  engineSkipReason,
  freeSubnet,
  randomHex,
  setupEngineSuite,
  waitFor,
  type EngineScope,
} from '../../helpers/engine.js';
import { assertServes, featureCase, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 300_000;
/** The compose implementations every test runs with; test/run.mjs points v2 at the fetched CLI plugin. */
const COMPOSES = [
  { name: 'v1', bin: process.env.DOCKER_COMPOSE_BIN ?? '/usr/bin/docker-compose' },
  { name: 'v2', bin: process.env.DOCKER_CNI_TEST_COMPOSE2_BIN ?? '/usr/libexec/docker/cli-plugins/docker-compose' },
] as const;
type Compose = (typeof COMPOSES)[number];
const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'compose');
const skip = await engineSkipReason();

interface Project {
  name: string;
  file: string;
  compose(args: string[], timeoutMs?: number): Promise<string>;
}

/** Writes a fixture with its placeholders filled into a temp dir; `down` is registered as cleanup. */
async function project(impl: Compose, s: EngineScope, fixture: string, values: Record<string, string>): Promise<Project> {
  const dir = await mkdtemp(join(tmpdir(), 'cnit-compose-'));
  s.defer(`rm -r ${dir}`, () => rm(dir, { recursive: true, force: true }));
  let text = await readFile(join(FIXTURES, fixture), 'utf8');
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`__${key}__`, value);
  assert.ok(!/__[A-Z]+__/.test(text.replace(/^#.*$/gm, '')), `unfilled placeholder in ${fixture}`);
  const file = join(dir, 'docker-compose.yml');
  await writeFile(file, text);
  const name = `cnitc${randomHex(8)}`;
  const compose = async (args: string[], timeoutMs = 180_000): Promise<string> => {
    const result = await execa(impl.bin, ['-p', name, '-f', file, ...args], {
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
      // Compose v2's client refuses dockerd 20.10's API unless told to use it.
      env: { DOCKER_HOST: 'unix:///var/run/docker.sock', ...(impl.name === 'v2' ? { DOCKER_API_VERSION: await serverApiVersion() } : {}) },
    });
    if (result.exitCode !== 0) throw new Error(`docker-compose ${impl.name} ${args.join(' ')} failed: ${String(result.stderr)}${String(result.stdout)}`);
    return String(result.stdout).trim();
  };
  s.defer(`docker-compose -p ${name} down`, () => compose(['down', '--remove-orphans', '-t', '2']));
  return { name, file, compose };
}

/** GET / of `host`:80 from inside the client service (busybox nc; wget is unreliable in this image). */
async function fetchFromClient(p: Project, host: string): Promise<string> {
  const out = await p.compose(['exec', '-T', 'client', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 80`], 30_000);
  return out.split(/\r?\n\r?\n/).slice(1).join('\n').trim();
}

let apiVersion: Promise<string> | undefined;
function serverApiVersion(): Promise<string> {
  apiVersion ??= docker(['version', '--format', '{{.Server.APIVersion}}']);
  return apiVersion;
}

function composeOrSkip(t: TestContext, impl: Compose): boolean {
  if (existsSync(impl.bin)) return true;
  const why = `compose ${impl.name} (${impl.bin}) is missing${impl.name === 'v2' ? ': run test/engines/fetch or set DOCKER_CNI_TEST_COMPOSE2_BIN' : ''}`;
  if (process.env.CI === 'true') throw new Error(why);
  t.skip(why);
  return false;
}

describe('engine: docker-compose v1 and v2', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  for (const impl of COMPOSES) {
    test(`compose ${impl.name}: a compose network (driver, driver_opts, ipam): client reaches web by service name, the published port answers, down leaves nothing`, { timeout: TEST_TIMEOUT }, async (t) => {
      if (!composeOrSkip(t, impl)) return;
      await featureCase(plugin(), async (s) => {
        const port = String(21_000 + Math.floor(Math.random() * 8_900));
        const body = `compose${randomHex(6)}`;
        const subnet = await freeSubnet();
        const bridge = testBridgeName(randomHex(8));
        const p = await project(impl, s, 'web-client.yml', { DRIVER: plugin().driver, SUBNET: subnet, BRIDGE: bridge, PORT: port, BODY: body });
        await p.compose(['up', '-d']);
        const network = JSON.parse(await docker(['network', 'inspect', `${p.name}_appnet`])) as Array<{ Driver: string; IPAM: { Driver: string; Config: Array<{ Subnet: string }> } }>;
        assert.equal(network[0]?.Driver, plugin().driver);
        assert.equal(network[0]?.IPAM.Driver, plugin().driver);
        assert.equal(network[0]?.IPAM.Config[0]?.Subnet, subnet);
        assert.ok(existsSync(`/sys/class/net/${bridge}`), `driver_opts bridge name ${bridge} not used`);
        await waitFor(async () => (await fetchFromClient(p, 'web')) === body, { timeoutMs: 15_000, what: 'client to fetch from web by name' });
        await assertServes('127.0.0.1', Number(port), body);

        await p.compose(['down', '-t', '2']);
        await assert.rejects(docker(['network', 'inspect', `${p.name}_appnet`]), /No such network/);
        assert.ok(!existsSync(`/sys/class/net/${bridge}`), `bridge ${bridge} left after down`);
      });
    });

    test(`compose ${impl.name}: --scale web=5: five web containers, each reachable from the client`, { timeout: TEST_TIMEOUT }, async (t) => {
      if (!composeOrSkip(t, impl)) return;
      await featureCase(plugin(), async (s) => {
        const p = await project(impl, s, 'scaled.yml', { DRIVER: plugin().driver, SUBNET: await freeSubnet(), BRIDGE: testBridgeName(randomHex(8)) });
        await p.compose(['up', '-d', '--scale', 'web=5'], 240_000);
        const webIds = (await p.compose(['ps', '-q', 'web'])).split('\n').filter(Boolean);
        assert.equal(webIds.length, 5);
        // Docker's DNS returns every replica for the service name.
        const lookup = await p.compose(['exec', '-T', 'client', 'nslookup', 'web', '127.0.0.11'], 30_000);
        const addresses = [...lookup.matchAll(/Address:\s+(10\.231\.\d+\.\d+)/g)].map((m) => m[1] ?? '');
        assert.equal(new Set(addresses).size, 5, `nslookup web gave ${JSON.stringify(addresses)}`);
        const hostnames = new Set<string>();
        for (const address of addresses) {
          hostnames.add(await waitFor(async () => (await fetchFromClient(p, address)) || undefined, { timeoutMs: 15_000, what: `web at ${address}` }));
        }
        assert.equal(hostnames.size, 5, `expected 5 distinct web replicas, got ${[...hostnames].join(', ')}`);
      });
    });

    test(`compose ${impl.name}: an external network created beforehand with docker network create -d <driver>`, { timeout: TEST_TIMEOUT }, async (t) => {
      if (!composeOrSkip(t, impl)) return;
      await featureCase(plugin(), async (s) => {
        const network = await s.createNetwork({ subnet: await freeSubnet(), options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) } });
        const body = `ext${randomHex(6)}`;
        const p = await project(impl, s, 'external.yml', { NETWORK: network.name, BODY: body });
        await p.compose(['up', '-d']);
        await waitFor(async () => (await fetchFromClient(p, 'web')) === body, { timeoutMs: 15_000, what: 'client to fetch from web by name' });
        await p.compose(['down', '-t', '2']);
        // down leaves an external network alone.
        assert.equal((JSON.parse(await docker(['network', 'inspect', network.name])) as unknown[]).length, 1);
      });
    });
  }
});

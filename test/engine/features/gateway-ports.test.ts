// Engine acceptance: published ports on containers with several networks.
// Docker publishes a container's ports once, through the endpoint that is its
// gateway (ProgramExternalConnectivity), and docker-cni must do the same,
// whichever driver the other networks have. Docker's own bridge driver is the
// oracle: the gateway-move test runs the same steps on it. Every connection
// goes from the host to 127.0.0.1.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT, docker, endpointIdOf, engineSkipReason, freeSubnet, randomHex, setupEngineSuite, uniqueName, TEST_IMAGE, type EngineScope } from '../../helpers/engine.js';
import { assertServes, featureCase, reportedPorts, tcpRefused, testBridgeName, webServerCommand } from './feature-helpers.js';
import type { PluginHandle } from '../../helpers/engine.js';

const TEST_TIMEOUT = 300_000;
const skip = await engineSkipReason();
const COMPOSE_V1 = process.env.DOCKER_COMPOSE_BIN ?? '/usr/bin/docker-compose';

async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 30_000 + Math.floor(Math.random() * 9_000);
    if (await tcpRefused('127.0.0.1', port, 500)) return port;
  }
  throw new Error('no free host port');
}

async function cniNetwork(s: EngineScope, name?: string): Promise<string> {
  const created = await s.createNetwork({
    subnet: await freeSubnet(),
    options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) },
    ...(name ? { name } : {}),
  });
  return created.name;
}

async function bridgeNetwork(s: EngineScope, name = uniqueName('cnit-br')): Promise<string> {
  await docker(['network', 'create', '-d', 'bridge', '--subnet', await freeSubnet(), '-o', `com.docker.network.bridge.name=${testBridgeName(randomHex(8))}`, name]);
  s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
  return name;
}

async function runWeb(s: EngineScope, network: string, port: number, body: string): Promise<string> {
  const name = uniqueName('cnit-web');
  s.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
  await docker(['run', '-d', '--name', name, '--network', network, '--label', 'docker-cni-test=1', '-p', `127.0.0.1:${port}:80`, TEST_IMAGE, ...webServerCommand(body)]);
  return name;
}

/** ProgramExternalConnectivity / RevokeExternalConnectivity calls the plugin logged since `from`, in order. */
function connectivityCalls(plugin: PluginHandle, from: number): string[] {
  return plugin
    .logTail(100_000, from)
    .split('\n')
    .filter((line) => line.includes('"plugin call"'))
    .map((line) => /"rpc":"\/?NetworkDriver\.(\w+)"/.exec(line)?.[1])
    .filter((rpc): rpc is string => rpc === 'ProgramExternalConnectivity' || rpc === 'RevokeExternalConnectivity')
    .map((rpc) => (rpc === 'ProgramExternalConnectivity' ? 'program' : 'revoke'));
}

/** Endpoints of ours that publish the port now. */
async function publishers(plugin: PluginHandle, port: number): Promise<string[]> {
  return (await reportedPorts(plugin)).filter((e) => e.ports.some((p) => p.hostPort === port)).map((e) => e.endpoint);
}

describe('engine: published ports through the gateway endpoint', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('compose: a service on two docker-cni networks with ports: comes up and answers; down leaves nothing', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const dir = await mkdtemp(join(tmpdir(), 'cnit-compose-'));
      s.defer(`rm -r ${dir}`, () => rm(dir, { recursive: true, force: true }));
      const port = await freePort();
      const body = `two${randomHex(6)}`;
      const values: Record<string, string> = {
        DRIVER: plugin().driver,
        SUBNET1: await freeSubnet(),
        SUBNET2: await freeSubnet(),
        BRIDGE1: testBridgeName(randomHex(8)),
        BRIDGE2: testBridgeName(randomHex(8)),
        PORT: String(port),
        BODY: body,
      };
      let text = await readFile(join(REPO_ROOT, 'test', 'fixtures', 'compose', 'two-networks.yml'), 'utf8');
      for (const [key, value] of Object.entries(values)) text = text.replaceAll(`__${key}__`, value);
      const file = join(dir, 'docker-compose.yml');
      await writeFile(file, text);
      const project = `cnitc${randomHex(8)}`;
      const compose = async (args: string[]): Promise<void> => {
        const r = await execa(COMPOSE_V1, ['-p', project, '-f', file, ...args], { reject: false, timeout: 180_000, stdin: 'ignore' });
        if (r.exitCode !== 0) throw new Error(`docker-compose ${args.join(' ')} failed: ${String(r.stderr)}`);
      };
      s.defer(`docker-compose -p ${project} down`, () => compose(['down', '-t', '2']));
      const from = plugin().logSize();
      await compose(['up', '-d']);
      await assertServes('127.0.0.1', port, body);
      // At start Docker joins a container's networks in Go map order, so the
      // gateway may move once (program, revoke, program). Where it ends is
      // fixed: both networks have a gateway, so the one whose name sorts first.
      const gatewayNetwork = `${project}_back`;
      const container = `${project}_web_1`;
      assert.deepEqual(await publishers(plugin(), port), [await endpointIdOf(container, gatewayNetwork)], 'the gateway endpoint, and only it, publishes the port');
      const calls = connectivityCalls(plugin(), from);
      assert.ok(
        [['program'], ['program', 'revoke', 'program']].some((allowed) => JSON.stringify(allowed) === JSON.stringify(calls)),
        `Docker programs the gateway endpoint only, moving it at most once: ${JSON.stringify(calls)}`,
      );
      await compose(['down', '-t', '2']);
      assert.ok(await tcpRefused('127.0.0.1', port), 'the port still answers after down');
    }));

  test('a container on a Docker bridge network, connected to a docker-cni network: the bridge keeps the port', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      // Named to sort after the first network, so connecting it does not take the gateway.
      const bridge = await bridgeNetwork(s, uniqueName('cnit-a'));
      const cni = await cniNetwork(s, uniqueName('cnit-z'));
      const port = await freePort();
      const body = `bf${randomHex(6)}`;
      const web = await runWeb(s, bridge, port, body);
      const from = plugin().logSize();
      await docker(['network', 'connect', cni, web]);
      await assertServes('127.0.0.1', port, body);
      const ours = await endpointIdOf(web, cni);
      const published = await publishers(plugin(), port);
      const calls = connectivityCalls(plugin(), from);
      // Docker names the gateway; if it chose ours, ours publishes, and only then.
      assert.deepEqual(published, calls.includes('program') ? [ours] : []);
      assert.deepEqual(calls, [], 'connecting a second network does not move the gateway off the bridge network');
      await docker(['rm', '-f', web]);
      assert.ok(await tcpRefused('127.0.0.1', port));
    }));

  test('a container on a docker-cni network, connected to a Docker bridge network: ours keeps the port', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const cni = await cniNetwork(s, uniqueName('cnit-a'));
      const bridge = await bridgeNetwork(s, uniqueName('cnit-z'));
      const port = await freePort();
      const body = `cf${randomHex(6)}`;
      const web = await runWeb(s, cni, port, body);
      await assertServes('127.0.0.1', port, body);
      const from = plugin().logSize();
      await docker(['network', 'connect', bridge, web]);
      await assertServes('127.0.0.1', port, body);
      assert.deepEqual(await publishers(plugin(), port), [await endpointIdOf(web, cni)]);
      assert.deepEqual(connectivityCalls(plugin(), from), []);
      await docker(['rm', '-f', web]);
      assert.ok(await tcpRefused('127.0.0.1', port));
    }));

  test('network disconnect of the gateway network: the port follows Docker\'s bridge semantics', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const outcome = async (make: (name: string) => Promise<string>): Promise<{ before: boolean; after: boolean }> => {
        // Names sort a before b, so the first network stays the gateway on connect.
        const tag = randomHex(6);
        const a = await make(`cnit-a${tag}`);
        const b = await make(`cnit-b${tag}`);
        const port = await freePort();
        const body = `mv${randomHex(6)}`;
        const web = await runWeb(s, a, port, body);
        await docker(['network', 'connect', b, web]);
        const before = !(await tcpRefused('127.0.0.1', port));
        await docker(['network', 'disconnect', a, web]);
        let after = false;
        try {
          await assertServes('127.0.0.1', port, body, 5_000);
          after = true;
        } catch {
          after = false;
        }
        await docker(['rm', '-f', web]);
        assert.ok(await tcpRefused('127.0.0.1', port), 'the port answers after rm -f');
        return { before, after };
      };
      const docker_ = await outcome((name) => bridgeNetwork(s, name));
      const from = plugin().logSize();
      const ours = await outcome((name) => cniNetwork(s, name));
      assert.deepEqual(ours, docker_, 'docker-cni and Docker\'s bridge differ after the gateway network is disconnected');
      assert.deepEqual(connectivityCalls(plugin(), from), ['program', 'revoke', 'program', 'revoke'], 'the sequence of calls Docker sends changed');
    }));

  test('a plugin restart between publish and removal: the port answers, then rm -f leaves nothing', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const cni = await cniNetwork(s);
      const port = await freePort();
      const body = `rs${randomHex(6)}`;
      const web = await runWeb(s, cni, port, body);
      await assertServes('127.0.0.1', port, body);
      await plugin().restart();
      await assertServes('127.0.0.1', port, body);
      await docker(['rm', '-f', web]);
      assert.ok(await tcpRefused('127.0.0.1', port));
      assert.deepEqual(await publishers(plugin(), port), []);
    }));
});

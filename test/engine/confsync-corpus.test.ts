// Engine acceptance: the real-world conflist corpus (test/fixtures/conflists)
// through the conf-dir sync. Each conflist, made unique for the run (name,
// bridge, subnets, macvlan/ipvlan parent), is dropped into the plugin's conf
// dir and used only by name: two containers reach each other by address and
// by name, a published port answers where the chain has portmap. After the
// containers and the file are gone the network goes, and with it the bridge
// and the firewall plugin's per-bridge rules: the host snapshot must be as
// before, with no cleanup by the test of what docker-cni should remove.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  TEST_IMAGE,
  assertPings,
  containerIp,
  docker,
  dockerNetworkExists,
  engineSkipReason,
  freeSubnet,
  hostLinkExists,
  randomHex,
  setupEngineSuite,
  uniqueName,
  waitFor,
  type EngineScope,
} from '../helpers/engine.js';
import { assertServes, featureCase, firewallSpeaks110, testBridgeName, webServerCommand } from './features/feature-helpers.js';

const TEST_TIMEOUT = 120_000;
const CORPUS = fileURLToPath(new URL('../fixtures/conflists/', import.meta.url));
const skip = await engineSkipReason();
const files = (await readdir(CORPUS)).filter((f) => f.endsWith('.conflist')).sort();

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Conflist = { name: string; plugins: Array<{ [key: string]: Json }> } & { [key: string]: Json };

interface Rewritten {
  conflist: Conflist;
  /** Bridges the chain makes (docker-cni must remove them with the network). */
  bridges: string[];
  /** The /64 of a dual-stack conflist. */
  v6Subnet?: string;
}

/** Replaces every string in a JSON value by `map(string)`. */
function mapStrings(value: Json, map: (s: string) => string): Json {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, map)]));
  return value;
}

/**
 * The fixture made unique for this run: each 10.236.N.0/24 becomes a free
 * 10.231.X.0/24 (addresses keep their last octet), the IPv6 /64 one derived
 * from it, each bridge a cnitb* name, each master the case's parent link.
 */
async function rewrite(s: EngineScope, fixture: Conflist): Promise<Rewritten | { unsupported: string }> {
  const text = JSON.stringify(fixture);
  const prefixes = new Map<string, string>();
  for (const [, third] of text.matchAll(/"10\.236\.(\d+)\./g)) {
    if (third !== undefined && !prefixes.has(third)) prefixes.set(third, (await freeSubnet()).split('.').slice(0, 3).join('.'));
  }
  const firstPrefix = [...prefixes.values()][0] ?? '';
  // fd7d:c11d:4e7:2XX::/64, XX from the free IPv4 /24: unique together with it, apart from the other IPv6 tests' ranges.
  const v6Prefix = `fd7d:c11d:4e7:${(0x200 + Number(firstPrefix.split('.')[2] ?? 0)).toString(16)}:`;
  let v6Subnet: string | undefined;
  const bridges: string[] = [];
  const plugins = [];
  for (const plugin of fixture.plugins) {
    const copy = mapStrings(plugin, (value) =>
      value
        .replace(/^10\.236\.(\d+)\./, (m, third: string) => `${prefixes.get(third) ?? m}.`)
        .replace(/^fd7d:c11d:4e7:a1:/, () => {
          v6Subnet = `${v6Prefix}:/64`;
          return v6Prefix;
        }),
    ) as { [key: string]: Json };
    if (typeof copy.bridge === 'string') {
      copy.bridge = testBridgeName(randomHex(8));
      bridges.push(copy.bridge);
    }
    if (typeof copy.master === 'string') {
      copy.master = await s.parentLink();
      const lacking = await kernelLacks(String(copy.type), copy.master);
      if (lacking) return { unsupported: lacking };
    }
    plugins.push(copy);
  }
  const conflist: Conflist = { ...fixture, name: uniqueName(fixture.name), plugins };
  for (const subnet of [...prefixes.values()].map((p) => `${p}.0/24`)) s.subnets.push(subnet);
  s.own(...bridges, ...[...prefixes.values()].map((p) => `${p}.`));
  return { conflist, bridges, ...(v6Subnet ? { v6Subnet } : {}) };
}

/** Filter-table rules of either family that name `bridge` as an interface (the firewall plugin's isolation rules). */
async function rulesNaming(bridge: string): Promise<string[]> {
  const lines: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const out = String((await execa(save, ['-t', 'filter'], { reject: false })).stdout);
    lines.push(...out.split('\n').filter((line) => new RegExp(`-[io] ${bridge}( |$)`).test(line)));
  }
  return lines;
}

async function globalV6(container: string, network: string): Promise<string> {
  return docker(['inspect', '-f', `{{with index .NetworkSettings.Networks "${network}"}}{{.GlobalIPv6Address}}{{end}}`, container]);
}

/**
 * Why the kernel cannot make a `type` link (macvlan, ipvlan) on `parent`, or
 * undefined when it can: a probe link is made and deleted again. Some kernels
 * are built without ipvlan (CONFIG_IPVLAN unset) and have no module for it.
 */
async function kernelLacks(type: string, parent: string): Promise<string | undefined> {
  const probe = `cnitq${randomHex(8)}`;
  const made = await execa('ip', ['link', 'add', probe, 'link', parent, 'type', type], { reject: false });
  if (made.exitCode === 0) {
    await execa('ip', ['link', 'del', probe]);
    return undefined;
  }
  const why = String(made.stderr).trim();
  if (!/not supported|Unknown device type/i.test(why)) throw new Error(`probing ${type} on ${parent}: ${why}`);
  return `this kernel cannot make ${type} links (\`ip link add … type ${type}\`: ${why}); CONFIG_${type.toUpperCase()} is not built in and there is no module`;
}

const hasPortmap = (conflist: Conflist): boolean => conflist.plugins.some((p) => p.type === 'portmap');

describe('engine: the real-world conflist corpus as conf-dir networks', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_CONF_SYNC: 'true' } });

  for (const file of files) {
    test(`${file}: usable by name, containers reach each other, nothing left after removal`, { timeout: TEST_TIMEOUT }, (t) =>
      featureCase(plugin(), async (s) => {
        const confDir = plugin().dirs.confDir;
        if (!confDir) throw new Error('the plugin under test has no known conf dir');
        const fixture = JSON.parse(await readFile(`${CORPUS}${file}`, 'utf8')) as Conflist;
        const rewritten = await rewrite(s, fixture);
        if ('unsupported' in rewritten) {
          t.skip(rewritten.unsupported);
          return;
        }
        const { conflist, bridges, v6Subnet } = rewritten;
        const name = conflist.name;
        // Only when the case failed before docker-cni removed them: the leak check has then reported them already.
        let removedByDockerCni = false;
        for (const bridge of bridges) {
          s.defer(`ip link del ${bridge} (after a failure)`, async () => {
            if (!removedByDockerCni && (await hostLinkExists(bridge))) await execa('ip', ['link', 'del', bridge]);
          });
        }
        s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
        const path = await s.placeConflistFile(confDir, conflist);

        await waitFor(() => dockerNetworkExists(name), { timeoutMs: 20_000, intervalMs: 200, what: `network ${name} made by the conf-dir sync` });
        const first = await s.runContainer({ network: name });
        const second = await s.runContainer({ network: name });
        await assertPings(first, await containerIp(second, name));
        await assertPings(second, await containerIp(first, name));
        await assertPings(first, second);
        if (v6Subnet) {
          const v6 = await globalV6(second, name);
          assert.ok(v6.startsWith(v6Subnet.split('::')[0] ?? '?'), `${second} has IPv6 "${v6}", expected one in ${v6Subnet}`);
          await waitFor(async () => docker(['exec', first, 'ping6', '-c', '1', '-W', '2', v6]).then(() => true, () => false), {
            timeoutMs: 15_000,
            intervalMs: 300,
            what: `${first} to ping6 ${v6}`,
          });
        }
        // The firewall plugin's per-bridge isolation rules exist where it knows ingressPolicy, so their removal below is shown, not assumed.
        const isolating = conflist.plugins.some((p) => p.type === 'firewall' && p.ingressPolicy === 'same-bridge');
        if (isolating && (await firewallSpeaks110())) {
          for (const bridge of bridges) assert.notDeepEqual(await rulesNaming(bridge), [], `no ingressPolicy rules name ${bridge} while in use`);
        }
        const containers = [first, second];
        if (hasPortmap(conflist)) {
          const server = uniqueName('cnit-web');
          s.defer(`docker rm -f ${server}`, () => docker(['rm', '-f', server]));
          const port = 21_000 + Math.floor(Math.random() * 8_000);
          await docker(['run', '-d', '--name', server, '--network', name, '--label', 'docker-cni-test=1', '-p', `127.0.0.1:${port}:80`, TEST_IMAGE, ...webServerCommand('corpus')]);
          containers.push(server);
          await assertServes('127.0.0.1', port, 'corpus');
        }

        await docker(['rm', '-f', ...containers]);
        await rm(path);
        await waitFor(async () => !(await dockerNetworkExists(name)), { timeoutMs: 60_000, intervalMs: 500, what: `network ${name} removed with its conflist` });
        for (const bridge of bridges) {
          await waitFor(async () => !(await hostLinkExists(bridge)), { timeoutMs: 10_000, intervalMs: 200, what: `bridge ${bridge} removed by docker-cni` });
          assert.deepEqual(await rulesNaming(bridge), [], `firewall rules naming ${bridge} are left`);
        }
        removedByDockerCni = true;
      }),
    );
  }
});

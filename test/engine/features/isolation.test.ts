// Engine acceptance: isolation as Docker's bridge driver does it. Networks
// cannot reach each other (docker-cni to docker-cni, docker-cni to a Docker
// bridge network and back); --internal has no way out; enable_icc=false
// blocks container-to-container; cni.isolation=false opts out.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPings,
  canPing,
  containerIp,
  docker,
  freeSubnet,
  hostInSubnet,
  randomHex,
  setupEngineSuite,
  engineSkipReason,
  uniqueName,
  type EngineScope,
} from '../../helpers/engine.js';
import { containerRoutes, featureCase, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

async function cniNetwork(s: EngineScope, options: Record<string, string> = {}, internal = false): Promise<{ name: string; subnet: string }> {
  const subnet = await freeSubnet();
  const created = await s.createNetwork({
    subnet,
    internal,
    options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)), ...options },
  });
  return { name: created.name, subnet };
}

/** A Docker bridge network (driver bridge) with its own subnet. */
async function dockerBridgeNetwork(s: EngineScope): Promise<string> {
  const name = uniqueName('cnit-dbr');
  s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
  await docker(['network', 'create', '-d', 'bridge', '--subnet', await freeSubnet(), name]);
  return name;
}

describe('engine: isolation', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('two docker-cni networks cannot reach each other; inside each, containers can', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const a = await cniNetwork(s);
      const b = await cniNetwork(s);
      const a1 = await s.runContainer({ network: a.name });
      const a2 = await s.runContainer({ network: a.name });
      const b1 = await s.runContainer({ network: b.name });
      await assertPings(a1, a2);
      await assertPings(a2, a1);
      const a1Ip = await containerIp(a1, a.name);
      const b1Ip = await containerIp(b1, b.name);
      assert.equal(await canPing(a1, b1Ip), false, `${a.name} reaches ${b.name}`);
      assert.equal(await canPing(b1, a1Ip), false, `${b.name} reaches ${a.name}`);
    }));

  test('a docker-cni network and a Docker bridge network cannot reach each other, in both directions', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const ours = await cniNetwork(s);
      const theirs = await dockerBridgeNetwork(s);
      const inOurs = await s.runContainer({ network: ours.name });
      const inTheirs = await s.runContainer({ network: theirs });
      const oursIp = await containerIp(inOurs, ours.name);
      const theirsIp = await containerIp(inTheirs, theirs);
      assert.equal(await canPing(inOurs, theirsIp), false, 'docker-cni container reaches a Docker bridge container');
      assert.equal(await canPing(inTheirs, oursIp), false, 'Docker bridge container reaches a docker-cni container');
    }));

  test('--internal: no default route, no way to other networks or the outside; the network itself works', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const internal = await cniNetwork(s, {}, true);
      const other = await cniNetwork(s);
      const first = await s.runContainer({ network: internal.name });
      const second = await s.runContainer({ network: internal.name });
      const outsider = await s.runContainer({ network: other.name });
      await assertPings(first, second);
      const routes = await containerRoutes(first);
      assert.ok(!routes.some((r) => r.startsWith('default')), `internal container has a default route: ${routes.join('; ')}`);
      // A gateway-less network must not pull in docker_gwbridge either.
      const interfaces = await docker(['exec', first, 'ip', '-o', 'link']);
      assert.ok(!/\seth1[@:]/.test(interfaces), 'internal container got a second interface (docker_gwbridge?)');
      assert.equal(await canPing(first, await containerIp(outsider, other.name)), false, 'internal network reaches another network');
      assert.equal(await canPing(outsider, await containerIp(first, internal.name)), false, 'another network reaches the internal one');
      assert.equal(await canPing(first, hostInSubnet(other.subnet, 1)), false, 'internal network reaches another bridge address on the host');
    }));

  test('-o com.docker.network.bridge.enable_icc=false blocks container-to-container traffic', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await cniNetwork(s, { 'com.docker.network.bridge.enable_icc': 'false' });
      const first = await s.runContainer({ network: net.name });
      const second = await s.runContainer({ network: net.name });
      assert.equal(await canPing(first, await containerIp(second, net.name)), false, 'icc=false, yet containers reach each other');
      assert.equal(await canPing(second, await containerIp(first, net.name)), false, 'icc=false, yet containers reach each other');
    }));

  test('-o cni.isolation=false: the network is reachable from another docker-cni network', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const open = await cniNetwork(s, { 'cni.isolation': 'false' });
      const openPeer = await cniNetwork(s, { 'cni.isolation': 'false' });
      const isolated = await cniNetwork(s);
      const inOpen = await s.runContainer({ network: open.name });
      const inPeer = await s.runContainer({ network: openPeer.name });
      const inIsolated = await s.runContainer({ network: isolated.name });
      await assertPings(inPeer, await containerIp(inOpen, open.name));
      await assertPings(inOpen, await containerIp(inPeer, openPeer.name));
      // An isolated network stays closed to the opted-out ones.
      assert.equal(await canPing(inOpen, await containerIp(inIsolated, isolated.name)), false, 'isolated network reachable from an opted-out one');
    }));
});

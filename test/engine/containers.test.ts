// Engine acceptance: containers on docker-cni networks talk to each other by
// IP, name and alias; --ip / --mac-address hold; connect/disconnect, restart,
// rm -f and network rm behave as on Docker's own bridge driver.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertPings,
  canPing,
  cidrContains,
  containerInterface,
  containerIp,
  docker,
  engineCase,
  engineSkipReason,
  hostInSubnet,
  hostLinkExists,
  freeSubnet,
  linksOnBridge,
  waitForBridgeLinks,
  randomHex,
  setupEngineSuite,
  uniqueName,
  waitFor,
  type PluginHandle,
} from '../helpers/engine.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

function recordCount(plugin: PluginHandle, kind: 'networks' | 'endpoints' | 'pools'): number {
  try {
    return readdirSync(join(kind === 'endpoints' ? plugin.dirs.runDir : plugin.dirs.stateDir, kind)).filter((f) => f.endsWith('.json')).length;
  } catch {
    return 0;
  }
}

describe('engine: containers on a docker-cni network', { skip }, () => {
  const plugin = setupEngineSuite();

  test('two containers reach each other by IP, by container name and by --network-alias', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const alias = uniqueName('cnit-alias');
      const first = await s.runContainer({ network: network.name });
      const second = await s.runContainer({ network: network.name, aliases: [alias] });
      const firstIp = await containerIp(first, network.name);
      const secondIp = await containerIp(second, network.name);
      assert.notEqual(firstIp, secondIp);

      await assertPings(first, secondIp);
      await assertPings(second, firstIp);
      await assertPings(first, second);
      await assertPings(second, first);
      await assertPings(first, alias);
    }));

  test('--ip and --mac-address are what the container sees on eth0', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const network = await s.createNetwork({ subnet });
      const ip = hostInSubnet(subnet, 50);
      // Locally administered unicast MAC with a random tail.
      const mac = `02:${randomHex(10).match(/../g)?.join(':')}`;
      const pinned = await s.runContainer({ network: network.name, ip, mac });
      const eth0 = await containerInterface(pinned, 'eth0');
      assert.ok(eth0, 'eth0 missing in the container');
      assert.deepEqual(eth0.inet, [`${ip}/24`]);
      assert.equal(eth0.mac, mac);
      assert.equal(await containerIp(pinned, network.name), ip);

      const peer = await s.runContainer({ network: network.name });
      await assertPings(peer, ip);
    }));

  test('network connect adds a working second interface to a running container; disconnect removes it', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const primary = await s.createNetwork({ subnet: await freeSubnet() });
      const secondarySubnet = await freeSubnet();
      const secondary = await s.createNetwork({ subnet: secondarySubnet });
      const roamer = await s.runContainer({ network: primary.name });
      const resident = await s.runContainer({ network: secondary.name });
      const residentIp = await containerIp(resident, secondary.name);
      assert.equal(await canPing(roamer, residentIp), false, 'containers on different networks must not reach each other before connect');

      await docker(['network', 'connect', secondary.name, roamer]);
      const roamerIp = await containerIp(roamer, secondary.name);
      assert.ok(cidrContains(secondarySubnet, roamerIp), `${roamerIp} not in ${secondarySubnet}`);
      const eth1 = await containerInterface(roamer, 'eth1');
      assert.ok(eth1?.inet.includes(`${roamerIp}/24`), `eth1 has ${JSON.stringify(eth1?.inet)}, expected ${roamerIp}/24`);
      assert.equal((await linksOnBridge(secondary.bridge)).length, 2);
      await assertPings(roamer, residentIp);
      await assertPings(resident, roamer);

      await docker(['network', 'disconnect', secondary.name, roamer]);
      assert.equal(await containerInterface(roamer, 'eth1'), undefined, 'eth1 still present after disconnect');
      await waitForBridgeLinks(secondary.bridge, 1, `the roamer's veth to leave ${secondary.bridge}`);
      // The first network is untouched.
      assert.ok((await containerInterface(roamer, 'eth0'))?.inet.length === 1);
    }));

  test('docker restart keeps a working network', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const restarted = await s.runContainer({ network: network.name });
      const peer = await s.runContainer({ network: network.name });
      await assertPings(restarted, peer);

      await docker(['restart', '-t', '5', restarted]);
      const newIp = await containerIp(restarted, network.name);
      await assertPings(restarted, await containerIp(peer, network.name));
      await assertPings(peer, newIp);
      await assertPings(peer, restarted);
      assert.equal((await linksOnBridge(network.bridge)).length, 2, 'the restart must not leave the old veth on the bridge');
    }));

  test('docker rm -f and docker network rm tear down veths, bridge and records', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const stateKnown = !process.env.DOCKER_CNI_TEST_DRIVER;
      const networksBefore = recordCount(plugin(), 'networks');
      const endpointsBefore = recordCount(plugin(), 'endpoints');
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const containers = [await s.runContainer({ network: network.name }), await s.runContainer({ network: network.name })];
      assert.equal((await linksOnBridge(network.bridge)).length, 2);
      if (stateKnown) assert.equal(recordCount(plugin(), 'endpoints'), endpointsBefore + 2);

      await docker(['rm', '-f', ...containers]);
      await waitForBridgeLinks(network.bridge, 0, 'veths to leave the bridge');
      if (stateKnown) {
        await waitFor(async () => recordCount(plugin(), 'endpoints') === endpointsBefore, { what: 'endpoint records to go' });
      }

      await docker(['network', 'rm', network.name]);
      await waitFor(async () => !(await hostLinkExists(network.bridge)), { what: `bridge ${network.bridge} to be deleted` });
      if (stateKnown) assert.equal(recordCount(plugin(), 'networks'), networksBefore);
    }));
});

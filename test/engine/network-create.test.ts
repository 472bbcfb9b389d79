// Engine acceptance: `docker network create` with docker-cni as network
// driver, with and without its IPAM, with explicit and automatic subnets, and
// backed by a user conflist.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  AUTO_POOL_V4,
  assertGatewayRoute,
  assertPings,
  cidrContains,
  cidrsOverlap,
  confDirOrSkip,
  containerInterface,
  containerIp,
  docker,
  dockerSubnetsV4,
  engineCase,
  engineSkipReason,
  hostInSubnet,
  hostLinkExists,
  hostRoutesV4,
  freeSubnet,
  inspectNetwork,
  linksOnBridge,
  waitForBridgeLinks,
  randomHex,
  setupEngineSuite,
  type CreatedNetwork,
  type EngineScope,
  type PluginHandle,
} from '../helpers/engine.js';

const TEST_TIMEOUT = 180_000;
const skip = await engineSkipReason();

/** Runs one container and checks it got an address of `subnet`, held on eth0, attached via a veth to `bridge`. */
async function assertContainerAttached(s: EngineScope, network: CreatedNetwork, subnet: string, bridge: string): Promise<string> {
  const container = await s.runContainer({ network: network.name });
  const ip = await containerIp(container, network.name);
  assert.ok(cidrContains(subnet, ip), `container address ${ip} is not in ${subnet}`);
  const eth0 = await containerInterface(container, 'eth0');
  const prefix = subnet.split('/')[1];
  assert.ok(eth0?.inet.includes(`${ip}/${prefix}`), `eth0 in the container has ${JSON.stringify(eth0?.inet)}, expected ${ip}/${prefix}`);
  assert.ok(await hostLinkExists(bridge), `host bridge ${bridge} missing`);
  assert.equal((await linksOnBridge(bridge)).length, 1, `exactly one host link should be attached to ${bridge}`);
  await assertGatewayRoute(container, network.name);
  return container;
}

function assertRecordPersisted(plugin: PluginHandle, kind: 'networks', id: string): void {
  const record = join(plugin.dirs.stateDir, kind, `${id}.json`);
  assert.ok(existsSync(record), `plugin record ${record} missing`);
}

describe('engine: docker network create', { skip }, () => {
  const plugin = setupEngineSuite();

  test('-d D --ipam-driver D --subnet: Docker records the subnet and containers get addresses from it', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const network = await s.createNetwork({ subnet });
      const info = await inspectNetwork(network.name);
      assert.equal(info.Driver, plugin().driver);
      assert.equal(info.IPAM.Driver, plugin().driver);
      assert.deepEqual(info.IPAM.Config?.map((c) => c.Subnet), [subnet]);
      assertRecordPersisted(plugin(), 'networks', network.id);
      await assertContainerAttached(s, network, subnet, network.bridge);
    }));

  test("-d D --subnet (Docker's default IPAM): containers get addresses from Docker's allocator", { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const network = await s.createNetwork({ subnet, ipamDriver: null });
      const info = await inspectNetwork(network.name);
      assert.equal(info.Driver, plugin().driver);
      assert.equal(info.IPAM.Driver, 'default');
      assert.deepEqual(info.IPAM.Config?.map((c) => c.Subnet), [subnet]);
      await assertContainerAttached(s, network, subnet, network.bridge);
    }));

  test('-d D --ipam-driver D without --subnet: a free subnet is allocated automatically', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const first = await s.createNetwork({});
      const second = await s.createNetwork({});
      const subnets: string[] = [];
      for (const network of [first, second]) {
        const config = (await inspectNetwork(network.name)).IPAM.Config ?? [];
        const subnet = config.find((c) => c.Subnet?.includes('.'))?.Subnet;
        assert.ok(subnet, `no IPv4 subnet allocated for ${network.name}: ${JSON.stringify(config)}`);
        if (!process.env.DOCKER_CNI_TEST_DRIVER) {
          // The harness points the plugin's automatic pools at AUTO_POOL_V4.
          assert.ok(cidrsOverlap(AUTO_POOL_V4, subnet) && Number(subnet.split('/')[1]) >= 16, `${subnet} is outside ${AUTO_POOL_V4}`);
        }
        subnets.push(subnet);
      }
      const [subnetA, subnetB] = subnets as [string, string];
      assert.ok(!cidrsOverlap(subnetA, subnetB), `automatic subnets overlap: ${subnetA} ${subnetB}`);

      // No other Docker network and no host route (except these networks' own bridges) may overlap.
      const otherSubnets = await dockerSubnetsV4(new Set([first.id, second.id]));
      const routes = (await hostRoutesV4([first.bridge, second.bridge]))
        .filter((c) => !c.startsWith('127.'))
        .map((c) => (c.includes('/') ? c : `${c}/32`));
      for (const subnet of subnets) {
        const clash = [...otherSubnets, ...routes].find((used) => cidrsOverlap(used, subnet));
        assert.equal(clash, undefined, `automatic subnet ${subnet} overlaps ${clash}`);
      }

      await assertContainerAttached(s, first, subnetA, first.bridge);
    }));

  test('-o cni.network=<conflist>: a user conflist (bridge + host-local + firewall) from the conf dir backs the network', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await engineCase(plugin(), async (s) => {
      const bridge = `cnitb${randomHex(6)}`;
      const subnet = await freeSubnet();
      s.own(bridge);
      const confName = await s.placeConflist(confDir, [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet, gateway: hostInSubnet(subnet, 1) }]] },
        },
        { type: 'firewall' },
      ]);
      // The conflist's bridge is the user's: CNI bridge creates it and nothing
      // is expected to delete it, so the test removes it after the network.
      s.deleteLinkLater(bridge);

      const network = await s.createNetwork({ subnet, options: { 'cni.network': confName } });
      const first = await s.runContainer({ network: network.name });
      const second = await s.runContainer({ network: network.name });
      const firstIp = await containerIp(first, network.name);
      const secondIp = await containerIp(second, network.name);
      for (const ip of [firstIp, secondIp]) assert.ok(cidrContains(subnet, ip), `${ip} not in ${subnet}`);
      assert.equal((await linksOnBridge(bridge)).length, 2, `both containers should hang off the conflist's bridge ${bridge}`);
      await assertPings(first, secondIp);
      await assertPings(second, firstIp);
      await assertGatewayRoute(first, network.name);

      await docker(['rm', '-f', first, second]);
      await waitForBridgeLinks(bridge, 0, `the veths on ${bridge} to be removed after docker rm`);
    });
  });
});

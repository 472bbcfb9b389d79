// Engine acceptance: networks backed by CNI chains other than bridge, loaded
// from the conf dir with -o cni.network=<name>: ptp, macvlan (on a dummy
// parent the test creates), tuning, and bandwidth (network and per-endpoint
// limits from cni.bandwidth.* options).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  assertPings,
  containerIp,
  docker,
  engineSkipReason,
  freeSubnet,
  randomHex,
  setupEngineSuite,
  uniqueName,
  confDirOrSkip,
  endpointIdOf,
  endpointRecordPath,
  type PluginDirs,
} from '../../helpers/engine.js';
import { containerRoutes, featureCase, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

/** tc qdiscs of a host link, one per line. */
async function hostQdiscs(link: string): Promise<string> {
  return String((await execa('tc', ['qdisc', 'show', 'dev', link], { reject: false })).stdout);
}

/** The host-side veth of an endpoint, from the CNI result the plugin recorded. */
async function hostVethOf(dirs: PluginDirs, endpointId: string): Promise<string> {
  const record = JSON.parse(await readFile(endpointRecordPath(dirs, endpointId), 'utf8')) as {
    result?: { interfaces?: Array<{ name: string; sandbox?: string }> };
  };
  // The bridge plugin lists the bridge first, then the host side of the veth pair.
  const veth = record.result?.interfaces?.find((i) => !i.sandbox && i.name.startsWith('veth'))?.name;
  if (!veth) throw new Error(`no host-side interface recorded for endpoint ${endpointId}`);
  return veth;
}

describe('engine: CNI chains from the conf dir', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('ptp (+ firewall): containers reach each other through the host, by IP and name', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await featureCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const conf = await s.placeConflist(confDir, [
        { type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'firewall' },
      ]);
      const net = await s.createNetwork({ subnet, options: { 'cni.network': conf } });
      const first = await s.runContainer({ network: net.name });
      const second = await s.runContainer({ network: net.name });
      // The pool is routed via the host (the point-to-point peer), not on-link.
      const routes = await containerRoutes(first);
      assert.ok(routes.some((r) => /^default via 10\.231\.\d+\.1 dev eth0/.test(r)), `no default route via the ptp gateway: ${routes.join('; ')}`);
      await assertPings(first, await containerIp(second, net.name));
      await assertPings(second, await containerIp(first, net.name));
      await assertPings(first, second);
    });
  });

  test('macvlan on a parent link the test creates (dummy, else a veth): containers reach each other', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await featureCase(plugin(), async (s) => {
      const parent = await s.parentLink();
      const subnet = await freeSubnet();
      const conf = await s.placeConflist(confDir, [
        { type: 'macvlan', master: parent, mode: 'bridge', ipam: { type: 'host-local', ranges: [[{ subnet }]] } },
      ]);
      const net = await s.createNetwork({ subnet, options: { 'cni.network': conf } });
      const first = await s.runContainer({ network: net.name });
      const second = await s.runContainer({ network: net.name });
      // busybox ip has no -d: look from the host into the container's netns.
      const pid = await docker(['inspect', '-f', '{{.State.Pid}}', first]);
      const link = String((await execa('nsenter', ['-t', pid, '-n', 'ip', '-d', 'link', 'show', 'eth0'])).stdout);
      assert.match(link, /macvlan/, `eth0 is not a macvlan: ${link}`);
      await assertPings(first, await containerIp(second, net.name));
      await assertPings(second, first);
    });
  });

  test('tuning: mtu and promisc reach the container; sysctls do not (documented), docker run --sysctl does', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await featureCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const bridge = testBridgeName(randomHex(8));
      s.deleteLinkLater(bridge);
      const conf = await s.placeConflist(confDir, [
        { type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet }]] } },
        { type: 'tuning', mtu: 1400, promisc: true, sysctl: { 'net.ipv4.conf.eth0.arp_ignore': '1' } },
      ]);
      const net = await s.createNetwork({ subnet, options: { 'cni.network': conf } });
      const tuned = await s.runContainer({ network: net.name });
      const link = await docker(['exec', tuned, 'cat', '/sys/class/net/eth0/mtu', '/sys/class/net/eth0/flags']);
      const [mtu, flags] = link.split('\n');
      assert.equal(mtu, '1400');
      // IFF_PROMISC is 0x100.
      assert.ok((Number(flags) & 0x100) !== 0, `eth0 is not promiscuous (flags ${flags})`);
      // The kernel resets per-interface sysctls when the link changes netns.
      assert.equal(await docker(['exec', tuned, 'cat', '/proc/sys/net/ipv4/conf/eth0/arp_ignore']), '0');
      const name = uniqueName('cnit-sysctl');
      s.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
      const viaDocker = await docker([
        'run', '--name', name, '--network', net.name, '--sysctl', 'net.ipv4.conf.eth0.arp_ignore=1',
        'docker-cni-test/busybox:latest', 'cat', '/proc/sys/net/ipv4/conf/eth0/arp_ignore',
      ]);
      assert.equal(viaDocker, '1');
      assert.match(plugin().logTail(400), /tuning sysctls do not reach the container/);
    });
  });

  test('bandwidth: network cni.bandwidth.* limits shape the host veth; an endpoint --driver-opt overrides them', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await s.createNetwork({
        subnet: await freeSubnet(),
        options: {
          'com.docker.network.bridge.name': testBridgeName(randomHex(8)),
          'cni.bandwidth.ingress_rate': '8000000',
          'cni.bandwidth.ingress_burst': '160000',
          'cni.bandwidth.egress_rate': '4000000',
          'cni.bandwidth.egress_burst': '80000',
        },
      });
      const shaped = await s.runContainer({ network: net.name });
      const veth = await hostVethOf(plugin().dirs, await endpointIdOf(shaped, net.name));
      const qdiscs = await hostQdiscs(veth);
      // ingress_rate shapes traffic towards the container (tbf on the host veth); egress goes through an ifb.
      assert.match(qdiscs, /qdisc tbf .*rate 8Mbit/, `no 8Mbit tbf on ${veth}:\n${qdiscs}`);
      assert.match(qdiscs, /qdisc ingress/, `no ingress qdisc (egress shaping) on ${veth}:\n${qdiscs}`);
      const peer = await s.runContainer({ network: net.name });
      await assertPings(peer, shaped);

      // Per endpoint: docker run --network name=N,driver-opt=k=v overrides the network's ingress rate.
      const custom = uniqueName('cnit-bw');
      s.defer(`docker rm -f ${custom}`, () => docker(['rm', '-f', custom]));
      await docker([
        'run', '-d', '--name', custom,
        '--network', `name=${net.name},driver-opt=cni.bandwidth.ingress_rate=2000000`,
        'docker-cni-test/busybox:latest', 'sleep', '600',
      ]);
      const customVeth = await hostVethOf(plugin().dirs, await endpointIdOf(custom, net.name));
      assert.match(await hostQdiscs(customVeth), /qdisc tbf .*rate 2Mbit/);
    }));

  test('bandwidth options are refused on a conflist without a bandwidth-capable plugin', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await featureCase(plugin(), async (s) => {
      const subnet = await freeSubnet();
      const bridge = testBridgeName(randomHex(8));
      s.deleteLinkLater(bridge);
      const conf = await s.placeConflist(confDir, [
        { type: 'bridge', bridge, ipam: { type: 'host-local', ranges: [[{ subnet }]] } },
      ]);
      await assert.rejects(
        s.createNetwork({ subnet, options: { 'cni.network': conf, 'cni.bandwidth.egress_rate': '1000000', 'cni.bandwidth.egress_burst': '10000' } }),
        /cni\.bandwidth\.\* options need a plugin that declares "capabilities": \{"bandwidth": true\}/,
      );
      await assert.rejects(
        s.createNetwork({ subnet, options: { 'cni.bandwidth.egress_rate': '1000000' } }),
        /cni\.bandwidth\.egress_rate and cni\.bandwidth\.egress_burst must be given together/,
      );
    });
  });
});

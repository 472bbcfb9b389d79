/**
 * Outside swarm (issue 16, item 4): the same docker-cni network made on each
 * dockerd on its own, as a local-scope network of the same name, subnet and
 * cluster IPAM. Docker has no cluster store since 23, so nothing ties the
 * three networks together but etcd: the pool (named by its subnet), the
 * blocks and the routed mode's routes. Docker's embedded DNS of a local
 * network knows only that daemon's containers, so names resolve on the own
 * host only; that is measured and asserted, not worked around.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { etcdGet } from './etcd.js';
import { dk, HOSTS, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, localAddresses, ping, reach, PLUGIN, removeAll } from './span.js';

export async function independentDaemons(t: TestContext): Promise<void> {
  const net = 'solo-span';
  const subnet = '10.233.17.0/24';
  const containers = HOSTS.map((host) => ({ host, name: `solo-c${host}` }));
  try {
    for (const i of HOSTS) {
      await dk(i, ['network', 'create', '-d', PLUGIN, '--ipam-driver', PLUGIN, '--ipam-opt', 'cni.cluster=true', '--subnet', subnet, '-o', 'cni.cluster.mode=routed', net]);
    }
    const scopes = await Promise.all(HOSTS.map((i) => dk(i, ['network', 'inspect', '-f', '{{.Scope}}', net])));
    assert.deepEqual(scopes, ['local', 'local', 'local'], 'three independent local networks');
    await Promise.all(containers.map((c) => dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600'])));
    const ips = await Promise.all(containers.map((c) => ipOf(c.host, c.name, net)));
    assert.equal(new Set(ips).size, 3, `one pool across the daemons: distinct addresses ${ips.join(' ')}`);
    for (const [n, c] of containers.entries()) {
      const other = containers[(n + 1) % containers.length]!;
      const ip = ips[(n + 1) % containers.length]!;
      await reach(c.host, c.name, ip, `${c.name} (host${c.host}) -> ${other.name} (host${other.host}) by IP ${ip}`);
      // Docker's DNS on a local network: the daemon's own containers only.
      assert.equal(await ping(c.host, c.name, other.name), false, `${other.name} on another daemon does not resolve`);
    }
    t.diagnostic(`independent daemons: reach by IP across hosts (${ips.join(', ')}); names resolve on their own daemon only`);
  } finally {
    await removeAll(containers);
    await Promise.all(HOSTS.map((i) => dk(i, ['network', 'rm', net]).catch(() => undefined)));
  }
  for (const i of HOSTS) assert.deepEqual(await localAddresses(i, subnet), [], `host${i} released its addresses`);
  const blocks = new ClusterKeys().blocksPrefix(clusterPoolId(subnet));
  await waitFor('no blocks of the pool left in etcd', async () => (await etcdGet(blocks)).length === 0, 60_000);
}

/**
 * 30 containers started at once across the 3 hosts (10 each) on one routed
 * spanning network: every address is unique cluster-wide, a sample reaches
 * containers on the other hosts, and once they are gone neither the hosts'
 * pool state nor etcd keeps anything of them.
 */
import assert from 'node:assert/strict';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { cidrContains, parseCidr, parseIp } from '../../src/util/ip-math.js';
import { etcdGet } from './etcd.js';
import { dk, HOSTS, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, localAddresses, reach, removeAll, removeSpanning, spanning } from './span.js';

const PER_HOST = 10;

export async function thirtyAtOnce(): Promise<void> {
  const net = 'span-many';
  const subnet = '10.233.12.0/24';
  const blocks = new ClusterKeys().blocksPrefix(clusterPoolId(subnet));
  const containers = HOSTS.flatMap((host) => Array.from({ length: PER_HOST }, (_, k) => ({ host, name: `many-h${host}-${k}` })));
  await spanning(net, subnet, ['-o', 'cni.cluster.mode=routed']);
  try {
    const started = await Promise.allSettled(
      containers.map((c) => dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600'], 180_000)),
    );
    const failed = started.flatMap((r, n) => (r.status === 'rejected' ? [`${containers[n]!.name}: ${String(r.reason)}`] : []));
    assert.deepEqual(failed, [], 'every container starts');

    const ips = await Promise.all(containers.map((c) => ipOf(c.host, c.name, net)));
    const pool = parseCidr(subnet)!.cidr;
    for (const [n, ip] of ips.entries()) {
      const addr = parseIp(ip);
      assert.ok(addr && cidrContains(pool, addr), `${containers[n]!.name} has ${ip || 'no address'}, outside ${subnet}`);
    }
    const seen = new Map<string, string>();
    for (const [n, ip] of ips.entries()) {
      assert.equal(seen.get(ip), undefined, `${ip} handed out twice: ${seen.get(ip)} and ${containers[n]!.name}`);
      seen.set(ip, containers[n]!.name);
    }
    assert.equal(seen.size, 30);

    // Every address lies in a block etcd gives to the container's own host; with /29
    // blocks each host needed several, claimed while the others claimed theirs.
    const owners = (await etcdGet(blocks)).map((kv) => JSON.parse(kv.value) as { host: string; cidr: string });
    for (const i of HOSTS) {
      const mine = owners.filter((b) => b.host === `host${i}`).map((b) => parseCidr(b.cidr)!.cidr);
      assert.ok(mine.length >= 2, `host${i} owns ${mine.length} block(s) for ${PER_HOST} containers`);
      for (const [n, c] of containers.entries()) {
        if (c.host === i) assert.ok(mine.some((b) => cidrContains(b, parseIp(ips[n]!)!)), `${c.name} (${ips[n]}) is outside host${i}'s blocks`);
      }
    }

    // A sample: the first container of each host reaches the last one of every other host.
    for (const i of HOSTS) {
      for (const j of HOSTS) {
        if (i === j) continue;
        const target = containers.findLastIndex((c) => c.host === j);
        await reach(i, `many-h${i}-0`, ips[target]!, `many-h${i}-0 -> ${containers[target]!.name} (${ips[target]})`);
      }
    }

    await Promise.all(containers.map((c) => dk(c.host, ['rm', '-f', c.name], 180_000)));
    for (const i of HOSTS) {
      const left = (await localAddresses(i, subnet)).filter((ip) => seen.has(ip));
      assert.deepEqual(left, [], `host${i} still records addresses of removed containers`);
    }
    await removeSpanning(net);
    // Each host gives its blocks back when Docker releases the pool there (the last
    // container on a worker gone, or the network removed on the manager).
    await waitFor('no block of the pool left in etcd', async () => (await etcdGet(blocks)).length === 0, 60_000).catch(async (err: Error) => {
      const held = await etcdGet(blocks).catch(() => []);
      throw new Error(`${err.message}; etcd still holds ${held.map((kv) => `${kv.key}=${kv.value}`).join(' ')}`);
    });
  } finally {
    await removeAll(containers);
    await removeSpanning(net);
  }
}

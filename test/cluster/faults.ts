/**
 * etcd faults on the simulated cluster: one member killed. It ends with
 * every member running again and the cluster healthy, whatever happened in
 * between.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { etcdGet, leader, memberRunning, startMembers, stopMember } from './etcd.js';
import { dk, HOSTS, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, localAddresses, ping, removeAll, removeSpanning, spanning } from './span.js';

type Container = { host: number; name: string };
const ROUTED = ['-o', 'cni.cluster.mode=routed'];

const runOn = (c: Container, net: string): Promise<string> =>
  dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600']);

/** Each container reaches the one on the next host. */
async function reachAround(containers: readonly Container[], ips: readonly string[]): Promise<void> {
  for (const [n, c] of containers.entries()) {
    const m = (n + 1) % containers.length;
    await waitFor(`${c.name} -> ${containers[m]!.name} (${ips[m]})`, () => ping(c.host, c.name, ips[m]!), 30_000);
  }
}

/** The etcd leader is SIGKILLed: networks, runs and removals work on every host through the two members left. */
export async function memberKilled(t: TestContext): Promise<void> {
  const net = 'span-kill';
  const subnet = '10.233.13.0/24';
  const victim = await leader();
  const survivors = HOSTS.filter((i) => i !== victim);
  const containers: Container[] = HOSTS.map((host) => ({ host, name: `kill-c${host}` }));
  await stopMember(victim, 'SIGKILL');
  t.diagnostic(`killed the leader, member e${victim}`);
  try {
    // Created after the kill, so the pool and every block are claimed through the survivors.
    await spanning(net, subnet, ROUTED);
    await Promise.all(containers.map((c) => runOn(c, net)));
    const ips = await Promise.all(containers.map((c) => ipOf(c.host, c.name, net)));
    assert.equal(new Set(ips).size, 3, `distinct addresses ${ips.join(' ')}`);
    await reachAround(containers, ips);
    await Promise.all(containers.map((c) => dk(c.host, ['rm', '-f', c.name])));
    for (const i of HOSTS) assert.deepEqual(await localAddresses(i, subnet), [], `host${i} released its address`);
    await removeSpanning(net);
    const blocks = new ClusterKeys().blocksPrefix(clusterPoolId(subnet));
    await waitFor('blocks released through the surviving members', async () => (await etcdGet(blocks, survivors)).length === 0, 60_000);
    assert.equal(await memberRunning(victim), false, `member e${victim} stayed down throughout`);
  } finally {
    await removeAll(containers);
    await removeSpanning(net);
    await startMembers([victim]);
  }
}

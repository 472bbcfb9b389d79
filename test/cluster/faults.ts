/**
 * etcd faults on the simulated cluster: one member killed, then etcd wholly
 * down. Both end with every member running again and the cluster healthy,
 * whatever happened in between.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { etcdGet, leader, memberRunning, startMembers, stopMember } from './etcd.js';
import { dk, HOSTS, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, LEASE_TTL_S, localAddresses, reach, removeAll, removeSpanning, spanning } from './span.js';

type Container = { host: number; name: string };
const ROUTED = ['-o', 'cni.cluster.mode=routed'];

const runOn = (c: Container, net: string): Promise<string> =>
  dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600']);

/** Each container reaches the one on the next host. */
async function reachAround(containers: readonly Container[], ips: readonly string[]): Promise<void> {
  for (const [n, c] of containers.entries()) {
    const m = (n + 1) % containers.length;
    await reach(c.host, c.name, ips[m]!, `${c.name} -> ${containers[m]!.name} (${ips[m]})`);
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

/**
 * All members stopped: a new run fails naming etcd, running containers keep
 * reaching each other across hosts, and runs work again once etcd is back,
 * with no address handed out twice.
 */
export async function etcdDown(t: TestContext): Promise<void> {
  const net = 'span-down';
  const subnet = '10.233.14.0/24';
  const running: Container[] = HOSTS.map((host) => ({ host, name: `down-c${host}` }));
  const refused: Container = { host: 2, name: 'down-refused' };
  const later: Container[] = HOSTS.map((host) => ({ host, name: `down-later${host}` }));
  await spanning(net, subnet, ROUTED);
  try {
    await Promise.all(running.map((c) => runOn(c, net)));
    const ips = await Promise.all(running.map((c) => ipOf(c.host, c.name, net)));
    await reachAround(running, ips);

    await Promise.all(HOSTS.map((i) => stopMember(i, 'SIGTERM')));
    // The plugin hands out addresses of its own blocks while its lease is provably alive
    // (half a TTL since the last keepalive answer); after a whole TTL it cannot be.
    await sleep(LEASE_TTL_S * 1000);
    const error = await runOn(refused, net).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(error, 'docker run succeeded with every etcd member down');
    t.diagnostic(`refused: ${error.message}`);
    assert.match(error.message, /etcd unreachable/, 'the error says etcd is unreachable');
    assert.match(error.message, /\[(HOST_FENCED|ETCD_UNAVAILABLE)\]/, 'the error carries the cluster code');
    await reachAround(running, ips);
    for (const i of HOSTS) assert.equal(await memberRunning(i), false, `member e${i} stayed down while the containers were checked`);

    await startMembers(HOSTS);
    // The plugins re-register in the background (retry back-off); a run fails until then.
    for (const c of later) {
      await waitFor(
        `docker run on host${c.host} after etcd is back`,
        () =>
          runOn(c, net).then(
            () => true,
            async (err: Error) => {
              await dk(c.host, ['rm', '-f', c.name]).catch(() => undefined);
              throw err;
            },
          ),
        60_000,
      );
    }
    const laterIps = await Promise.all(later.map((c) => ipOf(c.host, c.name, net)));
    const all = [...ips, ...laterIps];
    assert.equal(new Set(all).size, all.length, `no address handed out twice: ${all.join(' ')}`);
    await reachAround(later, laterIps);
  } finally {
    // etcd first: a host releases its pool (Docker removing the network there) only through etcd.
    await startMembers(HOSTS);
    await removeAll([...running, refused, ...later]);
    await removeSpanning(net);
  }
}

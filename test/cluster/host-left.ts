/**
 * Host3 leaves: its dockerd and docker-cni freeze (SIGSTOP, by the PIDs of
 * that host only) and its containers are killed through its own containerd,
 * the way a host that crashes or is cut off disappears. Swarm marks it down
 * and its etcd lease expires. The reclaim rule: a block is taken over only
 * when its owner's host key is gone AND the taker has no free block left. So:
 * while host3 lives, host1 runs out of blocks rather than take host3's; once
 * host3's key is gone, host1 drops its routes to host3's blocks and, needing
 * a block, takes one of them over. Host3 is then resumed, comes back into the
 * swarm and etcd, and works again.
 */
import { ROUTE_PROTO } from '../../src/cluster/names.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { cidrContains, parseCidr, parseIp } from '../../src/util/ip-math.js';
import { etcdGet } from './etcd.js';
import { pluginPid } from './plugin-proc.js';
import { dk, inHost, SIM_DIR, TEST_IMAGE, UNDERLAY, waitFor } from './sim.js';
import { ipOf, reach, removeAll, removeSpanning, spanning } from './span.js';

const run = promisify(execFile);
type Container = { host: number; name: string };
const keys = new ClusterKeys();

const runOn = (c: Container, net: string): Promise<string> =>
  dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600']);

const inBlock = (cidr: string, ip: string): boolean => cidrContains(parseCidr(cidr)!.cidr, parseIp(ip)!);

/** Host i's dockerd PID, checked against /proc to be the dockerd of that host. */
async function dockerdPid(i: number): Promise<number> {
  const dir = join(SIM_DIR, `host${i}`);
  const pid = Number((await readFile(join(dir, 'docker.pid'), 'utf8')).trim());
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!Number.isInteger(pid) || pid <= 1 || !cmdline.includes(join(dir, 'exec'))) throw new Error(`host${i}: no dockerd at pid ${pid}`);
  return pid;
}

const nodeState = (i: number): Promise<string> => dk(1, ['node', 'inspect', '-f', '{{.Status.State}}', `host${i}`]);
const hostKeyPresent = async (i: number): Promise<boolean> => (await etcdGet(keys.host(`host${i}`))).length > 0;

export async function hostLeft(t: TestContext): Promise<void> {
  const net = 'span-left';
  // 4 blocks of /29: host3's 9 containers take two, host1 the other two; host3 keeps one when it comes back.
  const subnet = '10.233.18.0/27';
  const blocksKey = keys.blocksPrefix(clusterPoolId(subnet));
  const owners = async (): Promise<Array<{ host: string; cidr: string }>> =>
    (await etcdGet(blocksKey)).map((kv) => JSON.parse(kv.value) as { host: string; cidr: string });
  const routesOf1 = async (): Promise<string[]> => (await inHost(1, 'ip', ['-4', 'route', 'show', 'proto', ROUTE_PROTO])).split('\n');
  const gone: Container[] = Array.from({ length: 9 }, (_, k) => ({ host: 3, name: `left3-${k}` }));
  const host1: Container[] = [];
  const taker: Container = { host: 1, name: 'left1-taker' };
  const back: Container = { host: 3, name: 'left3-back' };
  let frozen: number[] = [];
  await spanning(net, subnet, ['-o', 'cni.cluster.mode=routed']);
  try {
    for (const c of gone) await runOn(c, net);
    const held = (await owners()).filter((b) => b.host === 'host3').map((b) => b.cidr);
    assert.equal(held.length, 2, `host3 holds two blocks: ${held.join(' ')}`);

    // While host3 lives, host1 fills every other block and is then refused: a living host's block is never taken.
    let refusal: string | undefined;
    for (let k = 0; k < 32 && refusal === undefined; k++) {
      const c = { host: 1, name: `left1-${k}` };
      await runOn(c, net).then(
        () => void host1.push(c),
        async (err: Error) => {
          refusal = err.message;
          await dk(1, ['rm', '-f', c.name]).catch(() => undefined);
        },
      );
    }
    assert.ok(refusal !== undefined, 'host1 ran out of blocks');
    t.diagnostic(`host1 refused after ${host1.length} containers: ${refusal.split('\n')[0]}`);
    assert.match(refusal, /POOL_EXHAUSTED|no free block/);
    const ips1 = await Promise.all(host1.map((c) => ipOf(c.host, c.name, net)));
    for (const ip of ips1) assert.ok(!held.some((b) => inBlock(b, ip)), `host1 got ${ip} inside host3's blocks ${held.join(' ')}`);
    for (const b of held) assert.ok((await routesOf1()).some((r) => r.startsWith(`${b} via ${UNDERLAY(3)} `)), `host1 routes ${b} to host3`);

    // Host3 leaves: dockerd and plugin frozen, its containers killed through its own containerd.
    const ids = (await dk(3, ['ps', '-q', '--no-trunc', '--filter', 'name=left3-'])).split('\n').filter(Boolean);
    assert.equal(ids.length, gone.length);
    const pids = [await dockerdPid(3), await pluginPid(3)];
    frozen = pids.filter((p): p is number => p !== undefined);
    assert.equal(frozen.length, 2, 'host3 dockerd and plugin found');
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const leftAt = Date.now();
    const ctrd = join(SIM_DIR, 'host3', 'exec', 'containerd', 'containerd.sock');
    for (const id of ids) await run('ctr', ['--address', ctrd, '--namespace', 'moby', 'task', 'kill', '-s', 'SIGKILL', id], { timeout: 30_000 });

    await waitFor("host3's host key expires with its lease", async () => !(await hostKeyPresent(3)), 60_000);
    t.diagnostic(`host3's key gone ${((Date.now() - leftAt) / 1000).toFixed(1)} s after it froze`);
    assert.deepEqual((await owners()).filter((b) => b.host === 'host3').map((b) => b.cidr).sort(), [...held].sort(), 'nobody took a block before one was needed');
    await waitFor('host1 drops its routes to host3', async () => !(await routesOf1()).some((r) => held.some((b) => r.startsWith(`${b} `))), 30_000);
    await waitFor('swarm marks host3 down', async () => (await nodeState(3)) === 'down', 120_000);

    // host1 needs a block now: it takes one of host3's over.
    await runOn(taker, net);
    host1.push(taker);
    const takerIp = await ipOf(taker.host, taker.name, net);
    const taken = held.find((b) => inBlock(b, takerIp));
    assert.ok(taken, `${takerIp} lies in one of host3's former blocks ${held.join(' ')}`);
    assert.equal((await owners()).find((b) => b.cidr === taken)?.host, 'host1', `etcd gives ${taken} to host1`);
    await reach(1, host1[0]!.name, takerIp, `host1 -> ${takerIp}`);

    // Host3 comes back: into the swarm and etcd, its dead containers removed, and it runs again.
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    frozen = [];
    await waitFor('host3 ready in the swarm again', async () => (await nodeState(3)) === 'ready', 120_000);
    await waitFor('host3 registered in etcd again', () => hostKeyPresent(3), 60_000);
    await removeAll(gone);
    await waitFor(
      'docker run on host3 once it is back',
      () =>
        runOn(back, net).then(
          () => true,
          async (err: Error) => {
            await dk(3, ['rm', '-f', back.name]).catch(() => undefined);
            throw err;
          },
        ),
      60_000,
    );
    const backIp = await ipOf(back.host, back.name, net);
    assert.ok(![...ips1, takerIp].includes(backIp), `host3 got ${backIp}, an address host1 holds`);
    await reach(3, back.name, takerIp, `${back.name} -> ${takerIp}`);
  } finally {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    await removeAll([...gone, ...host1, taker, back]);
    await removeSpanning(net);
  }
  await waitFor('no block of the pool left in etcd', async () => (await owners()).length === 0, 60_000);
}

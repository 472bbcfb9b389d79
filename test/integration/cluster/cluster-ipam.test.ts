/**
 * Cluster IPAM against a real 3-member etcd on loopback, with three
 * allocators standing in for three hosts. Only loopback sockets and temp
 * files are used, so no engine lock is needed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterCodeOf } from '../../../src/cluster/errors.js';
import { cidrContains, parseCidr, parseIp } from '../../../src/util/ip-math.js';
import { skipUnless } from '../../helpers/prereq.js';
import { EtcdCluster, ETCD_BIN, etcdInstalled } from './etcd-cluster.js';
import { startHost, uniquePrefix, waitFor, type SimHost } from './cluster-hosts.js';

const skip = skipUnless([[etcdInstalled(), `${ETCD_BIN} (Debian etcd-server)`]]);

function inside(block: string, ip: string): boolean {
  const cidr = parseCidr(block)?.cidr;
  const addr = parseIp(ip);
  return !!cidr && !!addr && cidrContains(cidr, addr);
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e as Error,
  );
  assert.equal(clusterCodeOf(err), code, `expected ${code}, got: ${err.message}`);
  return err;
}

describe('cluster IPAM on a real 3-member etcd', { skip }, () => {
  let etcd: EtcdCluster;
  let stateRoot: string;
  const hosts: SimHost[] = [];

  const start = async (id: string, prefix: string, extra: { blockPrefix?: number; ttlSeconds?: number } = {}): Promise<SimHost> => {
    const host = await startHost({ id, endpoints: etcd.endpoints, prefix, stateRoot, ...extra });
    hosts.push(host);
    return host;
  };

  before(async () => {
    etcd = await EtcdCluster.start(3);
    stateRoot = await mkdtemp(join(tmpdir(), 'dcni-cluster-ipam-'));
  });

  after(async () => {
    for (const host of hosts) await host.crash();
    await etcd?.destroy();
    if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
  });

  test('three hosts allocating in parallel never hand out the same address', async () => {
    const prefix = uniquePrefix();
    const trio = await Promise.all(['h1', 'h2', 'h3'].map((id) => start(id, prefix)));
    const pools = await Promise.all(trio.map((h) => h.ipam.requestPool('10.233.0.0/24')));
    assert.equal(new Set(pools.map((p) => p.poolId)).size, 1, 'one cluster pool for one subnet');
    const poolId = pools[0]!.poolId;
    assert.equal(pools[0]!.gateway, '10.233.0.1');

    const perHost = 70;
    const results = await Promise.all(
      trio.map(async (h) => Promise.all(Array.from({ length: perHost }, () => h.ipam.requestAddress(poolId)))),
    );
    const all = results.flat().map((r) => r.address);
    assert.equal(all.length, 3 * perHost);
    assert.equal(new Set(all).size, all.length, 'no duplicate address');
    assert.ok(!all.includes('10.233.0.1') && !all.includes('10.233.0.0') && !all.includes('10.233.0.255'));

    // Every address lies in a block its host owns, and etcd's owners match.
    const etcdBlocks = await trio[0]!.store.listBlocks(poolId);
    for (const [i, h] of trio.entries()) {
      const owned = await h.ipam.ownedBlocks(poolId);
      for (const block of owned) {
        assert.ok([...etcdBlocks.values()].some((b) => b.record.cidr === block && b.record.host === h.id), `${block} is ${h.id}'s in etcd`);
      }
      for (const r of results[i]!) assert.ok(owned.some((b) => inside(b, r.address)), `${r.address} in a block of ${h.id}`);
    }
  });

  test('a host claims a block once, then allocates inside it without writing to etcd', async () => {
    const prefix = uniquePrefix();
    const h = await start('solo', prefix, { blockPrefix: 27 });
    const { poolId } = await h.ipam.requestPool('10.233.1.0/24');
    await h.ipam.requestAddress(poolId);
    const blocks = await h.store.listBlocks(poolId);
    assert.equal(blocks.size, 1);
    const [block] = blocks.values();
    assert.equal(block!.record.host, 'solo');
    assert.equal(block!.record.cidr, (await h.ipam.ownedBlocks(poolId))[0]);

    const client = etcd.client();
    try {
      const revisionBefore = (await client.get('/none').exec()).header.revision;
      const more = await Promise.all(Array.from({ length: 20 }, () => h.ipam.requestAddress(poolId)));
      const revisionAfter = (await client.get('/none').exec()).header.revision;
      assert.equal(revisionAfter, revisionBefore, 'no etcd write while the block has room');
      assert.ok(more.every((r) => inside(block!.record.cidr, r.address)));
      // /27 holds 32 addresses; the next ones need a second block: exactly one more write.
      await Promise.all(Array.from({ length: 15 }, () => h.ipam.requestAddress(poolId)));
      assert.equal((await h.store.listBlocks(poolId)).size, 2);
    } finally {
      client.close();
    }
  });

  test('a released address is reused locally and --ip is honoured', async () => {
    const prefix = uniquePrefix();
    const h = await start('reuse', prefix);
    const { poolId } = await h.ipam.requestPool('10.233.2.0/24');
    const first = await h.ipam.requestAddress(poolId);
    await h.ipam.releaseAddress(poolId, first.address);
    await h.ipam.releaseAddress(poolId, first.address); // idempotent
    assert.equal((await h.ipam.requestAddress(poolId)).address, first.address);
    const wanted = await h.ipam.requestAddress(poolId, '10.233.2.200');
    assert.deepEqual(wanted, { address: '10.233.2.200', prefix: 24 });
    await expectCode(h.ipam.requestAddress(poolId, '10.233.2.200'), 'ADDRESS_TAKEN');
    await expectCode(h.ipam.requestAddress(poolId, '10.233.2.1'), 'ADDRESS_TAKEN');
  });

  test('a pool Docker releases with an address left keeps its block until that address is freed; the holdings show what the reconciler needs', async () => {
    const prefix = uniquePrefix();
    const h = await start('leftover', prefix);
    const { poolId } = await h.ipam.requestPool('10.233.6.0/24');
    const { address } = await h.ipam.requestAddress(poolId);
    const ownedInEtcd = async (): Promise<string[]> => [...(await h.store.listBlocks(poolId)).values()].filter((b) => b.record.host === h.id).map((b) => b.record.cidr);
    const [before] = await h.ipam.holdings();
    assert.ok(before?.requestedAt && !before.releasedAt && address in before.addresses);

    // The plugin was killed before Docker's ReleaseAddress: Docker releases the pool with the address still recorded.
    await h.ipam.releasePool(poolId);
    assert.equal((await ownedInEtcd()).length, 1, 'the block stays while an address is recorded');
    const [released] = await h.ipam.holdings();
    assert.ok(released?.releasedAt, 'Docker is recorded as done with the pool');
    assert.deepEqual(Object.keys(released.addresses), [address]);

    // What the reconciler does once the address is past its grace period.
    await h.ipam.releaseAddress(poolId, address);
    await h.ipam.releasePool(poolId);
    assert.deepEqual(await ownedInEtcd(), []);
    assert.deepEqual(await h.ipam.holdings(), []);

    // Docker asking again starts afresh: no release is pending.
    await h.ipam.requestPool('10.233.6.0/24');
    const [again] = await h.ipam.holdings();
    assert.ok(again && !again.releasedAt && Object.keys(again.addresses).length === 0);
    await h.ipam.releasePool(poolId);
  });

  test('a living host keeps its blocks; once its lease expires another host reclaims them', async () => {
    const prefix = uniquePrefix();
    // One block in the whole pool: whoever holds it blocks everyone else.
    const owner = await start('owner', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    const other = await start('other', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    const { poolId } = await owner.ipam.requestPool('10.233.3.0/28');
    await other.ipam.requestPool('10.233.3.0/28');
    const held = await owner.ipam.requestAddress(poolId);

    await expectCode(other.ipam.requestAddress(poolId), 'POOL_EXHAUSTED');
    // Several lease periods later the owner still lives (keepalive), so it still owns the block.
    await new Promise((r) => setTimeout(r, 5_000));
    await expectCode(other.ipam.requestAddress(poolId), 'POOL_EXHAUSTED');
    assert.ok(owner.lease.valid());

    await owner.crash();
    await waitFor('the owner host key to expire', async () => !(await other.store.listHosts()).has('owner'));
    const taken = await other.ipam.requestAddress(poolId);
    assert.ok(inside('10.233.3.0/28', taken.address));
    const [block] = (await other.store.listBlocks(poolId)).values();
    assert.equal(block!.record.host, 'other');
    assert.ok(held.address);
  });

  test('a host cut off past its lease finds its block taken when it returns, and does not use it', async () => {
    const prefix = uniquePrefix();
    const stateDirHost = await start('wanderer', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    const { poolId } = await stateDirHost.ipam.requestPool('10.233.4.0/28');
    await stateDirHost.ipam.requestAddress(poolId);
    await stateDirHost.crash();
    const other = await start('stayer', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    await other.ipam.requestPool('10.233.4.0/28');
    await waitFor('the wanderer to expire', async () => !(await other.store.listHosts()).has('wanderer'));
    await other.ipam.requestAddress(poolId);

    // Same host id and local state as before: it re-registers and checks its blocks.
    const back = await start('wanderer', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    await waitFor('the returning host to drop its lost block', async () => (await back.ipam.ownedBlocks(poolId)).length === 0);
    await expectCode(back.ipam.requestAddress(poolId), 'POOL_EXHAUSTED');
  });

  test('with one etcd member killed, hosts keep claiming blocks', async () => {
    const prefix = uniquePrefix();
    const trio = await Promise.all(['k1', 'k2', 'k3'].map((id) => start(id, prefix)));
    const { poolId } = await trio[0]!.ipam.requestPool('10.233.5.0/24');
    await Promise.all(trio.slice(1).map((h) => h.ipam.requestPool('10.233.5.0/24')));
    await etcd.kill(1);
    try {
      const got = await Promise.all(trio.flatMap((h) => Array.from({ length: 40 }, () => h.ipam.requestAddress(poolId))));
      const all = got.map((r) => r.address);
      assert.equal(new Set(all).size, all.length);
      assert.ok((await trio[2]!.store.listBlocks(poolId)).size >= 3, 'new blocks were claimed with a member down');
    } finally {
      etcd.restart(1);
      await etcd.waitHealthy();
    }
  });

  test('etcd fully down: a new block fails with ETCD_UNAVAILABLE, nothing is corrupted, no duplicate after it returns', async () => {
    const prefix = uniquePrefix();
    const a = await start('d1', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    const b = await start('d2', prefix, { blockPrefix: 28, ttlSeconds: 2 });
    const { poolId } = await a.ipam.requestPool('10.233.6.0/24');
    await b.ipam.requestPool('10.233.6.0/24');
    const first = await a.ipam.requestAddress(poolId);
    const [firstBlock] = await a.ipam.ownedBlocks(poolId);
    const capacity = 16 - ['10.233.6.0', '10.233.6.1', '10.233.6.255'].filter((ip) => inside(firstBlock!, ip)).length;
    const rest = await Promise.all(Array.from({ length: capacity - 1 }, () => a.ipam.requestAddress(poolId)));
    const before = [first.address, ...rest.map((r) => r.address)];
    assert.equal((await a.ipam.ownedBlocks(poolId)).length, 1, 'a filled exactly its first block');

    await etcd.killAll();
    const err = await a.ipam.requestAddress(poolId).then(
      () => assert.fail('a new block must not be claimed without etcd'),
      (e: unknown) => e as Error,
    );
    assert.ok(['ETCD_UNAVAILABLE', 'HOST_FENCED'].includes(clusterCodeOf(err) ?? ''), err.message);
    assert.match(err.message, /etcd/);
    const errB = await b.ipam.requestAddress(poolId).then(() => undefined, (e: unknown) => e);
    assert.ok(['ETCD_UNAVAILABLE', 'HOST_FENCED'].includes(clusterCodeOf(errB) ?? ''), String(errB));
    // Past the lease, even allocation inside an owned block stops: the block might be reclaimed elsewhere.
    await waitFor('host d1 to fence itself', async () => !a.lease.valid());
    await a.ipam.releaseAddress(poolId, before[0]!);
    await expectCode(a.ipam.requestAddress(poolId), 'HOST_FENCED');
    assert.deepEqual(await a.ipam.allocatedAddresses(poolId), before.slice(1), 'local state unchanged by failures');

    for (let i = 0; i < 3; i++) etcd.restart(i);
    await etcd.waitHealthy();
    await waitFor('both hosts to re-register', async () => a.lease.valid() && b.lease.valid(), 30_000);
    const afterA = await Promise.all(Array.from({ length: 30 }, () => a.ipam.requestAddress(poolId)));
    const afterB = await Promise.all(Array.from({ length: 30 }, () => b.ipam.requestAddress(poolId)));
    const all = [...before.slice(1), ...afterA.map((r) => r.address), ...afterB.map((r) => r.address)];
    assert.equal(new Set(all).size, all.length, 'no duplicate after etcd returned');
    const owners = new Map<string, string>();
    for (const block of (await a.store.listBlocks(poolId)).values()) owners.set(block.record.cidr, block.record.host);
    for (const h of [a, b]) for (const blk of await h.ipam.ownedBlocks(poolId)) assert.equal(owners.get(blk), h.id);
  });
});

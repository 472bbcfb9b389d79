import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfSubnet } from '../../../src/cni/ranges.js';
import { OPT, RequestPoolRequest, type RequestAddressRequest } from '../../../src/docker/api.js';
import { PluginError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { IpamDriver, type IpamDriverOptions } from '../../../src/ipam/ipam-driver.js';
import { ALLOCATION_ID_PREFIX } from '../../../src/names.js';
import { POOL_CODEC, type PoolRecord } from '../../../src/ipam/pool-record.js';
import { RecordStore } from '../../../src/state/record-store.js';
import { rejectsWith } from '../../helpers/plugin-errors.js';

const GATEWAY_OPTS = { [OPT.requestAddressType]: OPT.gatewayData };

interface Harness {
  root: string;
  stateDir: string;
  dataDir: string;
  routes: string[];
  driver: IpamDriver;
  make(overrides?: Partial<IpamDriverOptions>): Promise<IpamDriver>;
}

let h: Harness;

beforeEach(async () => {
  const root = await mkdtemp(join(tmpdir(), 'dcni-ipam-unit-'));
  const stateDir = join(root, 'state');
  const dataDir = join(root, 'host-local');
  const routes: string[] = [];
  const make = async (overrides: Partial<IpamDriverOptions> = {}): Promise<IpamDriver> => {
    const driver = new IpamDriver({
      pools: new RecordStore<PoolRecord>(stateDir, 'pools', true, POOL_CODEC),
      hostLocalDataDir: dataDir,
      defaultPoolsV4: ['10.231.0.0/16/24'],
      defaultPoolsV6: ['fd7d:c11d:4e7::/48/64'],
      hostRoutes: async () => routes,
      logger: silentLogger,
      ...overrides,
    });
    await driver.init();
    return driver;
  };
  h = { root, stateDir, dataDir, routes, driver: await make(), make };
});

afterEach(async () => {
  await rm(h.root, { recursive: true, force: true });
});

/** Docker's defaults applied, as the HTTP layer's zod parse would. */
const poolReq = (fields: Partial<RequestPoolRequest> = {}): RequestPoolRequest => RequestPoolRequest.parse(fields);
const addrReq = (PoolID: string, Address = '', Options?: Record<string, string>): RequestAddressRequest =>
  Options ? { PoolID, Address, Options } : { PoolID, Address };


/** Every path and file content under the temp root, to prove "no state change". */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const info = await lstat(path);
    if (info.isDirectory()) out.push(`${path}/`, ...(await snapshot(path)));
    else out.push(`${path}=${await readFile(path, 'utf8')}`);
  }
  return out;
}

describe('IpamDriver basics', () => {
  test('capabilities and address spaces', () => {
    assert.deepEqual(h.driver.getCapabilities(), { RequiresMACAddress: false, RequiresRequestReplay: false });
    assert.deepEqual(h.driver.getDefaultAddressSpaces(), {
      LocalDefaultAddressSpace: 'CniLocal',
      GlobalDefaultAddressSpace: 'CniGlobal',
    });
  });

  test('explicit pool is normalised, persisted before the reply, with its options', async () => {
    const res = await h.driver.requestPool(poolReq({ AddressSpace: 'CniLocal', Pool: '10.231.5.77/24', Options: { foo: 'bar' } }));
    assert.match(res.PoolID, /^dcni-[0-9a-f]{16}$/);
    assert.equal(res.Pool, '10.231.5.0/24');
    assert.deepEqual(res.Data, {});
    const onDisk = JSON.parse(await readFile(join(h.stateDir, 'pools', `${res.PoolID}.json`), 'utf8')) as PoolRecord;
    assert.equal(onDisk.pool, '10.231.5.0/24');
    assert.equal(onDisk.family, 4);
    assert.equal(onDisk.automatic, false);
    assert.deepEqual(onDisk.options, { foo: 'bar' });
  });

  test('automatic pool skips host routes and existing pools', async () => {
    h.routes.push('10.231.0.0/23', '10.231.2.128/25', '192.0.2.0/24');
    await h.driver.requestPool(poolReq({ Pool: '10.231.4.0/24' }));
    const first = await h.driver.requestPool(poolReq());
    const second = await h.driver.requestPool(poolReq());
    assert.equal(first.Pool, '10.231.3.0/24');
    assert.equal(second.Pool, '10.231.5.0/24');
    const record = await h.driver.getPool(first.PoolID);
    assert.equal(record?.automatic, true);
  });

  test('Docker\'s RequestPool retry loop (leases kept while it asks again): a different pool each time, and the leftovers released cleanly', async () => {
    const tries = [];
    for (let i = 0; i < 3; i++) tries.push(await h.driver.requestPool(poolReq()));
    assert.equal(new Set(tries.map((t) => t.Pool)).size, 3, tries.map((t) => t.Pool).join(' '));
    const [rejected1, rejected2, kept] = tries as [(typeof tries)[0], (typeof tries)[0], (typeof tries)[0]];
    await h.driver.releasePool({ PoolID: rejected1.PoolID });
    await h.driver.releasePool({ PoolID: rejected2.PoolID });
    assert.deepEqual((await h.driver.listPools()).map((p) => p.poolId), [kept.PoolID]);
    // The released subnets are free again; the kept one is not handed out twice.
    const next = await h.driver.requestPool(poolReq());
    assert.notEqual(next.Pool, kept.Pool);
    assert.ok([rejected1.Pool, rejected2.Pool].includes(next.Pool), `expected a released pool back, got ${next.Pool}`);
  });

  test('automatic IPv6 pool uses the v6 defaults', async () => {
    h.routes.push('fd7d:c11d:4e7::/64');
    const res = await h.driver.requestPool(poolReq({ V6: true }));
    assert.equal(res.Pool, 'fd7d:c11d:4e7:1::/64');
    assert.equal((await h.driver.getPool(res.PoolID))?.family, 6);
  });

  test('automatic pools run out with EXHAUSTED', async () => {
    const driver = await h.make({ defaultPoolsV4: ['10.232.0.0/23/24'] });
    await driver.requestPool(poolReq());
    await driver.requestPool(poolReq());
    await rejectsWith(driver.requestPool(poolReq()), 'EXHAUSTED', /10\.232\.0\.0\/23/);
  });

  test('an unreadable route table does not block automatic pools', async () => {
    const driver = await h.make({ hostRoutes: async () => { throw new Error('no procfs'); } });
    assert.equal((await driver.requestPool(poolReq())).Pool, '10.231.0.0/24');
  });

  test('overlapping explicit pool is a CONFLICT naming both pools, and changes nothing', async () => {
    const big = await h.driver.requestPool(poolReq({ Pool: '10.231.0.0/16' }));
    const before = await snapshot(h.root);
    const err = await rejectsWith(h.driver.requestPool(poolReq({ Pool: '10.231.5.0/24' })), 'CONFLICT');
    assert.match(err.message, /10\.231\.5\.0\/24/);
    assert.match(err.message, /10\.231\.0\.0\/16/);
    assert.ok(err.message.includes(big.PoolID));
    assert.deepEqual(await snapshot(h.root), before);
  });

  test('v4 and v6 pools never conflict with each other', async () => {
    await h.driver.requestPool(poolReq({ Pool: '10.231.0.0/16' }));
    await h.driver.requestPool(poolReq({ Pool: 'fd7d:c11d:4e7:5::/64', V6: true }));
    assert.equal((await h.driver.listPools()).length, 2);
  });

  test('concurrent automatic RequestPool calls get distinct subnets', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => h.driver.requestPool(poolReq())));
    const pools = results.map((r) => r.Pool);
    assert.equal(new Set(pools).size, 12, pools.join(' '));
    assert.equal(new Set(results.map((r) => r.PoolID)).size, 12);
  });

  test('a new IpamDriver on the same dirs sees the pools and their allocations', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.7.0/24' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS));
    const ep = await h.driver.requestAddress(addrReq(pool.PoolID));
    const restarted = await h.make();
    assert.deepEqual((await restarted.listPools()).map((p) => p.poolId), [pool.PoolID]);
    assert.equal((await restarted.getPool(pool.PoolID))?.gateway, '10.231.7.1');
    await rejectsWith(restarted.requestPool(poolReq({ Pool: '10.231.7.128/25' })), 'CONFLICT');
    await restarted.releaseAddress({ PoolID: pool.PoolID, Address: ep.Address.split('/')[0]! });
    assert.equal((await restarted.listReservations(pool.PoolID)).size, 0);
  });
});

describe('IpamDriver addresses', () => {
  test('gateway: first usable address, kept in the record, passed to host-local, released from the record', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const gw = await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS));
    assert.equal(gw.Address, '10.231.9.1/24');
    assert.deepEqual(await readdir(join(h.dataDir, pool.PoolID)).catch(() => []), [], 'the gateway is never a host-local reservation');
    assert.equal((await h.driver.getPool(pool.PoolID))?.gateway, '10.231.9.1');

    const ep = await h.driver.requestAddress(addrReq(pool.PoolID));
    assert.equal(ep.Address, '10.231.9.2/24');

    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: '10.231.9.1' });
    assert.equal((await h.driver.getPool(pool.PoolID))?.gateway, undefined);
  });

  test('gateway: an explicit address; a second, different gateway is a CONFLICT', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const gw = await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.254', GATEWAY_OPTS));
    assert.equal(gw.Address, '10.231.9.254/24');
    assert.deepEqual(await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.254', GATEWAY_OPTS)), gw);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.253', GATEWAY_OPTS)), 'CONFLICT', /already has gateway/);
    // .1 is not the gateway here, so host-local may hand it out.
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID))).Address, '10.231.9.1/24');
  });

  test('gateway: skips addresses host-local already handed out; IPv6 works the same', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: 'fd7d:c11d:4e7:9::/64', V6: true }));
    const gw = await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS));
    assert.equal(gw.Address, 'fd7d:c11d:4e7:9::1/64');
    const ep = await h.driver.requestAddress(addrReq(pool.PoolID, 'fd7d:c11d:4e7:9::2'));
    assert.equal(ep.Address, 'fd7d:c11d:4e7:9::2/64');
    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: 'fd7d:c11d:4e7:9::1' });
    // fd7d:c11d:4e7:9::1 is free again, so it is picked again; then ::2 is taken, so ::3.
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS))).Address, 'fd7d:c11d:4e7:9::1/64');
    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: 'fd7d:c11d:4e7:9::1' });
    await h.driver.requestAddress(addrReq(pool.PoolID, 'fd7d:c11d:4e7:9::1'));
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS))).Address, 'fd7d:c11d:4e7:9::3/64');
  });

  test('gateway on an address an endpoint holds is a CONFLICT', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.50'));
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.50', GATEWAY_OPTS)), 'CONFLICT', /10\.231\.9\.50/);
  });

  test("a requested address is reserved as host-local reserves it: its file names a fresh allocation ID, and last_reserved_ip.0", async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const res = await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.77'));
    assert.equal(res.Address, '10.231.9.77/24');
    const dir = join(h.dataDir, pool.PoolID);
    assert.match(await readFile(join(dir, '10.231.9.77'), 'utf8'), new RegExp(`^${ALLOCATION_ID_PREFIX}[0-9a-f]{16}\\r\\neth0$`));
    assert.equal(await readFile(join(dir, 'last_reserved_ip.0'), 'utf8'), '10.231.9.77');
    // "ip/len" is accepted too, when len is the pool's.
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.78/24'))).Address, '10.231.9.78/24');
  });

  test('requested address errors: taken, gateway, outside, network/broadcast', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS));
    await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.77'));
    const before = await snapshot(h.root);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.77')), 'CONFLICT', /10\.231\.9\.77 is already in use in pool 10\.231\.9\.0\/24 \(held by dcni-alloc-[0-9a-f]+\)/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.1')), 'CONFLICT', /gateway/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.10.1')), 'INVALID_ARGUMENT', /outside pool 10\.231\.9\.0\/24/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.0')), 'INVALID_ARGUMENT', /network or broadcast/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.255')), 'INVALID_ARGUMENT', /network or broadcast/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.5/16')), 'INVALID_ARGUMENT', /prefix length/);
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, 'fd7d::1')), 'INVALID_ARGUMENT', /outside pool/);
    assert.deepEqual(await snapshot(h.root), before);
  });

  test('a race lost inside host-local maps to CONFLICT', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const results = await Promise.allSettled([
      h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.9')),
      h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.9')),
    ]);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(failures.length, 1);
    assert.equal((failures[0]!.reason as PluginError).code, 'CONFLICT');
    assert.equal((await h.driver.listReservations(pool.PoolID)).size, 1);
  });

  test('exhausted pool gives EXHAUSTED with a clear message', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/30' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS)); // .1
    await h.driver.requestAddress(addrReq(pool.PoolID)); // .2
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID)), 'EXHAUSTED', /pool 10\.231\.9\.0\/30 is exhausted/);
  });

  test('SubPool: allocations come from the range; --ip outside the range but inside the pool still works', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24', SubPool: '10.231.9.128/25' }));
    const record = (await h.driver.getPool(pool.PoolID))!;
    assert.deepEqual([record.subPool, record.rangeStart, record.rangeEnd], ['10.231.9.128/25', '10.231.9.128', '10.231.9.254']);
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS))).Address, '10.231.9.128/24');
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID))).Address, '10.231.9.129/24');
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.10'))).Address, '10.231.9.10/24');
    assert.equal((await h.driver.requestAddress(addrReq(pool.PoolID))).Address, '10.231.9.130/24', 'the range resumes after .129');
  });

  test('SubPool validation', async () => {
    await rejectsWith(h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24', SubPool: '10.231.10.0/25' })), 'INVALID_ARGUMENT', /not inside/);
    await rejectsWith(h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24', SubPool: '10.231.8.0/23' })), 'INVALID_ARGUMENT', /not inside/);
    await rejectsWith(h.driver.requestPool(poolReq({ SubPool: '10.231.9.0/25' })), 'INVALID_ARGUMENT', /explicit subnet/);
    await rejectsWith(h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24', SubPool: '10.231.9.255/32' })), 'INVALID_ARGUMENT', /no usable/);
    assert.deepEqual(await h.driver.listPools(), []);
  });

  test('ReleaseAddress removes exactly the address\'s host-local file, with no plugin run; a second release is a no-op', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const a = await h.driver.requestAddress(addrReq(pool.PoolID));
    const b = await h.driver.requestAddress(addrReq(pool.PoolID));
    const ipA = a.Address.split('/')[0]!;

    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: ipA });
    const left = await h.driver.listReservations(pool.PoolID);
    assert.deepEqual([...left.keys()], [b.Address.split('/')[0]]);
    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: ipA });
    assert.deepEqual([...(await h.driver.listReservations(pool.PoolID)).keys()], [b.Address.split('/')[0]]);
  });

  test('releasing a file host-local wrote for someone else removes it too (Docker owns every address of its pool)', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    await mkdir(join(h.dataDir, pool.PoolID), { recursive: true });
    await writeFile(join(h.dataDir, pool.PoolID, '10.231.9.40'), 'other-runtime-123\r\neth3');
    assert.deepEqual(Object.fromEntries(await h.driver.listReservations(pool.PoolID)), {
      '10.231.9.40': { containerId: 'other-runtime-123', ifName: 'eth3' },
    });
    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: '10.231.9.40' });
    assert.deepEqual(Object.fromEntries(await h.driver.listReservations(pool.PoolID)), {});
  });

  test("host-local's round robin: after the last reserved address, round the range's end, skipping what anyone holds", async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/29' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '', GATEWAY_OPTS)); // .1
    const next = async (): Promise<string> => (await h.driver.requestAddress(addrReq(pool.PoolID))).Address;
    assert.deepEqual([await next(), await next()], ['10.231.9.2/29', '10.231.9.3/29']);
    await h.driver.releaseAddress({ PoolID: pool.PoolID, Address: '10.231.9.2' });
    assert.equal(await next(), '10.231.9.4/29', 'a freed address waits for its turn');
    await writeFile(join(h.dataDir, pool.PoolID, '10.231.9.5'), 'other-runtime-1\r\neth0');
    assert.deepEqual([await next(), await next()], ['10.231.9.6/29', '10.231.9.2/29'], 'then round to the start, past the gateway');
    await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID)), 'EXHAUSTED', /pool 10\.231\.9\.0\/29 is exhausted/);
  });

  test('unknown pools are NOT_FOUND; ReleasePool of an unknown pool succeeds', async () => {
    const ghost = 'dcni-0123456789abcdef';
    await rejectsWith(h.driver.requestAddress(addrReq(ghost)), 'NOT_FOUND', /unknown pool dcni-0123456789abcdef/);
    await rejectsWith(h.driver.releaseAddress({ PoolID: ghost, Address: '10.231.9.3' }), 'NOT_FOUND');
    await h.driver.releasePool({ PoolID: ghost });
  });

  test('bad CIDRs, addresses, PoolIDs and traversal strings are rejected with no state change', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    await h.driver.requestAddress(addrReq(pool.PoolID, '10.231.9.5'));
    const before = await snapshot(h.root);
    for (const Pool of ['10.231.5.0/33', '10.231.5.0', 'nonsense', '10.231.05.0/24', '../../etc/24', '10.231.5.0/31', 'fd7d::/127']) {
      await rejectsWith(h.driver.requestPool(poolReq({ Pool, V6: Pool.includes(':') })), 'INVALID_ARGUMENT', undefined);
    }
    await rejectsWith(h.driver.requestPool(poolReq({ Pool: 'fd7d:c11d:4e7:1::/64' })), 'INVALID_ARGUMENT', /IPv6 but an IPv4/);
    await rejectsWith(h.driver.requestPool(poolReq({ AddressSpace: 'Elsewhere' })), 'INVALID_ARGUMENT', /address space/);
    for (const Address of ['../../../etc/passwd', '10.231.9.5/../../x', '10.231.9.300', '10.231.9.5 ', 'fd7d::1%eth0', '10.231.9.05']) {
      await rejectsWith(h.driver.requestAddress(addrReq(pool.PoolID, Address)), 'INVALID_ARGUMENT');
      await rejectsWith(h.driver.releaseAddress({ PoolID: pool.PoolID, Address }), 'INVALID_ARGUMENT');
    }
    for (const PoolID of ['../state', `${pool.PoolID}/../../x`, '..', 'dcni-0123456789ABCDEF', '/etc', 'dcni-0123456789abcde']) {
      await rejectsWith(h.driver.requestAddress(addrReq(PoolID)), 'INVALID_ARGUMENT', /invalid PoolID/);
      await rejectsWith(h.driver.releaseAddress({ PoolID, Address: '10.231.9.5' }), 'INVALID_ARGUMENT', /invalid PoolID/);
      await rejectsWith(h.driver.releasePool({ PoolID }), 'INVALID_ARGUMENT', /invalid PoolID/);
      await assert.rejects(h.driver.listReservations(PoolID));
    }
    assert.deepEqual(await snapshot(h.root), before);
  });

  test('ReleasePool removes the record and host-local\'s files only, never following symlinks; it is idempotent', async () => {
    const outside = join(h.root, 'precious');
    await writeFile(outside, 'keep me');
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    await h.driver.requestAddress(addrReq(pool.PoolID));
    const poolDir = join(h.dataDir, pool.PoolID);
    await writeFile(join(poolDir, 'lock'), '');
    await writeFile(join(poolDir, 'last_reserved_ip.0'), '10.231.9.2');

    await h.driver.releasePool({ PoolID: pool.PoolID });
    await assert.rejects(lstat(poolDir), { code: 'ENOENT' });
    assert.equal(await h.driver.getPool(pool.PoolID), undefined);
    await h.driver.releasePool({ PoolID: pool.PoolID });

    // A directory holding things host-local never makes is left in place, and symlinks are not followed.
    const other = await h.driver.requestPool(poolReq({ Pool: '10.231.10.0/24' }));
    const otherDir = join(h.dataDir, other.PoolID);
    await mkdir(otherDir, { recursive: true });
    await symlink(outside, join(otherDir, '10.231.10.5'));
    await writeFile(join(otherDir, 'notes.txt'), 'foreign');
    await h.driver.releasePool({ PoolID: other.PoolID });
    assert.equal(await readFile(outside, 'utf8'), 'keep me');
    assert.deepEqual((await readdir(otherDir)).sort(), ['10.231.10.5', 'notes.txt']);
    assert.equal(await h.driver.getPool(other.PoolID), undefined);
  });

  test('a symlinked allocation file is refused rather than read', async () => {
    const pool = await h.driver.requestPool(poolReq({ Pool: '10.231.9.0/24' }));
    const outside = join(h.root, 'fake-holder');
    await writeFile(outside, 'victim\r\neth0');
    await mkdir(join(h.dataDir, pool.PoolID), { recursive: true });
    await symlink(outside, join(h.dataDir, pool.PoolID, '10.231.9.7'));
    await rejectsWith(h.driver.releaseAddress({ PoolID: pool.PoolID, Address: '10.231.9.7' }), 'STATE_FAILED');
  });

  test('constructor rejects malformed default pools', () => {
    const base = {
      pools: new RecordStore<PoolRecord>(h.stateDir, 'pools', true, POOL_CODEC),
      hostLocalDataDir: h.dataDir,
      logger: silentLogger,
    };
    assert.throws(() => new IpamDriver({ ...base, defaultPoolsV4: ['10.231.0.0/16'], defaultPoolsV6: [] }), /subnet prefix/);
    assert.throws(() => new IpamDriver({ ...base, defaultPoolsV4: ['fd7d::/48/64'], defaultPoolsV6: [] }), /not an IPv4/);
  });
});

describe('IpamDriver --ipam-opt cni.network=<conflist>', () => {
  const subnets = async (name: string): Promise<ConfSubnet[]> => {
    if (name !== 'web') throw new Error(`no CNI network config named "${name}"`);
    return [
      { family: 4, subnet: '10.233.7.0/24', gateway: '10.233.7.1', rangeStart: '10.233.7.10', rangeEnd: '10.233.7.99' },
      { family: 6, subnet: 'fd00:7::/64' },
    ];
  };

  test('without --subnet the pool is the conflist\'s range, with its rangeStart/rangeEnd, in each family', async () => {
    const driver = await h.make({ conflistSubnets: subnets });
    const v4 = await driver.requestPool(poolReq({ Options: { 'cni.network': 'web' } }));
    assert.equal(v4.Pool, '10.233.7.0/24');
    const record = await driver.getPool(v4.PoolID);
    assert.equal(record?.rangeStart, '10.233.7.10');
    assert.equal(record?.rangeEnd, '10.233.7.99');
    assert.equal(record?.automatic, false);
    const v6 = await driver.requestPool(poolReq({ V6: true, Options: { 'cni.network': 'web' } }));
    assert.equal(v6.Pool, 'fd00:7::/64');
  });

  test('a --subnet the conflist does not declare is refused naming both; the declared one is accepted', async () => {
    const driver = await h.make({ conflistSubnets: subnets });
    await assert.rejects(
      driver.requestPool(poolReq({ Pool: '10.233.8.0/24', Options: { 'cni.network': 'web' } })),
      /subnet 10\.233\.8\.0\/24 contradicts conflist "web", whose IPv4 range is 10\.233\.7\.0\/24/,
    );
    const ok = await driver.requestPool(poolReq({ Pool: '10.233.7.0/24', Options: { 'cni.network': 'web' } }));
    assert.equal(ok.Pool, '10.233.7.0/24');
  });
});

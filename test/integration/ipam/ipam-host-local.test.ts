/**
 * The IPAM driver's in-process reservations against the real host-local
 * binary (the plugin set under test), sharing temp state and data dirs.
 * host-local only touches files, so no network state is created; root is
 * needed because the plugin is run as it would be.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPT, RequestPoolRequest } from '../../../src/docker/api.js';
import { PluginError } from '../../../src/errors.js';
import { ALLOCATION_ID_PREFIX, IpamDriver } from '../../../src/ipam/ipam-driver.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { HOST_LOCAL_BIN, HostLocalRunner, hostLocalNetconf, ipamDriverOn } from './host-local-runner.js';

const GATEWAY_OPTS = { [OPT.requestAddressType]: OPT.gatewayData };
const ipOf = (cidr: string): string => cidr.split('/')[0]!;

const skip = skipUnless([
  [isRoot(), 'root'],
  [existsSync(HOST_LOCAL_BIN), HOST_LOCAL_BIN],
]);

describe('IpamDriver with the real host-local', { skip }, () => {
  let root: string;
  let stateDir: string;
  let dataDir: string;
  let driver: IpamDriver;
  let runner: HostLocalRunner;
  // A random /24 inside 10.232.0.0/16 per run, so parallel runs do not look alike.
  const third = 1 + Math.floor(Math.random() * 250);
  const subnet = `10.232.${third}.0/24`;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'dcni-ipam-int-'));
    stateDir = join(root, 'state');
    dataDir = join(root, 'host-local');
    runner = new HostLocalRunner();
    driver = await ipamDriverOn(root, dataDir);
  });

  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('allocate, honour --ip, reject taken, release exactly one, release all, nothing left', async () => {
    const pool = await driver.requestPool(RequestPoolRequest.parse({ Pool: subnet }));
    const gateway = await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GATEWAY_OPTS });
    assert.equal(gateway.Address, `10.232.${third}.1/24`);

    const allocated: string[] = [];
    for (let i = 0; i < 4; i++) allocated.push((await driver.requestAddress({ PoolID: pool.PoolID, Address: '' })).Address);
    assert.deepEqual(allocated, [2, 3, 4, 5].map((n) => `10.232.${third}.${n}/24`));

    // host-local's own layout: one file per IP holding "<containerId>\r\n<ifname>", plus its round-robin position
    // (its `lock` appears once host-local itself runs).
    const poolDir = join(dataDir, pool.PoolID);
    const files = (await readdir(poolDir)).sort();
    assert.deepEqual(files, [...allocated.map(ipOf), 'last_reserved_ip.0'].sort());
    for (const ip of allocated.map(ipOf)) {
      assert.match(await readFile(join(poolDir, ip), 'utf8'), new RegExp(`^${ALLOCATION_ID_PREFIX}[0-9a-f]{16}\\r\\neth0$`));
    }

    const requested = await driver.requestAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.200` });
    assert.equal(requested.Address, `10.232.${third}.200/24`);
    await assert.rejects(
      driver.requestAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.200` }),
      (err: PluginError) => err.code === 'CONFLICT' && /already in use/.test(err.message),
    );
    await assert.rejects(
      driver.requestAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.1` }),
      (err: PluginError) => err.code === 'CONFLICT' && /gateway/.test(err.message),
    );

    const victim = ipOf(allocated[1]!);
    await driver.releaseAddress({ PoolID: pool.PoolID, Address: victim });
    const afterRelease = (await readdir(poolDir)).sort();
    assert.deepEqual(afterRelease, files.filter((f) => f !== victim).concat(ipOf(requested.Address)).sort());
    await driver.releaseAddress({ PoolID: pool.PoolID, Address: victim }); // idempotent

    // The release is done in-process; real host-local, run as another tool would, must see the address as free,
    // and docker-cni must then respect that tool's reservation.
    const foreign = { containerId: 'other-tool-0001', netns: '/proc/self/ns/net', netnsOverride: true, ifName: 'eth0', args: [['IgnoreUnknown', '1'], ['IP', victim]] as Array<[string, string]> };
    const netconf = hostLocalNetconf(pool.PoolID, dataDir, subnet, ipOf(gateway.Address));
    const taken = await runner.execIpam('ADD', netconf, foreign);
    assert.equal(taken?.ips?.[0]?.address, `${victim}/24`);
    await assert.rejects(
      driver.requestAddress({ PoolID: pool.PoolID, Address: victim }),
      (err: PluginError) => err.code === 'CONFLICT' && /already in use/.test(err.message),
    );
    await runner.execIpam('DEL', netconf, foreign);
    assert.deepEqual((await readdir(poolDir)).sort(), [...afterRelease, 'lock'].sort(), "host-local's DEL of its holder left docker-cni's files alone");

    for (const address of [...allocated, requested.Address, gateway.Address]) {
      await driver.releaseAddress({ PoolID: pool.PoolID, Address: ipOf(address) });
    }
    assert.equal((await driver.listReservations(pool.PoolID)).size, 0);
    await driver.releasePool({ PoolID: pool.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
    assert.deepEqual(await readdir(join(stateDir, 'pools')), []);
  });

  test('--ip-range with --ip outside it, and an IPv6 pool, against real host-local', async () => {
    const pool = await driver.requestPool(
      RequestPoolRequest.parse({ Pool: `10.232.${(third + 1) % 256}.0/24`, SubPool: `10.232.${(third + 1) % 256}.128/26` }),
    );
    const prefix = `10.232.${(third + 1) % 256}`;
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GATEWAY_OPTS })).Address, `${prefix}.128/24`);
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: '' })).Address, `${prefix}.129/24`);
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: `${prefix}.7` })).Address, `${prefix}.7/24`);

    const v6 = await driver.requestPool(RequestPoolRequest.parse({ V6: true }));
    const v6gw = await driver.requestAddress({ PoolID: v6.PoolID, Address: '', Options: GATEWAY_OPTS });
    const v6ep = await driver.requestAddress({ PoolID: v6.PoolID, Address: '' });
    assert.equal(v6gw.Address, `${ipOf(v6.Pool)}1/64`);
    assert.equal(v6ep.Address, `${ipOf(v6.Pool)}2/64`);
    assert.ok(existsSync(join(dataDir, v6.PoolID, ipOf(v6ep.Address))), 'host-local names v6 files in compressed form');
    await driver.releaseAddress({ PoolID: v6.PoolID, Address: ipOf(v6ep.Address) });
    assert.equal((await driver.listReservations(v6.PoolID)).size, 0);

    await driver.releasePool({ PoolID: pool.PoolID });
    await driver.releasePool({ PoolID: v6.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
  });

  test('a full pool is EXHAUSTED', async () => {
    const pool = await driver.requestPool(RequestPoolRequest.parse({ Pool: `10.232.${(third + 2) % 256}.0/30` }));
    await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GATEWAY_OPTS });
    await driver.requestAddress({ PoolID: pool.PoolID, Address: '' });
    await assert.rejects(
      driver.requestAddress({ PoolID: pool.PoolID, Address: '' }),
      (err: PluginError) => err.code === 'EXHAUSTED' && /exhausted/.test(err.message),
    );
    await driver.releasePool({ PoolID: pool.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
  });

  test('50 concurrent RequestAddress calls on one pool get 50 distinct addresses', async () => {
    const pool = await driver.requestPool(RequestPoolRequest.parse({ Pool: `10.232.${(third + 3) % 256}.0/24` }));
    await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: GATEWAY_OPTS });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => driver.requestAddress({ PoolID: pool.PoolID, Address: '' })),
    );
    const addresses = new Set(results.map((r) => r.Address));
    assert.equal(addresses.size, 50);
    const reservations = await driver.listReservations(pool.PoolID);
    assert.deepEqual([...reservations.keys()].sort(), [...addresses].map(ipOf).sort());
    await Promise.all(results.map((r) => driver.releaseAddress({ PoolID: pool.PoolID, Address: ipOf(r.Address) })));
    assert.equal((await driver.listReservations(pool.PoolID)).size, 0);
    await driver.releasePool({ PoolID: pool.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
    assert.deepEqual(await readdir(join(stateDir, 'pools')), []);
  });
});

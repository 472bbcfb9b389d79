/**
 * docker-cni's in-process reservations and the real host-local, run through
 * the project's CniRuntime as any CNI runtime would run it, taking turns on
 * one pool directory: every address is distinct, and together they follow
 * host-local's own order (one round robin, kept in `last_reserved_ip.0`), so
 * neither side can tell the other is not host-local.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniRuntime } from '../../../src/cni/runtime.js';
import type { RuntimeConf } from '../../../src/cni/types.js';
import { OPT, RequestPoolRequest } from '../../../src/docker/api.js';
import { silentLogger } from '../../../src/log.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { HOST_LOCAL_BIN, HOST_LOCAL_DIR, hostLocalNetconf, ipamDriverOn } from './host-local-runner.js';

const skip = skipUnless([
  [isRoot(), 'root'],
  [existsSync(HOST_LOCAL_BIN), HOST_LOCAL_BIN],
]);

describe('docker-cni and host-local (through CniRuntime) share a pool', { skip }, () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'dcni-ipam-rt-'));
  });

  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  test("turns on a /29: distinct addresses in host-local's order, round the end, until both see it exhausted", async () => {
    const runtime = new CniRuntime({ binDirs: [HOST_LOCAL_DIR], cacheDir: join(root, 'cache'), logger: silentLogger });
    const dataDir = join(root, 'host-local');
    const driver = await ipamDriverOn(root, dataDir);
    const prefix = `10.232.${1 + Math.floor(Math.random() * 250)}`;
    const subnet = `${prefix}.0/29`;
    const pool = await driver.requestPool(RequestPoolRequest.parse({ Pool: subnet }));
    const gw = { [OPT.requestAddressType]: OPT.gatewayData };
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: gw })).Address, `${prefix}.1/29`);
    const netconf = hostLocalNetconf(pool.PoolID, dataDir, subnet, `${prefix}.1`);
    const rtOf = (n: number): RuntimeConf => ({ containerId: `other-tool-${n}`, netns: '/proc/self/ns/net', netnsOverride: true, ifName: 'eth0' });

    const ours = async (): Promise<string> => (await driver.requestAddress({ PoolID: pool.PoolID, Address: '' })).Address.split('/')[0]!;
    const theirs = async (n: number): Promise<string> => (await runtime.execIpam('ADD', netconf, rtOf(n)))?.ips?.[0]?.address.split('/')[0] ?? '';

    const order = [await ours(), await theirs(1), await ours(), await theirs(2)];
    assert.deepEqual(order, [2, 3, 4, 5].map((n) => `${prefix}.${n}`));
    // A freed address comes round again only after the range's end, for either side.
    await driver.releaseAddress({ PoolID: pool.PoolID, Address: `${prefix}.2` });
    await runtime.execIpam('DEL', netconf, rtOf(1)); // frees .3
    assert.deepEqual([await theirs(3), await ours(), await theirs(4)], [`${prefix}.6`, `${prefix}.2`, `${prefix}.3`]);
    assert.equal(await readFile(join(dataDir, pool.PoolID, 'last_reserved_ip.0'), 'utf8'), `${prefix}.3`);
    await assert.rejects(ours(), /exhausted/);
    await assert.rejects(theirs(5), /no IP addresses available/);

    for (const n of [2, 3, 4]) await runtime.execIpam('DEL', netconf, rtOf(n));
    for (const ip of (await driver.listReservations(pool.PoolID)).keys()) await driver.releaseAddress({ PoolID: pool.PoolID, Address: ip });
    await driver.releaseAddress({ PoolID: pool.PoolID, Address: `${prefix}.1` });
    await driver.releasePool({ PoolID: pool.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
  });
});

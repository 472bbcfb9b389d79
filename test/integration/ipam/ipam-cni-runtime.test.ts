/**
 * The IPAM driver with the project's real CniRuntime as its runner: proves the
 * structural IpamPluginRunner contract holds end to end (validation of our
 * container IDs, netns, CNI_ARGS and netconf by the runtime included).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniRuntime } from '../../../src/cni/runtime.js';
import { OPT, RequestPoolRequest } from '../../../src/docker/api.js';
import type { IpamPluginRunner } from '../../../src/ipam/ipam-driver.js';
import { silentLogger } from '../../../src/log.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { HOST_LOCAL_BIN, HOST_LOCAL_DIR, ipamDriverOn } from './host-local-runner.js';

const skip = skipUnless([
  [isRoot(), 'root'],
  [existsSync(HOST_LOCAL_BIN), HOST_LOCAL_BIN],
]);

describe('IpamDriver with CniRuntime as its runner', { skip }, () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'dcni-ipam-rt-'));
  });

  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('gateway, allocation, --ip, v6, release and pool release', async () => {
    const runtime = new CniRuntime({ binDirs: [HOST_LOCAL_DIR], cacheDir: join(root, 'cache'), logger: silentLogger });
    const runner: IpamPluginRunner = runtime;
    const dataDir = join(root, 'host-local');
    const driver = await ipamDriverOn(runner, root, dataDir);
    const third = 1 + Math.floor(Math.random() * 250);

    const pool = await driver.requestPool(RequestPoolRequest.parse({ Pool: `10.232.${third}.0/24` }));
    const gw = { [OPT.requestAddressType]: OPT.gatewayData };
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: '', Options: gw })).Address, `10.232.${third}.1/24`);
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: '' })).Address, `10.232.${third}.2/24`);
    assert.equal((await driver.requestAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.9` })).Address, `10.232.${third}.9/24`);

    const v6 = await driver.requestPool(RequestPoolRequest.parse({ V6: true, Pool: 'fd7d:c11d:4e7:77::/64' }));
    assert.equal((await driver.requestAddress({ PoolID: v6.PoolID, Address: 'fd7d:c11d:4e7:77::20' })).Address, 'fd7d:c11d:4e7:77::20/64');

    await driver.releaseAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.2` });
    await driver.releaseAddress({ PoolID: pool.PoolID, Address: `10.232.${third}.9` });
    await driver.releaseAddress({ PoolID: v6.PoolID, Address: 'fd7d:c11d:4e7:77::20' });
    assert.equal((await driver.listReservations(pool.PoolID)).size, 0);
    assert.equal((await driver.listReservations(v6.PoolID)).size, 0);
    await driver.releasePool({ PoolID: pool.PoolID });
    await driver.releasePool({ PoolID: v6.PoolID });
    assert.deepEqual(await readdir(dataDir), []);
  });
});

import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  cacheFilePath,
  listCacheEntries,
  readCacheEntry,
  removeCacheEntry,
  writeCacheEntry,
} from '../../../src/cni/cache.js';
import { PluginError } from '../../../src/errors.js';
import { removeDir, tempDir } from './helpers.js';

describe('CNI result cache (libcni cniCacheV1)', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('cni-cache-');
  });
  after(async () => removeDir(dir));

  test('writes libcni keys at results/<net>-<cid>-<ifname>, mode 0600, no temp files', async () => {
    const config = Buffer.from('{"cniVersion":"0.4.0","name":"net-1","plugins":[{"type":"bridge"}]}');
    await writeCacheEntry(dir, {
      kind: 'cniCacheV1',
      containerId: 'ctr1',
      config: config.toString('base64'),
      ifName: 'eth0',
      networkName: 'net-1',
      netns: '/run/netns/x',
      cniArgs: [['IP', '10.232.0.5']],
      capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
      result: { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.232.0.5/24' } as never] },
    });
    const path = join(dir, 'results', 'net-1-ctr1-eth0');
    assert.equal(cacheFilePath(dir, 'net-1', 'ctr1', 'eth0'), path);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(join(dir, 'results')), ['net-1-ctr1-eth0']);
    const onDisk = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(onDisk).sort(), [
      'capabilityArgs', 'cniArgs', 'config', 'containerId', 'ifName', 'kind', 'netns', 'networkName', 'result',
    ]);
    assert.equal(onDisk.kind, 'cniCacheV1');
    assert.equal(Buffer.from(onDisk.config as string, 'base64').toString(), config.toString());
    assert.deepEqual(onDisk.cniArgs, [['IP', '10.232.0.5']]);
    assert.equal((onDisk.result as { cniVersion: string }).cniVersion, '0.4.0', 'stored in the chain version');

    const read = await readCacheEntry(dir, 'net-1', 'ctr1', 'eth0');
    assert.equal(read?.result?.cniVersion, '1.0.0', 'read back normalised');
    assert.deepEqual(read?.result?.ips, [{ address: '10.232.0.5/24' }]);
  });

  test('omits empty optional fields like libcni', async () => {
    await writeCacheEntry(dir, { kind: 'cniCacheV1', containerId: 'ctr2', config: 'e30=', ifName: 'eth1', networkName: 'net-1', netns: '', cniArgs: [], capabilityArgs: {} });
    const onDisk = JSON.parse(await readFile(join(dir, 'results', 'net-1-ctr2-eth1'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(onDisk).sort(), ['config', 'containerId', 'ifName', 'kind', 'networkName']);
  });

  test('lists by network using the fields, skips corrupt files, removes idempotently', async () => {
    await mkdir(join(dir, 'results'), { recursive: true });
    await writeFile(join(dir, 'results', 'net-1-garbage-eth0'), 'not json');
    await writeCacheEntry(dir, { kind: 'cniCacheV1', containerId: 'x', config: 'e30=', ifName: 'eth0', networkName: 'net-10' });
    const corrupt: string[] = [];
    const entries = await listCacheEntries(dir, { networkName: 'net-1' }, (path) => corrupt.push(path));
    assert.deepEqual(entries.map((e) => e.containerId).sort(), ['ctr1', 'ctr2']);
    assert.deepEqual(corrupt, [join(dir, 'results', 'net-1-garbage-eth0')]);
    await assert.rejects(readCacheEntry(dir, 'net-1', 'garbage', 'eth0'), (err: unknown) => err instanceof PluginError && err.code === 'STATE_FAILED');
    assert.equal(await readCacheEntry(dir, 'net-1', 'nobody', 'eth0'), undefined);
    await removeCacheEntry(dir, 'net-1', 'ctr2', 'eth1');
    await removeCacheEntry(dir, 'net-1', 'ctr2', 'eth1');
    assert.equal(await readCacheEntry(dir, 'net-1', 'ctr2', 'eth1'), undefined);
  });

  test('refuses path-like names', () => {
    assert.throws(() => cacheFilePath(dir, '../x', 'c', 'eth0'), /network name/);
    assert.throws(() => cacheFilePath(dir, 'n', 'a/b', 'eth0'), /container ID/);
    assert.throws(() => cacheFilePath(dir, 'n', 'c', '../x'), /interface name/);
  });
});

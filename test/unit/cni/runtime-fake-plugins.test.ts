/* CniRuntime driving the fake plugin executables through the real ExecaPluginExecutor. */
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CniRuntime } from '../../../src/cni/runtime.js';
import type { NetConfList } from '../../../src/cni/types.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import { fakeBinDir, readCalls, removeDir, tempDir } from './helpers.js';

describe('CniRuntime with fake plugin executables', () => {
  let bin: string;
  let work: string;
  let runtime: CniRuntime;
  const record = (): string => join(work, 'calls.jsonl');
  const list = (secondFake: Record<string, unknown> = {}): NetConfList => ({
    cniVersion: '0.4.0',
    name: 'fakenet',
    plugins: [
      { type: 'fake-main', fake: { record: record() } },
      { type: 'fake-meta', capabilities: { portMappings: true }, fake: { record: record(), ...secondFake } },
    ],
  });
  const rt = { containerId: 'ctr-fake', netns: '/run/netns/fake', ifName: 'eth0', capabilityArgs: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] } };

  before(async () => {
    bin = await fakeBinDir(['fake-main', 'fake-meta']);
    work = await tempDir();
    runtime = new CniRuntime({ binDirs: ['/nonexistent-dir', bin], cacheDir: join(work, 'cache'), timeoutMs: 5000 });
  });
  after(async () => {
    await removeDir(bin);
    await removeDir(work);
  });

  test('ADD then DEL through real processes', async () => {
    const result = await runtime.addNetworkList(list(), rt);
    assert.equal(result.cniVersion, '1.0.0');
    assert.deepEqual(result.ips, [{ address: '10.232.250.2/24', gateway: '10.232.250.1', interface: 0 }]);
    const cacheFile = join(work, 'cache', 'results', 'fakenet-ctr-fake-eth0');
    assert.equal((await stat(cacheFile)).mode & 0o777, 0o600);
    await runtime.delNetworkList(list(), rt);
    const calls = await readCalls(record());
    assert.deepEqual(calls.map((c) => `${String(c.stdin.type)}:${c.command}`), ['fake-main:ADD', 'fake-meta:ADD', 'fake-meta:DEL', 'fake-main:DEL']);
    for (const call of calls) assert.equal(call.env.CNI_PATH, `/nonexistent-dir:${bin}`);
    assert.equal((calls[1]?.stdin.prevResult as { cniVersion: string }).cniVersion, '0.4.0');
    assert.deepEqual(calls[2]?.stdin.runtimeConfig, { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] });
    assert.ok(calls[3]?.stdin.prevResult, 'DEL of a 0.4.0 list gets the cached result');
    assert.deepEqual(await readdir(join(work, 'cache', 'results')), []);
  });

  test('a plugin timing out is killed, reported as TIMEOUT and rolled back', async () => {
    const quick = new CniRuntime({ binDirs: [bin], cacheDir: join(work, 'cache'), timeoutMs: 400 });
    const before = (await readCalls(record())).length;
    await assert.rejects(quick.addNetworkList(list({ sleepMs: 20_000 }), { ...rt, containerId: 'ctr-slow' }), (err: unknown) => {
      assert.ok(err instanceof PluginError);
      assert.equal(err.code, 'TIMEOUT');
      return true;
    });
    const calls = (await readCalls(record())).slice(before);
    assert.deepEqual(calls.map((c) => `${String(c.stdin.type)}:${c.command}`), ['fake-main:ADD', 'fake-meta:ADD', 'fake-meta:DEL', 'fake-main:DEL']);
  });

  test('the incompatible-version error of a plugin surfaces with its code', async () => {
    const old = await fakeBinDir(['fake-main', 'fake-meta'], { 'fake-meta': ['0.3.0', '0.3.1'] });
    try {
      const oldRuntime = new CniRuntime({ binDirs: [old], cacheDir: join(work, 'cache') });
      await assert.rejects(oldRuntime.addNetworkList(list(), { ...rt, containerId: 'ctr-old' }), (err: unknown) => {
        assert.ok(err instanceof CniPluginError);
        assert.equal(err.cniCode, 1);
        assert.equal(err.plugin, 'fake-meta');
        return true;
      });
      assert.deepEqual(await oldRuntime.getVersionInfo('fake-meta'), { cniVersion: '0.3.1', supportedVersions: ['0.3.0', '0.3.1'] });
      await oldRuntime.getVersionInfo('fake-meta');
      const versionCalls = (await readCalls(join(old, 'fake-meta.calls.jsonl'))).filter((c) => c.command === 'VERSION');
      assert.equal(versionCalls.length, 1, 'VERSION answer cached per binary');
    } finally {
      await removeDir(old);
    }
  });
});

import assert from 'node:assert/strict';
import { writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SpawnPluginExecutor } from '../../../src/cni/exec.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import { fakeBinDir, readCalls, removeDir, tempDir } from './helpers.js';

const env = (command: string): Record<string, string> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/run/netns/none',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'A=1;B=2',
  CNI_PATH: '/nowhere',
});

describe('SpawnPluginExecutor', () => {
  const executor = new SpawnPluginExecutor();
  let bin: string;
  let work: string;
  let plugin: string;
  const conf = (fake: Record<string, unknown>): Buffer =>
    Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'fake', fake: { record: join(work, 'calls.jsonl'), ...fake } }));

  before(async () => {
    bin = await fakeBinDir(['fake']);
    work = await tempDir();
    plugin = join(bin, 'fake');
  });
  after(async () => {
    await removeDir(bin);
    await removeDir(work);
  });

  test('success returns stdout; the plugin inherits the environment but only this call\'s CNI_* variables', async () => {
    process.env.DOCKER_CNI_INHERITED_TEST = 'inherited';
    process.env.CNI_IFNAME = 'stale0';
    process.env.CNI_STALE_TEST = 'stale';
    try {
      const out = await executor.execPlugin(plugin, conf({}), env('ADD'), 5000);
      const result = JSON.parse(out.toString()) as { ips: unknown[] };
      assert.equal(result.ips.length, 1);
    } finally {
      delete process.env.DOCKER_CNI_INHERITED_TEST;
      delete process.env.CNI_IFNAME;
      delete process.env.CNI_STALE_TEST;
    }
    const [call] = await readCalls(join(work, 'calls.jsonl'));
    assert.ok(call);
    const cniKeys = Object.keys(call.env).filter((k) => k.startsWith('CNI_')).sort();
    assert.deepEqual(cniKeys, ['CNI_ARGS', 'CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_PATH']);
    assert.equal(call.env.CNI_ARGS, 'A=1;B=2');
    assert.equal(call.env.CNI_IFNAME, env('ADD').CNI_IFNAME);
    assert.equal(call.env.DOCKER_CNI_INHERITED_TEST, 'inherited');
    assert.ok(call.env.PATH);
  });

  test('error body on stdout is decoded', async () => {
    await assert.rejects(executor.execPlugin(plugin, conf({ fail: { code: 7, msg: 'bad ipam', details: 'subnet missing' } }), env('ADD'), 5000), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.cniCode, 7);
      assert.equal(err.cniMsg, 'bad ipam');
      assert.equal(err.details, 'subnet missing');
      assert.equal(err.plugin, 'fake');
      assert.equal(err.verb, 'ADD');
      assert.equal(err.code, 'CNI_FAILED');
      assert.match(err.message, /^fake failed \(ADD\): bad ipam: subnet missing \(CNI code 7\)$/);
      return true;
    });
  });

  test('falls back to an error body on stderr', async () => {
    await assert.rejects(executor.execPlugin(plugin, conf({ fail: { code: 11, msg: 'later', to: 'stderr' } }), env('DEL'), 5000), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.cniCode, 11);
      assert.equal(err.verb, 'DEL');
      return true;
    });
  });

  test('garbage output becomes code 999 carrying the raw output', async () => {
    await assert.rejects(executor.execPlugin(plugin, conf({ fail: { to: 'garbage', exitCode: 2 } }), env('ADD'), 5000), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.cniCode, 999);
      assert.match(err.cniMsg, /exited with status 2/);
      assert.match(err.details ?? '', /panic: something broke/);
      assert.match(err.details ?? '', /this is not json/);
      return true;
    });
  });

  test('raw output is truncated', async () => {
    const noisy = join(bin, 'noisy');
    await writeFile(noisy, `#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\\\0' x\nexit 3\n`);
    await chmod(noisy, 0o755);
    await assert.rejects(executor.execPlugin(noisy, Buffer.from('{}'), env('ADD'), 5000), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.ok((err.details ?? '').length < 2000);
      return true;
    });
  });

  test('a plugin running past the timeout is killed and TIMEOUT is raised', async () => {
    const started = Date.now();
    await assert.rejects(executor.execPlugin(plugin, conf({ sleepMs: 10_000 }), env('ADD'), 300), (err: unknown) => {
      assert.ok(err instanceof PluginError && !(err instanceof CniPluginError));
      assert.equal(err.code, 'TIMEOUT');
      assert.match(err.message, /timed out after 300 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'killed well before the plugin would have finished');
  });

  test('findInPath: first executable match, validated type, NOT_FOUND listing the dirs', async () => {
    const second = await fakeBinDir(['fake', 'only-second']);
    try {
      await writeFile(join(bin, 'not-exec'), 'x');
      assert.equal(await executor.findInPath('fake', [bin, second]), join(bin, 'fake'));
      assert.equal(await executor.findInPath('only-second', ['/nonexistent', bin, second]), join(second, 'only-second'));
      await assert.rejects(executor.findInPath('not-exec', [bin]), (err: unknown) => err instanceof PluginError && err.code === 'NOT_FOUND');
      await assert.rejects(executor.findInPath('missing', [bin, second]), (err: unknown) => {
        assert.ok(err instanceof PluginError && err.code === 'NOT_FOUND');
        assert.ok(err.message.includes(bin) && err.message.includes(second));
        return true;
      });
      await assert.rejects(executor.findInPath('../fake', [bin]), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    } finally {
      await removeDir(second);
    }
  });

  test('a missing binary is NOT_FOUND', async () => {
    await assert.rejects(executor.execPlugin(join(bin, 'gone'), Buffer.from('{}'), env('ADD'), 5000), (err: unknown) => err instanceof PluginError && err.code === 'NOT_FOUND');
  });
});

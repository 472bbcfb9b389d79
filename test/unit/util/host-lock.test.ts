// The host-wide lock between processes: two processes incrementing one
// counter file with a pause between read and write lose no update under it,
// a holder killed with SIGKILL frees it, and a waiter gives up with TIMEOUT.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withHostLock } from '../../../src/util/host-lock.js';
import { PluginError } from '../../../src/errors.js';

const CHILD = fileURLToPath(new URL('./host-lock-child.ts', import.meta.url));
const uniqueLock = (): string => `docker-cni-test/host-lock-${process.pid}-${Math.random().toString(16).slice(2)}`;

function child(args: string[]): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function exitCode(proc: ChildProcess): Promise<number | null> {
  const [code] = (await once(proc, 'exit')) as [number | null];
  return code;
}

describe('withHostLock', () => {
  test('two processes: no lost update in 2 x 40 read-pause-write rounds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dcni-host-lock-'));
    try {
      const file = join(dir, 'counter');
      await writeFile(file, '0');
      const name = uniqueLock();
      const children = [child([name, file, '40']), child([name, file, '40'])];
      assert.deepEqual(await Promise.all(children.map(exitCode)), [0, 0]);
      assert.equal(await readFile(file, 'utf8'), '80');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a holder killed with SIGKILL frees the lock; while it holds, a waiter times out', async () => {
    const name = uniqueLock();
    const holder = child([name, '', '0', 'hold']);
    try {
      const [first] = (await once(holder.stdout!, 'data')) as [Buffer];
      assert.equal(first.toString().trim(), 'held');
      await assert.rejects(withHostLock(name, async () => 'never', 200), (err: unknown) => err instanceof PluginError && err.code === 'TIMEOUT');
      holder.kill('SIGKILL');
      await exitCode(holder);
      assert.equal(await withHostLock(name, async () => 'got it', 5_000), 'got it');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('released after work that throws, and reentry from the same process after release', async () => {
    const name = uniqueLock();
    await assert.rejects(withHostLock(name, async () => { throw new Error('boom'); }), /boom/);
    assert.equal(await withHostLock(name, async () => 1, 1_000), 1);
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeWriteLeftovers, writeFileAtomically, writeJsonAtomically } from '../../../src/util/atomic-file.js';

describe('removeWriteLeftovers', () => {
  test('removes `<target>.<number>` temp files of the targets named, and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'docker-cni-leftovers-'));
    try {
      const names = ['a.json', 'a.json.3973077254', 'b.json.12', 'notes.txt.99', 'c.json.tmp', 'x-eth0.1'];
      for (const name of names) await writeFile(join(dir, name), '{}');
      const removed = await removeWriteLeftovers(dir, (name) => name.endsWith('.json'));
      assert.deepEqual(removed.sort(), ['a.json.3973077254', 'b.json.12']);
      assert.deepEqual((await readdir(dir)).sort(), ['a.json', 'c.json.tmp', 'notes.txt.99', 'x-eth0.1']);
      assert.deepEqual(await removeWriteLeftovers(join(dir, 'missing'), () => true), [], 'a dir not made yet has none');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('writeFileAtomically', () => {
  test('makes the directory, sets the mode whatever the umask, replaces whole, and leaves no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'docker-cni-atomic-'));
    const oldMask = process.umask(0o077);
    try {
      const target = join(dir, 'new', 'sub', 'r.json');
      await writeJsonAtomically(target, { a: 1 }, { mode: 0o644 });
      assert.equal((await stat(target)).mode & 0o777, 0o644);
      await writeFileAtomically(target, 'second', { fsync: false });
      assert.equal(await readFile(target, 'utf8'), 'second');
      assert.equal((await stat(target)).mode & 0o777, 0o600, 'the default mode');
      const quick = join(dir, 'new', 'quick', 'q.json');
      await writeFileAtomically(quick, 'no fsync', { mode: 0o644, fsync: false });
      assert.equal((await stat(quick)).mode & 0o777, 0o644, 'the synchronous (no fsync) write sets the mode too');
      const many = Array.from({ length: 50 }, (_, i) => writeFileAtomically(target, `w${i}`, { fsync: false }));
      await Promise.all(many);
      assert.match(await readFile(target, 'utf8'), /^w\d+$/);
      assert.deepEqual(await readdir(join(dir, 'new', 'sub')), ['r.json']);
      // Each temp name is one removeWriteLeftovers recognises.
      assert.deepEqual(await removeWriteLeftovers(join(dir, 'new', 'sub'), () => true), []);
    } finally {
      process.umask(oldMask);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a failed write leaves the old file and no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'docker-cni-atomic-'));
    try {
      const target = join(dir, 'r.json');
      await writeFileAtomically(target, 'old');
      await assert.rejects(writeFileAtomically(target, 42 as unknown as string));
      await assert.rejects(writeFileAtomically(target, 42 as unknown as string, { fsync: false }));
      assert.equal(await readFile(target, 'utf8'), 'old');
      assert.deepEqual(await readdir(dir), ['r.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

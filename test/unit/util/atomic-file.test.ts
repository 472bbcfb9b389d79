import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeWriteLeftovers } from '../../../src/util/atomic-file.js';

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

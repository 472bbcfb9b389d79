import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordStore } from '../../../src/state/record-store.js';
import { moveRecords } from '../../../src/state/record-move.js';

interface Thing {
  name: string;
}

let root: string;
let from: RecordStore<Thing>;
let to: RecordStore<Thing>;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'dcni-move-unit-'));
  from = new RecordStore<Thing>(join(root, 'old'), 'things', false);
  to = new RecordStore<Thing>(join(root, 'new'), 'things', false);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const noCorrupt = (id: string, err: unknown): never => assert.fail(`unexpected corrupt record ${id}: ${String(err)}`);

describe('moveRecords', () => {
  test('every record moves, and moving again finds nothing', async () => {
    await from.put('a', { name: 'first' });
    await from.put('b', { name: 'second' });
    assert.deepEqual(await moveRecords(from, to, noCorrupt), ['a', 'b']);
    assert.deepEqual(await to.list(), [
      { id: 'a', record: { name: 'first' } },
      { id: 'b', record: { name: 'second' } },
    ]);
    assert.deepEqual(await readdir(from.dir), []);
    assert.deepEqual(await moveRecords(from, to, noCorrupt), []);
  });

  test('a record already in the target (written after the old one) wins; the old copy goes', async () => {
    await from.put('a', { name: 'old' });
    await to.put('a', { name: 'new' });
    assert.deepEqual(await moveRecords(from, to, noCorrupt), []);
    assert.deepEqual(await to.get('a'), { name: 'new' });
    assert.equal(await from.get('a'), undefined);
  });

  test('a crash between copy and delete leaves both copies; the next move finishes it', async () => {
    await from.put('a', { name: 'first' });
    await to.put('a', { name: 'first' });
    await moveRecords(from, to, noCorrupt);
    assert.deepEqual(await to.list(), [{ id: 'a', record: { name: 'first' } }]);
    assert.deepEqual(await readdir(from.dir), []);
  });

  test('a corrupt record is reported and stays where it is; the others move', async () => {
    await from.put('good', { name: 'ok' });
    await writeFile(join(from.dir, 'bad.json'), '{not json');
    const corrupt: string[] = [];
    assert.deepEqual(await moveRecords(from, to, (id) => corrupt.push(id)), ['good']);
    assert.deepEqual(corrupt, ['bad']);
    assert.deepEqual(await readdir(from.dir), ['bad.json']);
    assert.equal(await to.get('bad'), undefined);
  });

  test('a source that was never written moves nothing', async () => {
    assert.deepEqual(await moveRecords(from, to, noCorrupt), []);
  });
});

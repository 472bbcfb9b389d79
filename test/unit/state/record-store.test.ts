import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginError } from '../../../src/errors.js';
import { RecordStore } from '../../../src/state/record-store.js';
import { KeyedLock } from '../../../src/util/keyed-lock.js';

interface Thing {
  name: string;
  n: number;
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'dcni-store-unit-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const isInvalid = (err: unknown): boolean => err instanceof PluginError && err.code === 'INVALID_ARGUMENT';

describe('RecordStore', () => {
  test('put/get/delete round trip; missing records read as undefined; delete is idempotent', async () => {
    const store = new RecordStore<Thing>(join(root, 'state'), 'things');
    assert.equal(await store.get('a'), undefined);
    await store.put('a', { name: 'first', n: 1 });
    assert.deepEqual(await store.get('a'), { name: 'first', n: 1 });
    await store.put('a', { name: 'second', n: 2 });
    assert.deepEqual(await store.get('a'), { name: 'second', n: 2 });
    await store.delete('a');
    await store.delete('a');
    assert.equal(await store.get('a'), undefined);
  });

  test('one 0600 file per record in a 0700 dir, and no temp files left behind', async () => {
    const stateDir = join(root, 'state');
    for (const durable of [true, false]) {
      const store = new RecordStore<Thing>(stateDir, durable ? 'durable' : 'volatile', durable);
      for (let i = 0; i < 5; i++) await store.put(`rec-${i}`, { name: 'x', n: i });
      await store.put('rec-0', { name: 'y', n: 0 });
      assert.deepEqual((await readdir(store.dir)).sort(), ['rec-0.json', 'rec-1.json', 'rec-2.json', 'rec-3.json', 'rec-4.json']);
      assert.equal((await stat(store.dir)).mode & 0o777, 0o700);
      assert.equal((await stat(join(store.dir, 'rec-0.json'))).mode & 0o777, 0o600);
    }
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700, 'the state dir it had to create is private too');
  });

  test('concurrent puts of one record leave one complete record', async () => {
    const store = new RecordStore<Thing>(root, 'things');
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put('same', { name: 'x'.repeat(1000 * (i + 1)), n: i })));
    const record = await store.get('same');
    assert.ok(record);
    assert.equal(record.name.length, 1000 * (record.n + 1));
    assert.deepEqual(await readdir(store.dir), ['same.json']);
  });

  test('list returns records sorted by id, skips foreign files, and reports corrupt ones instead of throwing', async () => {
    const store = new RecordStore<Thing>(root, 'things');
    await store.put('b', { name: 'b', n: 2 });
    await store.put('a', { name: 'a', n: 1 });
    await writeFile(join(store.dir, 'broken.json'), '{"name": "tru');
    await writeFile(join(store.dir, 'c.json.1234567'), 'a temp file of a crashed write');
    await writeFile(join(store.dir, 'README'), 'not a record');
    await writeFile(join(store.dir, '.hidden.json'), '{}');
    const corrupt: Array<[string, unknown]> = [];
    const listed = await store.list((id, err) => corrupt.push([id, err]));
    assert.deepEqual(listed, [
      { id: 'a', record: { name: 'a', n: 1 } },
      { id: 'b', record: { name: 'b', n: 2 } },
    ]);
    assert.deepEqual(
      corrupt.map(([id]) => id),
      ['broken'],
    );
    assert.ok(corrupt[0]?.[1] instanceof Error);
    assert.equal((await store.list()).length, 2, 'without a callback corrupt records are still skipped');
  });

  test('a corrupt record read directly is STATE_FAILED', async () => {
    const store = new RecordStore<Thing>(root, 'things');
    await store.ensureDir();
    await writeFile(join(store.dir, 'bad.json'), 'not json');
    await assert.rejects(store.get('bad'), (err: unknown) => err instanceof PluginError && err.code === 'STATE_FAILED' && /bad/.test(err.message));
  });

  test('list of a store never written is empty', async () => {
    assert.deepEqual(await new RecordStore<Thing>(join(root, 'nowhere'), 'things').list(), []);
  });

  test('ids that could escape the directory are INVALID_ARGUMENT for every operation', async () => {
    const store = new RecordStore<Thing>(root, 'things');
    for (const id of ['../x', 'a/b', '', '..', '.hidden', 'a..b', '/abs', 'a\\b', 'x'.repeat(201), 'a\0b']) {
      await assert.rejects(store.put(id, { name: 'x', n: 0 }), isInvalid, `put ${JSON.stringify(id)}`);
      await assert.rejects(store.get(id), isInvalid, `get ${JSON.stringify(id)}`);
      await assert.rejects(store.delete(id), isInvalid, `delete ${JSON.stringify(id)}`);
    }
    assert.deepEqual(await readdir(root), [], 'nothing was written anywhere');
    await store.put('dcni-0123456789abcdef', { name: 'ok', n: 1 });
    await store.put(`${'f'.repeat(64)}`, { name: 'ok', n: 1 });
  });
});

describe('KeyedLock', () => {
  const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2));

  test('work on one key runs one at a time, in call order', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const job = (name: string) => async () => {
      events.push(`start ${name}`);
      await tick();
      events.push(`end ${name}`);
      return name;
    };
    const results = await Promise.all([lock.withLock('k', job('a')), lock.withLock('k', job('b')), lock.withLock('k', job('c'))]);
    assert.deepEqual(results, ['a', 'b', 'c']);
    assert.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    assert.deepEqual(lock.activeKeys, [], 'idle keys are forgotten');
  });

  test('work on different keys runs concurrently', async () => {
    const lock = new KeyedLock();
    let running = 0;
    let most = 0;
    const job = async (): Promise<void> => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
    };
    const all = Promise.all([lock.withLock('a', job), lock.withLock('b', job), lock.withLock('c', job)]);
    assert.deepEqual(lock.activeKeys.sort(), ['a', 'b', 'c']);
    await all;
    assert.equal(most, 3);
  });

  test('a failing job rejects its caller only and does not block the next', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const failing = lock.withLock('k', async () => {
      order.push('fail');
      throw new Error('boom');
    });
    const next = lock.withLock('k', async () => {
      order.push('next');
      return 42;
    });
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 42);
    assert.deepEqual(order, ['fail', 'next']);
    const sync = lock.withLock('k', () => {
      throw new Error('sync throw');
    });
    await assert.rejects(sync, /sync throw/);
    assert.equal(await lock.withLock('k', async () => 'after'), 'after');
  });
});

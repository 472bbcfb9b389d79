import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { PluginError } from '../../../src/errors.js';
import { POOL_CODEC } from '../../../src/ipam/pool-record.js';
import { ENDPOINT_CODEC, NETWORK_CODEC, type NetworkRecord } from '../../../src/network/records.js';
import { MemoryStore } from '../../../src/state/memory-store.js';
import { versionedCodec } from '../../../src/state/record-codec.js';
import { RecordStore } from '../../../src/state/record-store.js';
import type { Store } from '../../../src/state/store.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'dcni-codec-unit-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A network record exactly as releases before schema versions wrote it (no `version`). */
const LEGACY_NETWORK = {
  id: '3f9c0d2a7b114e5f8a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f',
  createdAt: '2026-11-01T10:00:00.000Z',
  ipv4: [{ pool: '10.232.1.0/24', gateway: '10.232.1.1' }],
  ipv6: [],
  internal: false,
  icc: true,
  masquerade: true,
  isolate: true,
  options: {},
  mode: 'generated',
  cniName: 'dcni-3f9c0d2a7b11',
  conflist: {
    cniVersion: '1.0.0',
    name: 'dcni-3f9c0d2a7b11',
    plugins: [
      { type: 'bridge', bridge: 'dcni-3f9c0d2a7b', isGateway: true, ipam: { type: 'static' } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  },
  bridge: 'dcni-3f9c0d2a7b',
};

/** An endpoint record as releases before schema versions wrote it. */
const LEGACY_ENDPOINT = {
  id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
  networkId: LEGACY_NETWORK.id,
  status: 'ready',
  createdAt: '2026-11-01T10:00:01.000Z',
  hostLinkName: 'dca1b2c3d4e5f60',
  ifName: 'eth0',
  addresses: ['10.232.1.2/24'],
  mac: '02:42:0a:e8:01:02',
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  conflist: LEGACY_NETWORK.conflist,
  cniArgs: [
    ['IgnoreUnknown', '1'],
    ['DOCKER_NETWORK_ID', LEGACY_NETWORK.id],
  ],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
  result: { cniVersion: '1.0.0', ips: [{ address: '10.232.1.2/24', gateway: '10.232.1.1' }] },
  gatewayV4: '10.232.1.1',
  staticRoutes: [],
};

describe('record codecs', () => {
  test('records without a version (written before versions existed) load as version 1', () => {
    assert.deepEqual(NETWORK_CODEC.decode(structuredClone(LEGACY_NETWORK)), LEGACY_NETWORK);
    assert.deepEqual(ENDPOINT_CODEC.decode(structuredClone(LEGACY_ENDPOINT)), LEGACY_ENDPOINT);
  });

  test('every write carries the schema version, and reads give the record back unchanged', () => {
    const stored = NETWORK_CODEC.encode(LEGACY_NETWORK as NetworkRecord) as Record<string, unknown>;
    assert.equal(stored.version, 1);
    assert.deepEqual(NETWORK_CODEC.decode(JSON.parse(JSON.stringify(stored))), LEGACY_NETWORK);
    const pool = { version: 1, poolId: 'dcni-0123456789abcdef', addressSpace: 'CniLocal', family: 4, pool: '10.231.0.0/24', automatic: true, options: {}, createdAt: 'x' };
    assert.deepEqual(POOL_CODEC.decode(POOL_CODEC.encode(pool as never)), pool);
  });

  test('a record that does not match its schema, or is newer than this build, is refused', () => {
    assert.throws(() => NETWORK_CODEC.decode({ ...LEGACY_NETWORK, mode: 'bogus' }), /mode/);
    assert.throws(() => ENDPOINT_CODEC.decode({ ...LEGACY_ENDPOINT, status: undefined }), /status/);
    assert.throws(() => NETWORK_CODEC.decode({ ...LEGACY_NETWORK, version: 2 }), /newer/);
    assert.throws(() => NETWORK_CODEC.decode({ ...LEGACY_NETWORK, version: 'one' }), /invalid schema version/);
    assert.throws(() => NETWORK_CODEC.decode([]), /not a JSON object/);
  });

  test('older versions are upgraded step by step before validation', () => {
    const codec = versionedCodec<{ name: string; size: number }>({
      current: 3,
      schema: z.object({ version: z.literal(3), name: z.string(), size: z.number() }),
      upgrades: {
        1: ({ title, ...rest }) => ({ ...rest, name: title }),
        2: (record) => ({ ...record, size: 0 }),
      },
    });
    assert.deepEqual(codec.decode({ title: 'legacy' }), { name: 'legacy', size: 0 });
    assert.deepEqual(codec.decode({ version: 2, name: 'two' }), { name: 'two', size: 0 });
    assert.deepEqual(codec.decode({ version: 3, name: 'now', size: 7 }), { name: 'now', size: 7 });
  });
});

/** The Store contract, run against the disk store and the in-memory one. */
for (const [name, make] of [
  ['RecordStore', (): Store<NetworkRecord> => new RecordStore<NetworkRecord>(join(root, 'state'), 'networks', true, NETWORK_CODEC)],
  ['MemoryStore', (): Store<NetworkRecord> => new MemoryStore<NetworkRecord>('networks', NETWORK_CODEC)],
] as const) {
  describe(`Store contract: ${name}`, () => {
    test('round trip, idempotent delete, sorted list', async () => {
      const store = make();
      await store.ensureDir();
      const a = { ...(LEGACY_NETWORK as NetworkRecord), id: 'b' };
      await store.put('b', a);
      await store.put('a', { ...a, id: 'a' });
      assert.deepEqual(await store.get('b'), a);
      assert.deepEqual((await store.list()).map((e) => e.id), ['a', 'b']);
      await store.delete('b');
      await store.delete('b');
      assert.equal(await store.get('b'), undefined);
    });

    test('invalid ids are refused before they become paths', async () => {
      const store = make();
      await assert.rejects(store.get('../x'), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    });
  });
}

test('a legacy record on disk is listed and read through the codec; a corrupt one is reported', async () => {
  const store = new RecordStore<NetworkRecord>(join(root, 'state'), 'networks', true, NETWORK_CODEC);
  await store.ensureDir();
  await writeFile(join(store.dir, 'legacy.json'), JSON.stringify(LEGACY_NETWORK));
  await writeFile(join(store.dir, 'broken.json'), JSON.stringify({ ...LEGACY_NETWORK, plugins: undefined, conflist: {} }));
  const corrupt: string[] = [];
  const listed = await store.list((id) => corrupt.push(id));
  assert.deepEqual(listed.map((e) => e.id), ['legacy']);
  assert.deepEqual(corrupt, ['broken']);
  await assert.rejects(store.get('broken'), (err: unknown) => err instanceof PluginError && err.code === 'STATE_FAILED');
  // The next write stores the current version.
  await store.put('legacy', (await store.get('legacy'))!);
  assert.equal((JSON.parse(await readFile(join(store.dir, 'legacy.json'), 'utf8')) as { version: number }).version, 1);
});

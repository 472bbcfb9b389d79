import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostLocalStore } from '../../../src/ipam/host-local-store.js';
import { parseIp } from '../../../src/util/ip-math.js';
import { rejectsWith } from '../../helpers/plugin-errors.js';

const POOL = 'dcni-0123456789abcdef';

test('removeReservation removes only a file that still names the holder, and reports an absent one', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dcni-hls-'));
  try {
    const store = new HostLocalStore(dataDir);
    await mkdir(join(dataDir, POOL));
    await writeFile(join(dataDir, POOL, '10.231.9.7'), 'alloc-a\r\neth0');
    await writeFile(join(dataDir, POOL, '10.231.9.8'), 'alloc-b\r\neth0');
    await writeFile(join(dataDir, POOL, 'last_reserved_ip.0'), '10.231.9.8');
    const seven = parseIp('10.231.9.7')!;
    const eight = parseIp('10.231.9.8')!;

    assert.equal(await store.removeReservation(POOL, seven, { containerId: 'alloc-a', ifName: 'eth0' }), true);
    assert.equal(await store.removeReservation(POOL, seven, { containerId: 'alloc-a', ifName: 'eth0' }), false);
    await rejectsWith(store.removeReservation(POOL, eight, { containerId: 'alloc-a', ifName: 'eth0' }), 'CONFLICT', /belongs to alloc-b/);
    assert.deepEqual((await readdir(join(dataDir, POOL))).sort(), ['10.231.9.8', 'last_reserved_ip.0']);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

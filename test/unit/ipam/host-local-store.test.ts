import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostLocalStore } from '../../../src/ipam/host-local-store.js';
import { parseIp } from '../../../src/util/ip-math.js';

const POOL = 'dcni-0123456789abcdef';

test('removeReservation removes exactly the address file and returns its holder; a free address gives undefined', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dcni-hls-'));
  try {
    const store = new HostLocalStore(dataDir);
    await mkdir(join(dataDir, POOL));
    await writeFile(join(dataDir, POOL, '10.231.9.7'), 'alloc-a\r\neth0');
    await writeFile(join(dataDir, POOL, '10.231.9.8'), 'alloc-b\r\neth0');
    await writeFile(join(dataDir, POOL, 'last_reserved_ip.0'), '10.231.9.8');
    const seven = parseIp('10.231.9.7')!;

    assert.deepEqual(store.removeReservation(POOL, seven), { containerId: 'alloc-a', ifName: 'eth0' });
    assert.equal(store.removeReservation(POOL, seven), undefined);
    assert.deepEqual((await readdir(join(dataDir, POOL))).sort(), ['10.231.9.8', 'last_reserved_ip.0']);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

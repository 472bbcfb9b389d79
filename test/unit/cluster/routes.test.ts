import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { ROUTE_PROTO } from '../../../src/cluster/names.js';
import type { EtcdStore } from '../../../src/cluster/etcd-store.js';
import { RouteSync } from '../../../src/cluster/route-sync.js';
import { desiredRoutes, diffRoutes, parseRouteJson, RouteTable, type Route } from '../../../src/cluster/routes.js';
import type { HostRecord } from '../../../src/cluster/records.js';

const host = (hostId: string, underlayIp?: string): [string, HostRecord] => [
  hostId,
  { hostId, registeredAt: '2026-01-01T00:00:00Z', ...(underlayIp ? { underlayIp } : {}) },
];
const block = (poolId: string, cidr: string, owner: string) => ({ poolId, record: { host: owner, cidr, claimedAt: 'x' } });

describe('routed mode routes', () => {
  const hosts = new Map([host('a', '10.250.0.1'), host('b', '10.250.0.2'), host('c')]);
  const blocks = [
    block('p1', '10.9.0.0/26', 'a'),
    block('p1', '10.9.0.64/26', 'b'),
    block('p1', '10.9.0.128/26', 'c'), // no underlay announced
    block('p1', '10.9.0.192/26', 'gone'), // departed host
    block('p2', '10.8.0.0/26', 'b'), // a pool with no routed network here
  ];

  test('a route per block of another living host, only for routed pools', () => {
    assert.deepEqual(desiredRoutes('a', blocks, hosts, new Set(['p1'])), [{ dst: '10.9.0.64/26', via: '10.250.0.2' }]);
    assert.deepEqual(desiredRoutes('b', blocks, hosts, new Set(['p1', 'p2'])), [{ dst: '10.9.0.0/26', via: '10.250.0.1' }]);
    assert.deepEqual(desiredRoutes('a', blocks, hosts, new Set()), []);
  });

  test('diff adds what is missing and removes what moved or went', () => {
    const current = [
      { dst: '10.9.0.64/26', via: '10.250.0.3' },
      { dst: '10.9.0.0/26', via: '10.250.0.1' },
    ];
    const desired = [
      { dst: '10.9.0.64/26', via: '10.250.0.2' },
      { dst: '10.9.0.0/26', via: '10.250.0.1' },
    ];
    assert.deepEqual(diffRoutes(current, desired), {
      add: [{ dst: '10.9.0.64/26', via: '10.250.0.2' }],
      remove: [{ dst: '10.9.0.64/26', via: '10.250.0.3' }],
    });
  });

  test('ip -j output parses, and sync runs one batch with tagged routes', async () => {
    assert.deepEqual(parseRouteJson(''), []);
    assert.deepEqual(parseRouteJson('[{"dst":"10.9.0.64/26","gateway":"10.250.0.2","dev":"eth0","protocol":"218"}]'), [
      { dst: '10.9.0.64/26', via: '10.250.0.2' },
    ]);
    const calls: Array<{ args: readonly string[]; input?: string }> = [];
    const table = new RouteTable(async (_file, args, options) => {
      calls.push({ args, ...(options?.input ? { input: options.input } : {}) });
      return args.includes('show') ? '[{"dst":"10.9.0.128/26","gateway":"10.250.0.3"}]' : '';
    }, silentLogger);
    await table.sync([{ dst: '10.9.0.64/26', via: '10.250.0.2' }]);
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1]!.args, ['-force', '-batch', '-']);
    assert.equal(
      calls[1]!.input,
      `route del 10.9.0.128/26 via 10.250.0.3 proto ${ROUTE_PROTO}\nroute replace 10.9.0.64/26 via 10.250.0.2 proto ${ROUTE_PROTO}\n`,
    );
    await assert.rejects(table.sync([{ dst: '10.9.0.64/26; reboot', via: '10.250.0.2' }]), /malformed/);
  });
});

describe('route resync', () => {
  test('a resync that fails is retried soon, without waiting for an etcd event or the period', async () => {
    const hosts = new Map([host('a', '10.250.0.1'), host('b', '10.250.0.2')]);
    let failures = 2;
    const synced: Route[][] = [];
    const store = {
      listHosts: async () => hosts,
      listBlocks: async () => new Map([[1, { index: 1, record: { host: 'b', cidr: '10.9.0.64/26', claimedAt: 'x' } }]]),
    } as unknown as EtcdStore;
    const table = {
      sync: async (desired: readonly Route[]) => {
        if (failures-- > 0) throw new Error('ip: RTNETLINK answers: No such process');
        synced.push([...desired]);
        return { add: [...desired], remove: [] };
      },
    } as unknown as RouteTable;
    const sync = new RouteSync({ store, table, selfId: 'a', logger: silentLogger, retryMs: 20 });
    try {
      await assert.rejects(sync.setPools(['p1'])); // a new routed network; its resync fails, and so does the retry

      for (let n = 0; n < 100 && synced.length === 0; n++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(synced[0], [{ dst: '10.9.0.64/26', via: '10.250.0.2' }]);
    } finally {
      await sync.stop();
    }
  });
});

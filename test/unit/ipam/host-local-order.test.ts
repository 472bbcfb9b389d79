import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allocationOrder } from '../../../src/ipam/host-local-order.js';

const order = (...args: Parameters<typeof allocationOrder>): number[] => [...allocationOrder(...args)].map(Number);

describe("host-local's allocation order", () => {
  const range = { first: 1n, last: 6n, gateway: 1n };

  test('from the range start, never the gateway, when nothing was reserved', () => {
    assert.deepEqual(order(range), [2, 3, 4, 5, 6]);
    assert.deepEqual(order({ first: 10n, last: 12n }), [10, 11, 12]);
  });

  test('after the last reserved address, round the end; that address comes last', () => {
    assert.deepEqual(order(range, 3n), [4, 5, 6, 2, 3]);
    assert.deepEqual(order(range, 6n), [2, 3, 4, 5, 6]);
  });

  test('a last reserved address outside the range (another range, a stale file) starts from the range start', () => {
    assert.deepEqual(order(range, 40n), [2, 3, 4, 5, 6]);
    assert.deepEqual(order({ first: 128n, last: 130n, gateway: 1n }, 3n), [128, 129, 130]);
  });

  test('an empty range yields nothing; a huge one is walked lazily', () => {
    assert.deepEqual(order({ first: 5n, last: 4n }), []);
    const v6 = allocationOrder({ first: 1n, last: (1n << 64n) - 1n, gateway: 1n }, 1000n);
    assert.deepEqual([v6.next().value, v6.next().value], [1001n, 1002n]);
  });
});

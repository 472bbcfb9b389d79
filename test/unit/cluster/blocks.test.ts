import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockAt,
  blockCount,
  blockIndexOf,
  checkLayout,
  firstFreeInBlock,
  nextUnclaimedBlock,
  parsePoolCidr,
  reservedValues,
  startOffset,
} from '../../../src/cluster/blocks.js';
import { ClusterError, clusterCodeOf } from '../../../src/cluster/errors.js';
import { ClusterKeys, clusterPoolId, isClusterPoolId } from '../../../src/cluster/keys.js';
import { wrapError } from '../../../src/errors.js';
import { formatCidr, formatIp, parseIp } from '../../../src/util/ip-math.js';

const v4 = (ip: string): bigint => parseIp(ip)!.value;

describe('cluster blocks', () => {
  const layout = checkLayout(parsePoolCidr('10.9.0.0/24'), 26);

  test('a /24 cut into /26 blocks', () => {
    assert.equal(blockCount(layout), 4);
    assert.deepEqual([0, 1, 2, 3].map((i) => formatCidr(blockAt(layout, i))), ['10.9.0.0/26', '10.9.0.64/26', '10.9.0.128/26', '10.9.0.192/26']);
    assert.equal(blockIndexOf(layout, parseIp('10.9.0.130')!), 2);
    assert.equal(blockIndexOf(layout, parseIp('10.9.1.1')!), undefined);
    assert.throws(() => blockAt(layout, 4), ClusterError);
  });

  test('the pool network, broadcast and gateway are never handed out; block edges are', () => {
    const reserved = reservedValues(layout, parseIp('10.9.0.1'));
    assert.equal(formatIp({ family: 4, value: firstFreeInBlock(blockAt(layout, 0), new Set(), reserved)! }), '10.9.0.2');
    assert.equal(formatIp({ family: 4, value: firstFreeInBlock(blockAt(layout, 1), new Set(), reserved)! }), '10.9.0.64');
    const lastBlock = blockAt(layout, 3);
    const used = new Set<bigint>();
    for (let v = v4('10.9.0.192'); v < v4('10.9.0.254'); v++) used.add(v);
    assert.equal(formatIp({ family: 4, value: firstFreeInBlock(lastBlock, used, reserved)! }), '10.9.0.254');
    used.add(v4('10.9.0.254'));
    assert.equal(firstFreeInBlock(lastBlock, used, reserved), undefined, '.255 is the broadcast');
  });

  test('layouts are validated', () => {
    assert.throws(() => checkLayout(parsePoolCidr('10.9.0.0/24'), 23), (e: unknown) => clusterCodeOf(e) === 'BAD_CONFIG');
    assert.throws(() => checkLayout(parsePoolCidr('10.9.0.0/24'), 31), ClusterError);
    assert.throws(() => checkLayout(parsePoolCidr('10.0.0.0/8'), 26), /more than 4096 blocks/);
    assert.throws(() => parsePoolCidr('10.9.0.1/24'), /network address/);
    assert.throws(() => parsePoolCidr('nope'), /not a CIDR/);
  });

  test('unclaimed block search wraps around from a per-host start', () => {
    assert.equal(nextUnclaimedBlock(4, new Set([2, 3]), 2), 0);
    assert.equal(nextUnclaimedBlock(4, new Set([0, 1, 2, 3]), 1), undefined);
    assert.equal(nextUnclaimedBlock(4, new Set(), 3), 3);
    const offset = startOffset('host-a', 16);
    assert.ok(offset >= 0 && offset < 16);
    assert.equal(startOffset('host-a', 16), offset, 'stable');
  });
});

describe('cluster keys and errors', () => {
  test('pool ids are derived from the subnet and validated', () => {
    const id = clusterPoolId('10.9.0.0/24');
    assert.ok(isClusterPoolId(id));
    assert.equal(clusterPoolId('10.9.0.0/24'), id);
    assert.notEqual(clusterPoolId('10.9.1.0/24'), id);
  });

  test('keys round-trip and refuse hostile names', () => {
    const keys = new ClusterKeys('/dcni');
    const id = clusterPoolId('10.9.0.0/24');
    assert.deepEqual(keys.parseBlock(keys.block(id, 7)), { poolId: id, index: 7 });
    assert.equal(keys.parseBlock(`${keys.blocksPrefix(id)}07`), undefined);
    assert.equal(keys.parseHost(keys.host('node-1.example')), 'node-1.example');
    assert.throws(() => keys.host('../x'), ClusterError);
    assert.throws(() => keys.pool('dcni-0123456789abcdef'), ClusterError);
    assert.throws(() => new ClusterKeys('relative'), ClusterError);
    assert.throws(() => new ClusterKeys('/ends/'), ClusterError);
  });

  test('the stable code survives wrapping and is in the message', () => {
    const err = wrapError(new ClusterError('ETCD_UNAVAILABLE', 'etcd unreachable'), 'RequestAddress pool=x');
    assert.equal(clusterCodeOf(err), 'ETCD_UNAVAILABLE');
    assert.equal(err.code, 'TIMEOUT');
    assert.match(err.message, /^RequestAddress pool=x: etcd unreachable \[ETCD_UNAVAILABLE\]$/);
  });
});

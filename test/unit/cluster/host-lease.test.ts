import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ClusterError, clusterCodeOf } from '../../../src/cluster/errors.js';
import type { EtcdStore } from '../../../src/cluster/etcd-store.js';
import { HostLease } from '../../../src/cluster/host-lease.js';
import { ClusterKeys } from '../../../src/cluster/keys.js';
import { silentLogger } from '../../../src/log.js';

/** A store whose etcd never answers: every call fails the way EtcdStore.call reports it. */
function unreachableStore(): EtcdStore {
  const lease = Object.assign(new EventEmitter(), { release: () => undefined, put: () => ({ value: () => ({ exec: async () => undefined }) }) });
  return {
    keys: new ClusterKeys(),
    client: { lease: () => lease },
    call: async (what: string) => {
      throw new ClusterError('ETCD_UNAVAILABLE', `etcd unreachable while trying to ${what}: 14 UNAVAILABLE: No connection established`);
    },
  } as unknown as EtcdStore;
}

describe('HostLease fencing', () => {
  test('a host that cannot reach etcd refuses with HOST_FENCED, and the message says etcd is unreachable', async () => {
    const lease = new HostLease({ store: unreachableStore(), hostId: 'host2', ttlSeconds: 4, logger: silentLogger });
    const err = await lease.ensureValid().then(
      () => assert.fail('ensureValid succeeded without etcd'),
      (e: unknown) => e as Error,
    );
    lease.close();
    assert.equal(clusterCodeOf(err), 'HOST_FENCED');
    assert.match(err.message, /^host host2 cannot confirm its etcd lease, so it hands out no address \(etcd unreachable while trying to register host host2: .*No connection established \[ETCD_UNAVAILABLE\]\) \[HOST_FENCED\]$/);
  });
});

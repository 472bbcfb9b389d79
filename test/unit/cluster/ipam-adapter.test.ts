import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterIpamAdapter } from '../../../src/cluster/ipam-adapter.js';
import type { ClusterIpam } from '../../../src/cluster/cluster-ipam.js';
import { ClusterError, clusterCodeOf } from '../../../src/cluster/errors.js';
import { clusterPoolId } from '../../../src/cluster/keys.js';
import { OPT, type IpamDriverApi } from '../../../src/docker/api.js';

const POOL = clusterPoolId('10.9.0.0/24');

function fakes() {
  const calls: string[] = [];
  const local: IpamDriverApi = {
    getCapabilities: () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
    getDefaultAddressSpaces: () => ({ LocalDefaultAddressSpace: 'L', GlobalDefaultAddressSpace: 'G' }),
    requestPool: async () => (calls.push('local.requestPool'), { PoolID: 'dcni-0000000000000000', Pool: '10.1.0.0/24' }),
    releasePool: async () => void calls.push('local.releasePool'),
    requestAddress: async () => (calls.push('local.requestAddress'), { Address: '10.1.0.2/24' }),
    releaseAddress: async () => void calls.push('local.releaseAddress'),
  };
  const cluster = {
    requestPool: async (cidr: string) => (calls.push(`cluster.requestPool ${cidr}`), { poolId: POOL, cidr, gateway: '10.9.0.1' }),
    releasePool: async () => void calls.push('cluster.releasePool'),
    gatewayOf: async () => '10.9.0.1',
    poolCidr: async () => '10.9.0.0/24',
    requestAddress: async (_p: string, requested?: string) => {
      calls.push(`cluster.requestAddress ${requested ?? ''}`);
      if (requested === '10.9.0.99') throw new ClusterError('ETCD_UNAVAILABLE', 'etcd unreachable while trying to claim a block');
      return { address: requested ?? '10.9.0.70', prefix: 24 };
    },
    releaseAddress: async (_p: string, a: string) => void calls.push(`cluster.releaseAddress ${a}`),
  } as unknown as ClusterIpam;
  return { calls, local, cluster };
}

describe('cluster IPAM adapter', () => {
  test('pools without cni.cluster stay local; cluster pools and their addresses go to etcd', async () => {
    const { calls, local, cluster } = fakes();
    const adapter = new ClusterIpamAdapter(local, cluster);
    await adapter.requestPool({ AddressSpace: '', Pool: '10.1.0.0/24', SubPool: '', V6: false });
    const pool = await adapter.requestPool({ AddressSpace: '', Pool: '10.9.0.0/24', SubPool: '', V6: false, Options: { 'cni.cluster': 'true' } });
    assert.deepEqual(pool, { PoolID: POOL, Pool: '10.9.0.0/24', Data: { [OPT.gatewayData]: '10.9.0.1/24' } });
    assert.deepEqual(await adapter.requestAddress({ PoolID: POOL, Address: '' }), { Address: '10.9.0.70/24', Data: {} });
    assert.deepEqual(await adapter.requestAddress({ PoolID: POOL, Address: '', Options: { [OPT.requestAddressType]: OPT.gatewayData } }), {
      Address: '10.9.0.1/24',
      Data: {},
    });
    await adapter.releaseAddress({ PoolID: POOL, Address: '10.9.0.1' });
    await adapter.releaseAddress({ PoolID: POOL, Address: '10.9.0.70' });
    await adapter.requestAddress({ PoolID: 'dcni-0000000000000000', Address: '' });
    await adapter.releasePool({ PoolID: POOL });
    assert.deepEqual(calls, [
      'local.requestPool',
      'cluster.requestPool 10.9.0.0/24',
      'cluster.requestAddress ',
      'cluster.releaseAddress 10.9.0.70',
      'local.requestAddress',
      'cluster.releasePool',
    ]);
  });

  test('errors keep their cluster code and gain context', async () => {
    const { local, cluster } = fakes();
    const adapter = new ClusterIpamAdapter(local, cluster);
    const err = await adapter.requestAddress({ PoolID: POOL, Address: '10.9.0.99' }).catch((e: unknown) => e as Error);
    assert.equal(clusterCodeOf(err), 'ETCD_UNAVAILABLE');
    assert.match((err as Error).message, /^RequestAddress pool=dcnic-[0-9a-f]+ address=10\.9\.0\.99: etcd unreachable .*\[ETCD_UNAVAILABLE\]$/);
    await assert.rejects(
      adapter.requestAddress({ PoolID: POOL, Address: '10.9.0.5', Options: { [OPT.requestAddressType]: OPT.gatewayData } }),
      /POOL_MISMATCH/,
    );
    await assert.rejects(adapter.requestPool({ AddressSpace: '', Pool: '', SubPool: '', V6: false, Options: { 'cni.cluster': 'true' } }), /needs --subnet/);
  });

  test('without etcd configured, a cluster pool is refused with the setting to use', async () => {
    const { local } = fakes();
    const adapter = new ClusterIpamAdapter(local, undefined);
    await assert.rejects(
      adapter.requestPool({ AddressSpace: '', Pool: '10.9.0.0/24', SubPool: '', V6: false, Options: { 'cni.cluster': 'true' } }),
      /DOCKER_CNI_CLUSTER_ETCD/,
    );
  });
});

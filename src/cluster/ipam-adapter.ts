/**
 * Docker's IpamDriver calls for cluster pools, in front of the node-local
 * driver: a pool requested with `--ipam-opt cni.cluster=true` (and every call
 * on its pool id afterwards) goes to the cluster IPAM, anything else to the
 * local driver unchanged.
 */
import {
  OPT,
  type AddressSpacesResponse,
  type IpamCapabilities,
  type IpamDriverApi,
  type ReleaseAddressRequest,
  type ReleasePoolRequest,
  type RequestAddressRequest,
  type RequestAddressResponse,
  type RequestPoolRequest,
  type RequestPoolResponse,
} from '../docker/api.js';
import { PluginError, wrapError } from '../errors.js';
import type { ClusterIpam } from './cluster-ipam.js';
import { ClusterError } from './errors.js';
import { isClusterPoolId } from './keys.js';
import { CLUSTER_OPTS } from './names.js';

export class ClusterIpamAdapter implements IpamDriverApi {
  constructor(
    private readonly local: IpamDriverApi,
    /** Undefined when no etcd is configured: cluster pools are then refused with a clear message. */
    private readonly cluster: ClusterIpam | undefined,
  ) {}

  getCapabilities(): IpamCapabilities {
    return this.local.getCapabilities();
  }

  getDefaultAddressSpaces(): AddressSpacesResponse {
    return this.local.getDefaultAddressSpaces();
  }

  async requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse> {
    if (req.Options?.[CLUSTER_OPTS.ipamCluster] !== 'true') return this.local.requestPool(req);
    const context = `RequestPool cluster pool=${req.Pool || '(automatic)'}`;
    try {
      const cluster = this.need();
      if (!req.Pool) throw new ClusterError('BAD_CONFIG', 'a cluster pool needs --subnet: every host must name the same subnet');
      if (req.SubPool) throw new ClusterError('BAD_CONFIG', '--ip-range is not supported for cluster pools');
      const pool = await cluster.requestPool(req.Pool);
      const prefix = pool.cidr.split('/')[1];
      return { PoolID: pool.poolId, Pool: pool.cidr, Data: pool.gateway ? { [OPT.gatewayData]: `${pool.gateway}/${prefix}` } : {} };
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  async releasePool(req: ReleasePoolRequest): Promise<void> {
    if (!isClusterPoolId(req.PoolID)) return this.local.releasePool(req);
    try {
      await this.need().releasePool(req.PoolID);
    } catch (err) {
      throw wrapError(err, `ReleasePool ${req.PoolID}`);
    }
  }

  async requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse> {
    if (!isClusterPoolId(req.PoolID)) return this.local.requestAddress(req);
    const context = `RequestAddress pool=${req.PoolID}${req.Address ? ` address=${req.Address}` : ''}`;
    try {
      const cluster = this.need();
      if (req.Options?.[OPT.requestAddressType] === OPT.gatewayData) {
        const gateway = await cluster.gatewayOf(req.PoolID);
        // The cluster fixes one gateway per pool (its first address) so that every host agrees on it.
        if (!gateway || (req.Address && req.Address !== gateway)) {
          throw new ClusterError('POOL_MISMATCH', `cluster pools use ${gateway ?? 'no'} gateway; --gateway ${req.Address} cannot be honoured`);
        }
        return { Address: `${gateway}/${await this.prefixOf(req.PoolID)}`, Data: {} };
      }
      const got = await cluster.requestAddress(req.PoolID, req.Address || undefined);
      return { Address: `${got.address}/${got.prefix}`, Data: {} };
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    if (!isClusterPoolId(req.PoolID)) return this.local.releaseAddress(req);
    try {
      const cluster = this.need();
      if (req.Address === (await cluster.gatewayOf(req.PoolID))) return;
      await cluster.releaseAddress(req.PoolID, req.Address);
    } catch (err) {
      throw wrapError(err, `ReleaseAddress pool=${req.PoolID} address=${req.Address}`);
    }
  }

  private async prefixOf(poolId: string): Promise<number> {
    const blocks = await this.need().poolCidr(poolId);
    return Number(blocks.split('/')[1]);
  }

  private need(): ClusterIpam {
    if (!this.cluster) {
      throw new PluginError('INVALID_ARGUMENT', `cluster IPAM is not configured on this host: set DOCKER_CNI_CLUSTER_ETCD to the etcd endpoints`);
    }
    return this.cluster;
  }
}

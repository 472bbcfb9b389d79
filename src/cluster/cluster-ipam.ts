/**
 * Cluster-wide IPAM: pools live in etcd, each host owns blocks of a pool and
 * hands out addresses inside them from its local state. etcd is written only
 * when a host needs a new block, so the per-container path is one local
 * atomic file write.
 *
 * Docker-agnostic on purpose: the IPAM driver adapts Docker's calls to this.
 */
import { cidrContains, formatCidr, formatIp, parseIp, type IpAddr } from '../util/ip-math.js';
import { PluginError, wrapError } from '../errors.js';
import type { Logger } from '../log.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { claimAnyBlock, claimBlockOf, verifyOwnedBlocks, type ClaimContext } from './block-claims.js';
import { blockAt, blockIndexOf, checkLayout, firstFreeInBlock, parsePoolCidr, reservedValues, type BlockLayout } from './blocks.js';
import { ClusterError } from './errors.js';
import type { EtcdStore } from './etcd-store.js';
import type { HostLease } from './host-lease.js';
import { clusterPoolId } from './keys.js';
import type { LocalPool, LocalPoolStore } from './local-state.js';
import type { ClusterPoolRecord } from './records.js';

export interface ClusterIpamOptions {
  store: EtcdStore;
  lease: HostLease;
  local: LocalPoolStore;
  /** Block size for new IPv4 pools (e.g. 26). Existing pools keep the size they were created with. */
  blockPrefixV4: number;
  blockPrefixV6?: number;
  logger: Logger;
}

export interface ClusterPool {
  poolId: string;
  cidr: string;
  gateway?: string;
}

export class ClusterIpam {
  private readonly lock = new KeyedLock();
  private readonly pools = new Map<string, LocalPool>();

  constructor(private readonly options: ClusterIpamOptions) {
    options.lease.on('registered', () => {
      this.verifyAll().catch((err: unknown) => options.logger.error({ err }, 'cluster: block check after registration failed'));
    });
  }

  get hostId(): string {
    return this.options.lease.hostId;
  }

  /** Registers this host; the lease is then kept alive in the background. */
  async start(): Promise<void> {
    await this.options.lease.register();
  }

  /** Creates the pool cluster-wide or joins the existing one with the same subnet. */
  async requestPool(cidrText: string, requestedGateway?: string): Promise<ClusterPool> {
    const cidr = parsePoolCidr(cidrText);
    const canonical = formatCidr(cidr);
    const blockPrefix = cidr.family === 4 ? this.options.blockPrefixV4 : (this.options.blockPrefixV6 ?? 122);
    const layout = checkLayout(cidr, Math.max(blockPrefix, cidr.prefix));
    const gateway = requestedGateway ?? formatIp({ family: cidr.family, value: cidr.network + 1n });
    const gatewayAddr = parseIp(gateway);
    if (!gatewayAddr || !cidrContains(cidr, gatewayAddr)) throw new ClusterError('BAD_CONFIG', `gateway ${gateway} is not in ${canonical}`);
    const poolId = clusterPoolId(canonical);
    return this.lock.withLock(poolId, async () => {
      const wanted: ClusterPoolRecord = { poolId, cidr: canonical, blockPrefix: layout.blockPrefix, gateway, createdBy: this.hostId };
      const stored = await this.options.store.ensurePool(wanted);
      if (requestedGateway !== undefined && stored.gateway !== requestedGateway) {
        throw new ClusterError('POOL_MISMATCH', `pool ${canonical} exists in the cluster with gateway ${stored.gateway ?? 'none'}, not ${requestedGateway}`);
      }
      const existing = this.pools.get(poolId) ?? (await this.options.local.load(poolId));
      const { releasedAt: _released, ...kept } = existing ?? {
        poolId,
        cidr: stored.cidr,
        blockPrefix: stored.blockPrefix,
        ...(stored.gateway ? { gateway: stored.gateway } : {}),
        blocks: [],
        addresses: {},
      };
      await this.persist({ ...kept, requestedAt: new Date().toISOString() });
      return { poolId, cidr: stored.cidr, ...(stored.gateway ? { gateway: stored.gateway } : {}) };
    });
  }

  /** The pool's cluster-wide gateway, reserved in the pool record (no host ever hands it out). */
  async gatewayOf(poolId: string): Promise<string | undefined> {
    return (await this.localPool(poolId)).gateway;
  }

  /** Hands out an address (a bare IP) from this host's blocks; `requested` is a `--ip` value. */
  async requestAddress(poolId: string, requested?: string): Promise<{ address: string; prefix: number }> {
    return this.lock.withLock(poolId, async () => {
      const pool = await this.localPool(poolId);
      const layout = layoutOf(pool);
      await this.options.lease.ensureValid();
      const used = new Set(Object.keys(pool.addresses).map((ip) => parseIp(ip)?.value ?? -1n));
      const reserved = reservedValues(layout, pool.gateway ? parseIp(pool.gateway) : undefined);
      const value = requested === undefined ? await this.pickFree(pool, layout, used, reserved) : await this.pickRequested(pool, layout, requested, used, reserved);
      const address = formatIp({ family: layout.pool.family, value });
      // Re-read: a block claim above has replaced the record.
      const current = await this.localPool(poolId);
      const next: LocalPool = { ...current, addresses: { ...current.addresses, [address]: new Date().toISOString() } };
      await this.persist(next);
      return { address, prefix: layout.pool.prefix };
    });
  }

  /** Frees an address locally; idempotent, and needs no etcd. */
  async releaseAddress(poolId: string, address: string): Promise<void> {
    await this.lock.withLock(poolId, async () => {
      const pool = await this.localPool(poolId);
      if (!(address in pool.addresses)) return;
      const addresses = { ...pool.addresses };
      delete addresses[address];
      await this.persist({ ...pool, addresses });
    });
  }

  /**
   * This host is done with the pool: its blocks go back to the cluster. The
   * pool record itself stays, since other hosts may still use the subnet.
   */
  async releasePool(poolId: string): Promise<void> {
    await this.lock.withLock(poolId, async () => {
      const pool = this.pools.get(poolId) ?? (await this.options.local.load(poolId));
      if (!pool) return;
      if (Object.keys(pool.addresses).length > 0) {
        this.options.logger.warn(
          { poolId, left: Object.keys(pool.addresses) },
          'cluster: pool released with addresses still recorded; its blocks are kept until the reconciler has freed them',
        );
        await this.persist({ ...pool, releasedAt: new Date().toISOString() });
        return;
      }
      const etcdBlocks = await this.options.store.listBlocks(poolId);
      for (const block of etcdBlocks.values()) {
        if (block.record.host === this.hostId) await this.options.store.releaseBlock(poolId, block);
      }
      this.pools.delete(poolId);
      await this.options.local.remove(poolId);
    });
  }

  /** This host's state of each cluster pool (a snapshot: records are replaced, never changed in place), for the reconciler. */
  async holdings(): Promise<LocalPool[]> {
    const out: LocalPool[] = [];
    for (const poolId of await this.options.local.list()) {
      const pool = await this.localPool(poolId).catch(() => undefined);
      if (pool) out.push(pool);
    }
    return out;
  }

  /** Block CIDRs this host owns in a pool (for routes and tests). */
  async ownedBlocks(poolId: string): Promise<string[]> {
    const pool = await this.localPool(poolId);
    return pool.blocks.map((index) => formatCidr(blockAt(layoutOf(pool), index)));
  }

  async poolCidr(poolId: string): Promise<string> {
    return (await this.localPool(poolId)).cidr;
  }

  async allocatedAddresses(poolId: string): Promise<string[]> {
    return Object.keys((await this.localPool(poolId)).addresses);
  }

  private async pickFree(pool: LocalPool, layout: BlockLayout, used: Set<bigint>, reserved: Set<bigint>): Promise<bigint> {
    for (const index of pool.blocks) {
      const value = firstFreeInBlock(blockAt(layout, index), used, reserved);
      if (value !== undefined) return value;
    }
    for (;;) {
      const index = await claimAnyBlock(this.claimContext(pool, layout), new Set(pool.blocks));
      await this.persist({ ...pool, blocks: [...pool.blocks, index].sort((a, b) => a - b) });
      pool = await this.localPool(pool.poolId);
      const value = firstFreeInBlock(blockAt(layout, index), used, reserved);
      if (value !== undefined) return value;
    }
  }

  private async pickRequested(pool: LocalPool, layout: BlockLayout, requested: string, used: Set<bigint>, reserved: Set<bigint>): Promise<bigint> {
    const addr: IpAddr | undefined = parseIp(requested);
    const index = addr ? blockIndexOf(layout, addr) : undefined;
    if (!addr || index === undefined) throw new ClusterError('BAD_CONFIG', `${requested} is not an address of ${pool.cidr}`);
    if (used.has(addr.value) || reserved.has(addr.value)) throw new ClusterError('ADDRESS_TAKEN', `${requested} is already in use`);
    if (!pool.blocks.includes(index)) {
      await claimBlockOf(this.claimContext(pool, layout), index, requested);
      await this.persist({ ...pool, blocks: [...pool.blocks, index].sort((a, b) => a - b) });
    }
    return addr.value;
  }

  private claimContext(pool: LocalPool, layout: BlockLayout): ClaimContext {
    return { store: this.options.store, hostId: this.hostId, poolId: pool.poolId, layout, logger: this.options.logger };
  }

  private async verifyAll(): Promise<void> {
    for (const poolId of await this.options.local.list()) {
      await this.lock.withLock(poolId, async () => {
        const pool = await this.localPool(poolId);
        const { owned, lost } = await verifyOwnedBlocks(this.claimContext(pool, layoutOf(pool)), pool.blocks);
        if (lost.length > 0) {
          this.options.logger.error(
            { poolId, lost: lost.map((i) => formatCidr(blockAt(layoutOf(pool), i))) },
            'cluster: blocks were reclaimed by other hosts while this host was cut off from etcd longer than its lease; its addresses there may be duplicated',
          );
        }
        await this.persist({ ...pool, blocks: owned });
      });
    }
  }

  private async localPool(poolId: string): Promise<LocalPool> {
    const cached = this.pools.get(poolId);
    if (cached) return cached;
    const loaded = await this.options.local.load(poolId);
    if (!loaded) throw new PluginError('NOT_FOUND', `cluster pool ${poolId} is not known on this host`);
    this.pools.set(poolId, loaded);
    return loaded;
  }

  private async persist(pool: LocalPool): Promise<void> {
    try {
      await this.options.local.save(pool);
    } catch (err) {
      throw wrapError(new PluginError('STATE_FAILED', 'could not write the local cluster pool state', { cause: err }), `pool ${pool.cidr}`);
    }
    this.pools.set(pool.poolId, pool);
  }
}

function layoutOf(pool: LocalPool): BlockLayout {
  return checkLayout(parsePoolCidr(pool.cidr), pool.blockPrefix);
}

/**
 * The AddressAllocator on host-local's on-disk contract, carried out in-process.
 *
 * - A pool's addresses live in host-local's directory `<dataDir>/<PoolID>/`;
 *   the PoolID doubles as host-local's network name, so host-local (or any
 *   CNI tool configured with that name and data dir) sees and respects every
 *   reservation, and docker-cni respects theirs.
 * - An address is reserved the way host-local's ADD reserves it: the same
 *   order (host-local-order.ts), an O_EXCL create of the address's file
 *   holding a fresh allocation container ID, and `last_reserved_ip.0`.
 *   Running the plugin cost a process spawn on every `docker run`.
 * - Release removes the address's file after checking its holder, which is
 *   all host-local's DEL does.
 * - The pool's gateway is never handed out, as host-local never hands out its
 *   range's gateway.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PluginError } from '../errors.js';
import type { Logger } from '../log.js';
import { CHAIN_IFNAME, newAllocationId } from '../names.js';
import { formatIp, parseIp, usableRange, type IpAddr } from '../util/ip-math.js';
import type { AddressAllocator, AddressHolder } from './address-allocator.js';
import { allocationOrder, type AllocationRange } from './host-local-order.js';
import { HostLocalStore } from './host-local-store.js';
import { allocationRange, inAllocationRange, poolCidr, type PoolRecord } from './pool-record.js';

/** Bound on exclusive creates lost to other writers in one allocation (each means the address was just taken). */
const MAX_LOST_RACES = 64;

const conflict = (message: string): PluginError => new PluginError('CONFLICT', message);

export class HostLocalAllocator implements AddressAllocator {
  readonly dataDir: string;
  private readonly store: HostLocalStore;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.dataDir = resolve(dataDir);
    this.store = new HostLocalStore(this.dataDir);
  }

  async init(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
  }

  async holderOf(poolId: string, addr: IpAddr): Promise<AddressHolder | undefined> {
    return this.store.reservationOf(poolId, addr);
  }

  isAllocated(poolId: string, addr: IpAddr): Promise<boolean> {
    return this.store.isAllocated(poolId, addr);
  }

  allocations(poolId: string): Promise<Map<string, AddressHolder>> {
    return this.store.reservations(poolId);
  }

  removePool(poolId: string): Promise<string[]> {
    return this.store.removePoolDir(poolId);
  }

  /** Synchronous from start to end (see HostLocalStore.reserve), so two allocations of this process never interleave. */
  async allocate(record: PoolRecord, requested?: IpAddr): Promise<IpAddr> {
    const holder = { containerId: newAllocationId(), ifName: CHAIN_IFNAME };
    const range = this.rangeOf(record, requested);
    if (requested) {
      // Docker lets --ip lie outside --ip-range as long as it is in the pool.
      if (requested.value === range.gateway) throw conflict(`address ${formatIp(requested)} is the gateway of pool ${record.pool}`);
      if (requested.value < range.first || requested.value > range.last) {
        throw conflict(`address ${formatIp(requested)} is not available in pool ${record.pool}`);
      }
      if (!this.store.reserve(record.poolId, requested, holder)) {
        const current = await this.holderOf(record.poolId, requested).catch(() => undefined);
        throw conflict(`address ${formatIp(requested)} is already in use in pool ${record.pool}${current ? ` (held by ${current.containerId})` : ''}`);
      }
      return this.reserved(record, requested, holder.containerId);
    }
    const family = poolCidr(record).family;
    const taken = this.store.names(record.poolId);
    const last = this.store.lastReserved(record.poolId);
    let lostRaces = 0;
    for (const value of allocationOrder(range, last?.family === family ? last.value : undefined)) {
      const addr: IpAddr = { family, value };
      if (taken.has(formatIp(addr))) continue;
      if (this.store.reserve(record.poolId, addr, holder)) return this.reserved(record, addr, holder.containerId);
      if (++lostRaces > MAX_LOST_RACES) break;
    }
    const where = record.subPool ? `IP range ${record.subPool} of pool ${record.pool}` : `pool ${record.pool}`;
    throw new PluginError('EXHAUSTED', `${where} is exhausted: no free address left`);
  }

  private reserved(record: PoolRecord, addr: IpAddr, containerId: string): IpAddr {
    this.logger.debug({ poolId: record.poolId, address: formatIp(addr), containerId }, 'address allocated');
    return addr;
  }

  /**
   * What host-local would be configured with: the --ip-range if any (the whole pool for a --ip outside
   * it), and the pool's gateway, or, until Docker reserves one, the network address (never handed out
   * anyway), since host-local always keeps a gateway out of circulation.
   */
  private rangeOf(record: PoolRecord, requested: IpAddr | undefined): AllocationRange {
    const pool = poolCidr(record);
    const { first, last } = requested && !inAllocationRange(record, requested) ? usableRange(pool) : allocationRange(record);
    const gateway = record.gateway ? parseIp(record.gateway)?.value : pool.network;
    return { first, last, ...(gateway !== undefined ? { gateway } : {}) };
  }

  async release(record: PoolRecord, addr: IpAddr): Promise<boolean> {
    // In-process, not a host-local DEL: the result on disk is the same, and a
    // container removal waits on ReleaseAddress, so the spawn was on Docker's path.
    const reservation = this.store.removeReservation(record.poolId, addr);
    if (!reservation) return false;
    this.logger.debug({ poolId: record.poolId, ip: formatIp(addr), containerId: reservation.containerId }, 'address released');
    return true;
  }
}

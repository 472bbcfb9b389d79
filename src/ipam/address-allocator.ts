/**
 * The seam between the Docker-facing IPAM driver and whatever keeps track of
 * endpoint addresses. The driver owns pools and their gateways (PoolRecord);
 * an allocator owns only which addresses inside a pool are handed out, and to
 * whom. host-local-allocator.ts is the implementation in use (host-local's
 * files are the truth); an in-process or a distributed (etcd) allocator fits
 * behind the same interface as long as it keeps these rules:
 *
 * - Addresses are identified by their canonical text (formatIp): "10.0.0.5",
 *   "fd00::5". The pool's gateway is never handed out (PoolRecord.gateway).
 * - allocate() without `requested` picks from the PoolRecord's range
 *   (rangeStart..rangeEnd, else the usable pool); with `requested` it may give
 *   any usable address of the pool (Docker lets --ip lie outside --ip-range).
 * - Every method is safe to call concurrently, also for one pool; allocate()
 *   never hands one address to two callers.
 * - release() of an address nobody holds is success (returns false), because
 *   Docker may repeat ReleaseAddress.
 */
import type { IpAddr } from '../util/ip-math.js';
import type { PoolRecord } from './pool-record.js';

/** Who holds an address: an opaque owner ID plus the interface name it was allocated for. */
export interface AddressHolder {
  containerId: string;
  ifName: string;
}

export interface AddressAllocator {
  /** Prepares the backing storage; called once before serving. */
  init(): Promise<void>;
  /** Allocates `requested`, or any free address of the pool's range. EXHAUSTED / CONFLICT PluginErrors on failure. */
  allocate(pool: PoolRecord, requested?: IpAddr): Promise<IpAddr>;
  /** Frees an address; false when nobody held it. */
  release(pool: PoolRecord, addr: IpAddr): Promise<boolean>;
  /** The holder of an address, or undefined when it is free. */
  holderOf(poolId: string, addr: IpAddr): Promise<AddressHolder | undefined>;
  /** Whether the address is taken, even by a holder this allocator cannot read. */
  isAllocated(poolId: string, addr: IpAddr): Promise<boolean>;
  /** Every address handed out in a pool: canonical IP -> holder. */
  allocations(poolId: string): Promise<Map<string, AddressHolder>>;
  /** Forgets a pool; returns what it had to leave behind (empty when all is gone). */
  removePool(poolId: string): Promise<string[]>;
}

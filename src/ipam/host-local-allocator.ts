/**
 * The AddressAllocator on the CNI host-local plugin.
 *
 * - A pool's addresses live in host-local's directory `<dataDir>/<PoolID>/`;
 *   the PoolID doubles as host-local's network name.
 * - Each address is allocated by running host-local ADD under a fresh
 *   allocation container ID, so host-local's files alone say who holds what.
 * - Release removes the address's file after checking its holder, which is
 *   all host-local's DEL does, without a spawn.
 * - The pool's gateway is passed to host-local as the range's gateway, which
 *   host-local never hands out.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CniResult, RuntimeConf } from '../cni/types.js';
import { PluginError, wrapError } from '../errors.js';
import type { Logger } from '../log.js';
import { CHAIN_IFNAME, CNI_ARG, newAllocationId } from '../names.js';
import { cidrContains, formatIp, parseCidr, type IpAddr } from '../util/ip-math.js';
import type { AddressAllocator, AddressHolder } from './address-allocator.js';
import { HostLocalStore } from './host-local-store.js';
import { inAllocationRange, poolCidr, type PoolRecord } from './pool-record.js';

/** The netconf of an IPAM-only plugin run: just enough for host-local. */
export interface IpamNetConf {
  cniVersion: string;
  name: string;
  ipam: { type: string; [key: string]: unknown };
}

/** The one thing host-local allocation needs from the CNI runtime; CniRuntime matches it structurally. */
export interface IpamPluginRunner {
  execIpam(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined>;
}

/**
 * host-local never enters the netns, but 1.1.1 refuses ADD with an empty
 * CNI_NETNS ("required env variables [CNI_NETNS] missing"), so give it our own,
 * and say so with CNI_NETNS_OVERRIDE: plugins ≥ 1.3 fail an ADD into their own
 * namespace otherwise (after allocating).
 */
export const HOST_LOCAL_NETNS = '/proc/self/ns/net';
const HOST_LOCAL_CNI_VERSION = '1.0.0';

const conflict = (message: string): PluginError => new PluginError('CONFLICT', message);

export class HostLocalAllocator implements AddressAllocator {
  readonly dataDir: string;
  private readonly store: HostLocalStore;

  constructor(
    private readonly runner: IpamPluginRunner,
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.dataDir = resolve(dataDir);
    this.store = new HostLocalStore(this.dataDir);
  }

  async init(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
  }

  holderOf(poolId: string, addr: IpAddr): Promise<AddressHolder | undefined> {
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

  async allocate(record: PoolRecord, requested?: IpAddr): Promise<IpAddr> {
    const pool = poolCidr(record);
    // Docker lets --ip lie outside --ip-range as long as it is in the pool;
    // host-local only honours a requested IP inside its configured range.
    const wholePool = requested !== undefined && !inAllocationRange(record, requested);
    const rt: RuntimeConf = {
      containerId: newAllocationId(),
      netns: HOST_LOCAL_NETNS,
      netnsOverride: true,
      ifName: CHAIN_IFNAME,
      ...(requested ? { args: [[CNI_ARG.ignoreUnknown, '1'], [CNI_ARG.ip, formatIp(requested)]] as Array<[string, string]> } : {}),
    };
    const netconf = this.netconf(record, wholePool);
    let result: CniResult | undefined;
    try {
      result = await this.runPlugin('ADD', netconf, rt);
    } catch (err) {
      // As the CNI spec asks of runtimes: DEL after a failed ADD. The ID is
      // fresh, so this can only release what this very ADD may have written
      // (e.g. before a timeout).
      await this.bestEffortDel(netconf, rt, record.poolId);
      throw classifyAddError(err, record, requested);
    }
    const allocated = (result?.ips ?? [])
      .map((entry) => parseCidr(entry.address)?.address)
      .find((addr): addr is IpAddr => addr !== undefined && cidrContains(pool, addr));
    if (!allocated || (requested && allocated.value !== requested.value)) {
      await this.bestEffortDel(netconf, rt, record.poolId);
      throw new PluginError(
        'CNI_FAILED',
        `host-local returned ${JSON.stringify(result?.ips ?? [])}, not ${requested ? formatIp(requested) : 'an address'} in ${record.pool}`,
      );
    }
    this.logger.debug({ poolId: record.poolId, address: formatIp(allocated), containerId: rt.containerId }, 'address allocated');
    return allocated;
  }

  async release(record: PoolRecord, addr: IpAddr): Promise<boolean> {
    // In-process, not a host-local DEL: the result on disk is the same, and a
    // container removal waits on ReleaseAddress, so the spawn was on Docker's path.
    const reservation = await this.store.removeReservation(record.poolId, addr);
    if (!reservation) return false;
    this.logger.debug({ poolId: record.poolId, ip: formatIp(addr), containerId: reservation.containerId }, 'address released');
    return true;
  }

  private netconf(record: PoolRecord, wholePool: boolean): IpamNetConf {
    // host-local always keeps one gateway address out of circulation, .1 if
    // told none. Until Docker reserves a gateway, name the network address
    // instead (never handed out anyway) so no usable address is lost.
    const pool = poolCidr(record);
    const range: Record<string, string> = {
      subnet: record.pool,
      gateway: record.gateway ?? formatIp({ family: pool.family, value: pool.network }),
    };
    if (!wholePool && record.rangeStart && record.rangeEnd) {
      range.rangeStart = record.rangeStart;
      range.rangeEnd = record.rangeEnd;
    }
    return {
      cniVersion: HOST_LOCAL_CNI_VERSION,
      name: record.poolId,
      ipam: { type: 'host-local', dataDir: this.dataDir, ranges: [[range]] },
    };
  }

  private async runPlugin(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined> {
    try {
      return await this.runner.execIpam(verb, netconf, rt);
    } catch (err) {
      // The runner's PluginErrors (CniPluginError above all) already name the plugin and verb.
      if (err instanceof PluginError) throw err;
      throw wrapError(err, `host-local ${verb}`);
    }
  }

  private async bestEffortDel(netconf: IpamNetConf, rt: RuntimeConf, poolId: string): Promise<void> {
    try {
      await this.runner.execIpam('DEL', netconf, { containerId: rt.containerId, netns: rt.netns, netnsOverride: true, ifName: rt.ifName });
    } catch (err) {
      this.logger.warn({ poolId, containerId: rt.containerId, err }, 'cleanup DEL after a failed allocation failed');
    }
  }
}

/** Turns host-local's generic "code 999" failures into the errors Docker users should see. */
function classifyAddError(err: unknown, record: PoolRecord, requested: IpAddr | undefined): PluginError {
  const message = err instanceof Error ? err.message : String(err);
  if (/no IP addresses available/i.test(message)) {
    const where = record.subPool ? `IP range ${record.subPool} of pool ${record.pool}` : `pool ${record.pool}`;
    return new PluginError('EXHAUSTED', `${where} is exhausted: no free address left`, { cause: err });
  }
  if (requested && /has been allocated|not available in range set|duplicate allocation/i.test(message)) {
    return conflict(`address ${formatIp(requested)} is already in use in pool ${record.pool}`);
  }
  return err instanceof PluginError ? err : wrapError(err, 'host-local ADD');
}

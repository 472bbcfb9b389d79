/**
 * Docker's remote IpamDriver, backed by the CNI host-local plugin.
 *
 * - A pool is a PoolRecord (our state) plus host-local's directory
 *   `<hostLocalDataDir>/<PoolID>/` (its state). The PoolID doubles as
 *   host-local's network name.
 * - Endpoint addresses are allocated by running host-local ADD under a fresh
 *   allocation container ID, so host-local's files alone say who holds what;
 *   ReleaseAddress reads that file back to know what to DEL.
 * - The gateway is kept in the PoolRecord and passed to host-local as the
 *   range's gateway, which host-local never hands out.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CniResult, RuntimeConf } from '../cni/types.js';
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
import type { Logger } from '../log.js';
import type { RecordStore } from '../state/record-store.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { HostLocalStore, type HostLocalReservation } from './host-local-store.js';
import {
  cidrContains,
  cidrFirst,
  cidrLast,
  cidrsOverlap,
  cidrWithin,
  familyBits,
  firstFreeSubnet,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  parseSupernetSpec,
  usableRange,
  type Cidr,
  type IpAddr,
  type IpFamily,
  type SupernetSpec,
} from '../util/ip-math.js';
import { PoolRecordSchema, type PoolRecord } from './pool-record.js';
import { CHAIN_IFNAME, CNI_ARG, isPoolId, newAllocationId, newPoolId, POOL_ID_SHAPE } from '../names.js';

export { ALLOCATION_ID_PREFIX } from '../names.js';

/** The netconf of an IPAM-only plugin run: just enough for host-local. */
export interface IpamNetConf {
  cniVersion: string;
  name: string;
  ipam: { type: string; [key: string]: unknown };
}

/** The one thing this driver needs from the CNI runtime; CniRuntime matches it structurally. */
export interface IpamPluginRunner {
  execIpam(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined>;
}

export interface IpamDriverOptions {
  pools: RecordStore<PoolRecord>;
  runner: IpamPluginRunner;
  /** host-local's dataDir; each pool gets `<dir>/<PoolID>/`. */
  hostLocalDataDir: string;
  /** "<supernet cidr>/<subnet prefix>", e.g. "10.231.0.0/16/24". */
  defaultPoolsV4: string[];
  defaultPoolsV6: string[];
  /** Routed CIDRs of the host that automatic pools must avoid; defaults to none. */
  hostRoutes?: () => Promise<string[]>;
  logger: Logger;
}

export const ADDRESS_SPACES = { local: 'CniLocal', global: 'CniGlobal' } as const;

/**
 * host-local never enters the netns, but 1.1.1 refuses ADD with an empty
 * CNI_NETNS ("required env variables [CNI_NETNS] missing"), so give it our own.
 */
export const HOST_LOCAL_NETNS = '/proc/self/ns/net';
const HOST_LOCAL_CNI_VERSION = '1.0.0';

const ALL_POOLS_LOCK = 'ipam-pools';
const poolLockKey = (poolId: string): string => `ipam-pool:${poolId}`;

const conflict = (message: string): PluginError => new PluginError('CONFLICT', message);
const invalid = (message: string): PluginError => new PluginError('INVALID_ARGUMENT', message);

export class IpamDriver implements IpamDriverApi {
  private readonly pools: RecordStore<PoolRecord>;
  private readonly runner: IpamPluginRunner;
  private readonly dataDir: string;
  private readonly hostLocal: HostLocalStore;
  private readonly defaults: Record<IpFamily, SupernetSpec[]>;
  private readonly hostRoutes: () => Promise<string[]>;
  private readonly logger: Logger;
  private readonly lock = new KeyedLock();

  constructor(options: IpamDriverOptions) {
    this.pools = options.pools;
    this.runner = options.runner;
    this.dataDir = resolve(options.hostLocalDataDir);
    this.hostLocal = new HostLocalStore(this.dataDir);
    this.defaults = {
      4: IpamDriver.parseDefaults(options.defaultPoolsV4, 4),
      6: IpamDriver.parseDefaults(options.defaultPoolsV6, 6),
    };
    this.hostRoutes = options.hostRoutes ?? (async () => []);
    this.logger = options.logger.child({ component: 'ipam' });
  }

  private static parseDefaults(specs: string[], family: IpFamily): SupernetSpec[] {
    return specs.map((text) => {
      let spec: SupernetSpec;
      try {
        spec = parseSupernetSpec(text);
      } catch (err) {
        throw invalid((err as Error).message);
      }
      if (spec.supernet.family !== family) throw invalid(`default IPv${family} pool "${text}" is not an IPv${family} network`);
      return spec;
    });
  }

  async init(): Promise<void> {
    await this.pools.ensureDir();
    await mkdir(this.dataDir, { recursive: true, mode: 0o755 });
  }

  getCapabilities(): IpamCapabilities {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  getDefaultAddressSpaces(): AddressSpacesResponse {
    return { LocalDefaultAddressSpace: ADDRESS_SPACES.local, GlobalDefaultAddressSpace: ADDRESS_SPACES.global };
  }

  // ---- pools ------------------------------------------------------------------

  async requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse> {
    const context = `RequestPool ${req.Pool ? `pool=${req.Pool}` : `automatic IPv${req.V6 ? 6 : 4}`}`;
    try {
      const family: IpFamily = req.V6 ? 6 : 4;
      const addressSpace = req.AddressSpace ?? '';
      if (addressSpace !== '' && addressSpace !== ADDRESS_SPACES.local && addressSpace !== ADDRESS_SPACES.global) {
        throw invalid(`unknown address space "${addressSpace}" (expected ${ADDRESS_SPACES.local} or ${ADDRESS_SPACES.global})`);
      }
      const explicit = req.Pool ? IpamDriver.parsePool(req.Pool, family) : undefined;
      if (req.SubPool && !explicit) throw invalid(`an IP range (${req.SubPool}) needs an explicit subnet`);
      const range = explicit && req.SubPool ? IpamDriver.parseSubPool(req.SubPool, explicit) : undefined;

      return await this.lock.withLock(ALL_POOLS_LOCK, async () => {
        const existing = await this.listPools();
        let pool: Cidr;
        if (explicit) {
          for (const other of existing) {
            const otherCidr = parseCidr(other.pool)?.cidr;
            if (otherCidr && cidrsOverlap(explicit, otherCidr)) {
              throw conflict(`pool ${formatCidr(explicit)} overlaps pool ${other.pool} (${other.poolId}) already in use`);
            }
          }
          pool = explicit;
        } else {
          pool = await this.pickAutomaticPool(family, existing);
        }
        const poolId = await this.freshPoolId();
        const record: PoolRecord = {
          version: 1,
          poolId,
          addressSpace: addressSpace || ADDRESS_SPACES.local,
          family,
          pool: formatCidr(pool),
          ...(range ?? {}),
          automatic: !explicit,
          options: { ...(req.Options ?? {}) },
          createdAt: new Date().toISOString(),
        };
        await this.pools.put(poolId, record);
        this.logger.info({ poolId, pool: record.pool, subPool: record.subPool }, 'pool created');
        return { PoolID: poolId, Pool: record.pool, Data: {} };
      });
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  async releasePool(req: ReleasePoolRequest): Promise<void> {
    const poolId = req.PoolID;
    try {
      IpamDriver.checkPoolId(poolId);
      await this.lock.withLock(ALL_POOLS_LOCK, () =>
        this.lock.withLock(poolLockKey(poolId), async () => {
          // host-local's directory goes first: a record without a directory is
          // harmless, a directory without a record would be an orphan.
          const leftovers = await this.hostLocal.removePoolDir(poolId);
          if (leftovers.length > 0) {
            this.logger.warn({ poolId, leftovers }, 'pool directory holds files host-local did not create; left in place');
          }
          await this.pools.delete(poolId);
          this.logger.info({ poolId }, 'pool released');
        }),
      );
    } catch (err) {
      throw wrapError(err, `ReleasePool ${poolId}`);
    }
  }

  // ---- addresses ----------------------------------------------------------------

  async requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse> {
    const isGateway = req.Options?.[OPT.requestAddressType] === OPT.gatewayData;
    const context = `RequestAddress pool=${req.PoolID}${req.Address ? ` address=${req.Address}` : ''}${isGateway ? ' (gateway)' : ''}`;
    try {
      const record = await this.getPoolOrThrow(req.PoolID);
      const requested = req.Address ? IpamDriver.parseAddressInPool(req.Address, record) : undefined;
      return isGateway ? await this.reserveGateway(record.poolId, requested) : await this.allocate(record, requested);
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    const context = `ReleaseAddress pool=${req.PoolID} address=${req.Address}`;
    try {
      const record = await this.getPoolOrThrow(req.PoolID);
      const addr = IpamDriver.parseAddressInPool(req.Address, record);
      const ip = formatIp(addr);
      if (record.gateway === ip) {
        await this.lock.withLock(poolLockKey(record.poolId), async () => {
          const current = await this.getPoolOrThrow(record.poolId);
          if (current.gateway !== ip) return;
          const { gateway: _released, ...rest } = current;
          await this.pools.put(record.poolId, rest);
          this.logger.info({ poolId: record.poolId, gateway: ip }, 'gateway released');
        });
        return;
      }
      const reservation = await this.hostLocal.reservationOf(record.poolId, addr);
      if (!reservation) {
        // Docker only logs ReleaseAddress errors, and may repeat a release: nothing held is success.
        this.logger.debug({ poolId: record.poolId, ip }, 'address not allocated; nothing to release');
        return;
      }
      await this.runPlugin('DEL', this.netconf(record, true), this.runtimeConf(reservation));
      const after = await this.hostLocal.reservationOf(record.poolId, addr);
      if (after && after.containerId === reservation.containerId && after.ifName === reservation.ifName) {
        throw new PluginError('CNI_FAILED', `host-local DEL succeeded but ${ip} is still allocated to ${reservation.containerId}`);
      }
      this.logger.debug({ poolId: record.poolId, ip, containerId: reservation.containerId }, 'address released');
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  // ---- for the reconciler / GC ------------------------------------------------------

  /** All readable pool records (corrupt ones are logged and skipped). */
  async listPools(): Promise<PoolRecord[]> {
    const entries = await this.pools.list((id, err) => this.logger.warn({ poolId: id, err }, 'unreadable pool record skipped'));
    const out: PoolRecord[] = [];
    for (const { id, record } of entries) {
      const parsed = PoolRecordSchema.safeParse(record);
      if (parsed.success && parsed.data.poolId === id) out.push(parsed.data);
      else this.logger.warn({ poolId: id }, 'invalid pool record skipped');
    }
    return out;
  }

  /** The pool's record, or undefined if there is no such pool. */
  async getPool(poolId: string): Promise<PoolRecord | undefined> {
    IpamDriver.checkPoolId(poolId);
    const raw = await this.pools.get(poolId);
    if (raw === undefined) return undefined;
    const parsed = PoolRecordSchema.safeParse(raw);
    if (!parsed.success || parsed.data.poolId !== poolId) {
      throw new PluginError('STATE_FAILED', `pool record ${poolId} is invalid: ${parsed.error?.message ?? 'id mismatch'}`);
    }
    return parsed.data;
  }

  /** host-local's allocations in a pool: canonical IP -> holder. The gateway is not among them. */
  async listReservations(poolId: string): Promise<Map<string, HostLocalReservation>> {
    IpamDriver.checkPoolId(poolId);
    return this.hostLocal.reservations(poolId);
  }

  // ---- internals ----------------------------------------------------------------------

  private async allocate(record: PoolRecord, requested: IpAddr | undefined): Promise<RequestAddressResponse> {
    const pool = IpamDriver.poolCidr(record);
    let wholePool = false;
    if (requested) {
      const ip = formatIp(requested);
      if (record.gateway === ip) throw conflict(`address ${ip} is the gateway of pool ${record.pool}`);
      if (await this.hostLocal.isAllocated(record.poolId, requested)) {
        const holder = await this.hostLocal.reservationOf(record.poolId, requested).catch(() => undefined);
        throw conflict(`address ${ip} is already in use in pool ${record.pool}${holder ? ` (held by ${holder.containerId})` : ''}`);
      }
      // Docker lets --ip lie outside --ip-range as long as it is in the pool;
      // host-local only honours a requested IP inside its configured range.
      wholePool = !IpamDriver.inRange(record, requested);
    }
    const rt: RuntimeConf = {
      containerId: newAllocationId(),
      netns: HOST_LOCAL_NETNS,
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
      throw IpamDriver.classifyAddError(err, record, requested);
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
    const address = `${formatIp(allocated)}/${pool.prefix}`;
    this.logger.debug({ poolId: record.poolId, address, containerId: rt.containerId }, 'address allocated');
    return { Address: address, Data: {} };
  }

  private async reserveGateway(poolId: string, requested: IpAddr | undefined): Promise<RequestAddressResponse> {
    return this.lock.withLock(poolLockKey(poolId), async () => {
      const record = await this.getPoolOrThrow(poolId);
      const pool = IpamDriver.poolCidr(record);
      let gateway: IpAddr;
      if (requested) {
        const ip = formatIp(requested);
        if (record.gateway === ip) return { Address: `${ip}/${pool.prefix}`, Data: {} };
        if (record.gateway) throw conflict(`pool ${record.pool} already has gateway ${record.gateway}`);
        if (await this.hostLocal.isAllocated(poolId, requested)) {
          throw conflict(`gateway address ${ip} is already allocated to an endpoint in pool ${record.pool}`);
        }
        gateway = requested;
      } else {
        if (record.gateway) throw conflict(`pool ${record.pool} already has gateway ${record.gateway}`);
        gateway = await this.firstFreeAddress(record);
      }
      const ip = formatIp(gateway);
      await this.pools.put(poolId, { ...record, gateway: ip });
      this.logger.info({ poolId, gateway: ip }, 'gateway reserved');
      return { Address: `${ip}/${pool.prefix}`, Data: {} };
    });
  }

  /** The first address of the allocation range that host-local has not handed out. */
  private async firstFreeAddress(record: PoolRecord): Promise<IpAddr> {
    const { first, last } = IpamDriver.allocationRange(record);
    const family = record.family;
    const taken = new Set((await this.hostLocal.reservations(record.poolId)).keys());
    // Every taken address is one file, so this loop ends after at most taken.size + 1 steps.
    for (let value = first; value <= last; value++) {
      const addr = { family, value };
      if (!taken.has(formatIp(addr)) && !(await this.hostLocal.isAllocated(record.poolId, addr))) return addr;
    }
    throw new PluginError('EXHAUSTED', `pool ${record.pool} has no free address left for a gateway`);
  }

  private async pickAutomaticPool(family: IpFamily, existing: PoolRecord[]): Promise<Cidr> {
    const specs = this.defaults[family];
    if (specs.length === 0) throw new PluginError('EXHAUSTED', `no default IPv${family} pools are configured`);
    let routes: string[] = [];
    try {
      routes = await this.hostRoutes();
    } catch (err) {
      this.logger.warn({ err }, 'could not read host routes; automatic pools may overlap them');
    }
    const blockers: Cidr[] = [];
    for (const text of [...routes, ...existing.map((p) => p.pool)]) {
      const parsed = parseCidr(text);
      if (parsed) blockers.push(parsed.cidr);
    }
    for (const spec of specs) {
      const subnet = firstFreeSubnet(spec, blockers);
      if (subnet) return subnet;
    }
    const supernets = specs.map((s) => `${formatCidr(s.supernet)} (/${s.subnetPrefix} subnets)`).join(', ');
    throw new PluginError(
      'EXHAUSTED',
      `no free IPv${family} subnet left in the default pools ${supernets}: all overlap existing pools or host routes`,
    );
  }

  private async freshPoolId(): Promise<string> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const poolId = newPoolId();
      const leftovers = await this.hostLocal.reservations(poolId);
      if ((await this.pools.get(poolId)) === undefined && leftovers.size === 0) return poolId;
    }
    throw new PluginError('INTERNAL', 'could not generate an unused PoolID');
  }

  private netconf(record: PoolRecord, wholePool: boolean): IpamNetConf {
    // host-local always keeps one gateway address out of circulation, .1 if
    // told none. Until Docker reserves a gateway, name the network address
    // instead (never handed out anyway) so no usable address is lost.
    const pool = IpamDriver.poolCidr(record);
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

  private runtimeConf(reservation: HostLocalReservation): RuntimeConf {
    return { containerId: reservation.containerId, netns: HOST_LOCAL_NETNS, ifName: reservation.ifName };
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
      await this.runner.execIpam('DEL', netconf, { containerId: rt.containerId, netns: rt.netns, ifName: rt.ifName });
    } catch (err) {
      this.logger.warn({ poolId, containerId: rt.containerId, err }, 'cleanup DEL after a failed allocation failed');
    }
  }

  private async getPoolOrThrow(poolId: string): Promise<PoolRecord> {
    const record = await this.getPool(poolId);
    if (!record) throw new PluginError('NOT_FOUND', `unknown pool ${poolId} (not created by this driver, or already released)`);
    return record;
  }

  /** Turns host-local's generic "code 999" failures into the errors Docker users should see. */
  private static classifyAddError(err: unknown, record: PoolRecord, requested: IpAddr | undefined): PluginError {
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

  private static checkPoolId(poolId: string): void {
    if (!isPoolId(poolId)) {
      throw invalid(`invalid PoolID "${poolId.slice(0, 80)}": this driver's pool IDs look like ${POOL_ID_SHAPE}`);
    }
  }

  private static parsePool(text: string, family: IpFamily): Cidr {
    const parsed = parseCidr(text);
    if (!parsed) throw invalid(`invalid subnet "${text}": expected a CIDR such as 10.231.5.0/24`);
    if (parsed.cidr.family !== family) {
      throw invalid(`subnet ${text} is IPv${parsed.cidr.family} but an IPv${family} pool was requested`);
    }
    const maxPrefix = familyBits(family) - 2;
    if (parsed.cidr.prefix < 1 || parsed.cidr.prefix > maxPrefix) {
      throw invalid(`subnet ${text} must have a prefix length between 1 and ${maxPrefix}`);
    }
    return parsed.cidr;
  }

  private static parseSubPool(text: string, pool: Cidr): Pick<PoolRecord, 'subPool' | 'rangeStart' | 'rangeEnd'> {
    const parsed = parseCidr(text);
    if (!parsed) throw invalid(`invalid IP range "${text}": expected a CIDR such as 10.231.5.128/25`);
    const sub = parsed.cidr;
    if (!cidrWithin(sub, pool)) throw invalid(`IP range ${text} is not inside subnet ${formatCidr(pool)}`);
    const usable = usableRange(pool);
    const start = cidrFirst(sub) > usable.first ? cidrFirst(sub) : usable.first;
    const end = cidrLast(sub) < usable.last ? cidrLast(sub) : usable.last;
    if (start > end) throw invalid(`IP range ${text} holds no usable address of subnet ${formatCidr(pool)}`);
    return {
      subPool: formatCidr(sub),
      rangeStart: formatIp({ family: pool.family, value: start }),
      rangeEnd: formatIp({ family: pool.family, value: end }),
    };
  }

  /** Parses "ip" or "ip/<pool prefix>" and checks it is a usable host address of the pool. */
  private static parseAddressInPool(text: string, record: PoolRecord): IpAddr {
    const pool = IpamDriver.poolCidr(record);
    let addr: IpAddr | undefined;
    if (text.includes('/')) {
      const parsed = parseCidr(text);
      if (parsed && parsed.cidr.prefix !== pool.prefix) {
        throw invalid(`address ${text} has prefix length ${parsed.cidr.prefix}, but pool ${record.pool} has ${pool.prefix}`);
      }
      addr = parsed?.address;
    } else {
      addr = parseIp(text);
    }
    if (!addr) throw invalid(`invalid IP address "${text.slice(0, 64)}"`);
    if (!cidrContains(pool, addr)) throw invalid(`address ${formatIp(addr)} is outside pool ${record.pool}`);
    const usable = usableRange(pool);
    if (addr.value < usable.first || addr.value > usable.last) {
      throw invalid(`address ${formatIp(addr)} is the network or broadcast address of pool ${record.pool}`);
    }
    return addr;
  }

  private static poolCidr(record: PoolRecord): Cidr {
    const parsed = parseCidr(record.pool);
    if (!parsed) throw new PluginError('STATE_FAILED', `pool record ${record.poolId} holds an invalid pool "${record.pool}"`);
    return parsed.cidr;
  }

  /** Where host-local allocates by default: the --ip-range if any, else the whole pool. */
  private static allocationRange(record: PoolRecord): { first: bigint; last: bigint } {
    const start = record.rangeStart ? parseIp(record.rangeStart) : undefined;
    const end = record.rangeEnd ? parseIp(record.rangeEnd) : undefined;
    if (start && end) return { first: start.value, last: end.value };
    return usableRange(IpamDriver.poolCidr(record));
  }

  private static inRange(record: PoolRecord, addr: IpAddr): boolean {
    const { first, last } = IpamDriver.allocationRange(record);
    return addr.value >= first && addr.value <= last;
  }
}

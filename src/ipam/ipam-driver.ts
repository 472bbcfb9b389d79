/**
 * Docker's remote IpamDriver: pools (PoolRecord, with the gateway Docker
 * reserves) are kept here; the addresses inside a pool are an
 * AddressAllocator's business (host-local by default, see
 * host-local-allocator.ts). The reconciler's queries are answered here too.
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
import { PluginError, invalid, wrapError } from '../errors.js';
import type { Logger } from '../log.js';
import { newPoolId } from '../names.js';
import type { Store } from '../state/store.js';
import { cidrsOverlap, formatCidr, formatIp, parseCidr, type Cidr, type IpAddr, type IpFamily, type SupernetSpec } from '../util/ip-math.js';
import { KeyedLock } from '../util/keyed-lock.js';
import type { AddressAllocator, AddressHolder } from './address-allocator.js';
import type { ConfSubnet } from '../cni/ranges.js';
import { IPAM_CONFLIST_OPTION, conflistPool } from './conflist-pool.js';
import { PoolCatalog } from './pool-catalog.js';
import { HostLocalAllocator } from './host-local-allocator.js';
import {
  allocationRange,
  assertPoolId,
  parseAddressInPool,
  firstFreePool,
  parseDefaultPools,
  parsePoolCidr,
  parseSubPool,
  poolCidr,
  type PoolRecord,
} from './pool-record.js';

export { ALLOCATION_ID_PREFIX } from '../names.js';

export interface IpamDriverOptions {
  pools: Store<PoolRecord>;
  /** Where endpoint addresses are kept; by default in host-local's files under `hostLocalDataDir`. */
  allocator?: AddressAllocator;
  /** host-local's dataDir; each pool gets `<dir>/<PoolID>/`. */
  hostLocalDataDir?: string;
  /** "<supernet cidr>/<subnet prefix>", e.g. "10.231.0.0/16/24". */
  defaultPoolsV4: string[];
  defaultPoolsV6: string[];
  /** Routed CIDRs of the host that automatic pools must avoid; defaults to none. */
  hostRoutes?: () => Promise<string[]>;
  /** The subnets of a conflist in the conf dir, for `--ipam-opt cni.network=<name>`. */
  conflistSubnets?: (name: string) => Promise<ConfSubnet[]>;
  logger: Logger;
}

export const ADDRESS_SPACES = { local: 'CniLocal', global: 'CniGlobal' } as const;


const ALL_POOLS_LOCK = 'ipam-pools';
const poolLockKey = (poolId: string): string => `ipam-pool:${poolId}`;

const conflict = (message: string): PluginError => new PluginError('CONFLICT', message);

export class IpamDriver implements IpamDriverApi {
  private readonly pools: PoolCatalog;
  private readonly allocator: AddressAllocator;
  private readonly defaults: Record<IpFamily, SupernetSpec[]>;
  private readonly hostRoutes: () => Promise<string[]>;
  private readonly conflistSubnets: (name: string) => Promise<ConfSubnet[]>;
  private readonly logger: Logger;
  private readonly lock = new KeyedLock();

  constructor(options: IpamDriverOptions) {
    this.logger = options.logger.child({ component: 'ipam' });
    this.pools = new PoolCatalog(options.pools, this.logger);
    this.allocator = options.allocator ?? IpamDriver.hostLocal(options, this.logger);
    this.defaults = {
      4: parseDefaultPools(options.defaultPoolsV4, 4),
      6: parseDefaultPools(options.defaultPoolsV6, 6),
    };
    this.hostRoutes = options.hostRoutes ?? (async () => []);
    this.conflistSubnets = options.conflistSubnets ?? (async (name) => {
      throw invalid(`--ipam-opt ${IPAM_CONFLIST_OPTION}=${name}: this IPAM driver has no conf dir`);
    });
  }

  private static hostLocal(options: IpamDriverOptions, logger: Logger): AddressAllocator {
    if (!options.hostLocalDataDir) throw invalid('the IPAM driver needs an allocator or a host-local data dir');
    return new HostLocalAllocator(options.hostLocalDataDir, logger);
  }

  async init(): Promise<void> {
    await this.pools.ensureDir();
    await this.allocator.init();
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
      const requested = req.Pool ? parsePoolCidr(req.Pool, family) : undefined;
      const confName = req.Options?.[IPAM_CONFLIST_OPTION];
      const fromConf = confName ? conflistPool(confName, family, requested, await this.conflistSubnets(confName)) : undefined;
      const explicit = fromConf?.pool ?? requested;
      if (req.SubPool && !explicit) throw invalid(`an IP range (${req.SubPool}) needs an explicit subnet`);
      const confRange = fromConf?.rangeStart || fromConf?.rangeEnd
        ? { ...(fromConf.rangeStart ? { rangeStart: fromConf.rangeStart } : {}), ...(fromConf.rangeEnd ? { rangeEnd: fromConf.rangeEnd } : {}) }
        : undefined;
      const range = explicit && req.SubPool ? parseSubPool(req.SubPool, explicit) : confRange;

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
        await this.pools.put(record);
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
      assertPoolId(poolId);
      await this.lock.withLock(ALL_POOLS_LOCK, () =>
        this.lock.withLock(poolLockKey(poolId), async () => {
          // Allocations go first: a record without allocations is harmless,
          // allocations without a record would be orphans.
          const leftovers = await this.allocator.removePool(poolId);
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
      const record = await this.pools.getOrThrow(req.PoolID);
      const requested = req.Address ? parseAddressInPool(req.Address, record) : undefined;
      return isGateway ? await this.reserveGateway(record.poolId, requested) : await this.allocate(record, requested);
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    const context = `ReleaseAddress pool=${req.PoolID} address=${req.Address}`;
    try {
      const record = await this.pools.getOrThrow(req.PoolID);
      const addr = parseAddressInPool(req.Address, record);
      const ip = formatIp(addr);
      if (record.gateway === ip) {
        await this.lock.withLock(poolLockKey(record.poolId), async () => {
          const current = await this.pools.getOrThrow(record.poolId);
          if (current.gateway !== ip) return;
          const { gateway: _released, ...rest } = current;
          await this.pools.put(rest);
          this.logger.info({ poolId: record.poolId, gateway: ip }, 'gateway released');
        });
        return;
      }
      if (!(await this.allocator.release(record, addr))) {
        // Docker only logs ReleaseAddress errors, and may repeat a release: nothing held is success.
        this.logger.debug({ poolId: record.poolId, ip }, 'address not allocated; nothing to release');
      }
    } catch (err) {
      throw wrapError(err, context);
    }
  }

  // ---- for the reconciler / GC ------------------------------------------------------

  /** All readable pool records (corrupt ones are logged and skipped). */
  listPools(): Promise<PoolRecord[]> {
    return this.pools.list();
  }

  /** The pool's record, or undefined if there is no such pool. */
  getPool(poolId: string): Promise<PoolRecord | undefined> {
    return this.pools.get(poolId);
  }

  /** host-local's allocations in a pool: canonical IP -> holder. The gateway is not among them. */
  async listReservations(poolId: string): Promise<Map<string, AddressHolder>> {
    assertPoolId(poolId);
    return this.allocator.allocations(poolId);
  }

  // ---- internals ----------------------------------------------------------------------

  /** The allocator refuses a `--ip` that is the gateway or taken, naming its holder. */
  private async allocate(record: PoolRecord, requested: IpAddr | undefined): Promise<RequestAddressResponse> {
    const allocated = await this.allocator.allocate(record, requested);
    return { Address: `${formatIp(allocated)}/${poolCidr(record).prefix}`, Data: {} };
  }

  private async reserveGateway(poolId: string, requested: IpAddr | undefined): Promise<RequestAddressResponse> {
    return this.lock.withLock(poolLockKey(poolId), async () => {
      const record = await this.pools.getOrThrow(poolId);
      const pool = poolCidr(record);
      let gateway: IpAddr;
      if (requested) {
        const ip = formatIp(requested);
        if (record.gateway === ip) return { Address: `${ip}/${pool.prefix}`, Data: {} };
        if (record.gateway) throw conflict(`pool ${record.pool} already has gateway ${record.gateway}`);
        if (await this.allocator.isAllocated(poolId, requested)) {
          throw conflict(`gateway address ${ip} is already allocated to an endpoint in pool ${record.pool}`);
        }
        gateway = requested;
      } else {
        if (record.gateway) throw conflict(`pool ${record.pool} already has gateway ${record.gateway}`);
        gateway = await this.firstFreeAddress(record);
      }
      const ip = formatIp(gateway);
      await this.pools.put({ ...record, gateway: ip });
      this.logger.info({ poolId, gateway: ip }, 'gateway reserved');
      return { Address: `${ip}/${pool.prefix}`, Data: {} };
    });
  }

  /** The first address of the allocation range that host-local has not handed out. */
  private async firstFreeAddress(record: PoolRecord): Promise<IpAddr> {
    const { first, last } = allocationRange(record);
    const family = record.family;
    const taken = new Set((await this.allocator.allocations(record.poolId)).keys());
    // Every taken address is one file, so this loop ends after at most taken.size + 1 steps.
    for (let value = first; value <= last; value++) {
      const addr = { family, value };
      if (!taken.has(formatIp(addr)) && !(await this.allocator.isAllocated(record.poolId, addr))) return addr;
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
    return firstFreePool(specs, family, [...routes, ...existing.map((p) => p.pool)]);
  }

  private async freshPoolId(): Promise<string> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const poolId = newPoolId();
      const leftovers = await this.allocator.allocations(poolId);
      if (!(await this.pools.exists(poolId)) && leftovers.size === 0) return poolId;
    }
    throw new PluginError('INTERNAL', 'could not generate an unused PoolID');
  }
}

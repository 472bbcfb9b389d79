/**
 * What docker-cni persists per IPAM pool (one record per pool, kind 'pools').
 * Endpoint allocations are NOT stored here: host-local's own files are the
 * truth for those. Only the gateway, which host-local never hands out, lives here.
 */
import { z } from 'zod';
import { PluginError, invalid } from '../errors.js';
import { versionedCodec } from '../state/record-codec.js';
import { isPoolId, POOL_ID_PATTERN, POOL_ID_SHAPE } from '../names.js';
import {
  cidrContains,
  cidrFirst,
  cidrLast,
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

export const PoolRecordSchema = z.object({
  version: z.literal(1),
  poolId: z.string().regex(POOL_ID_PATTERN),
  addressSpace: z.string(),
  family: z.union([z.literal(4), z.literal(6)]),
  /** Normalised CIDR of the pool (network address / prefix). */
  pool: z.string(),
  /** Normalised CIDR of --ip-range, if given. */
  subPool: z.string().optional(),
  /** host-local's rangeStart/rangeEnd derived from subPool. */
  rangeStart: z.string().optional(),
  rangeEnd: z.string().optional(),
  /** Gateway address (bare IP) reserved through RequestAddress; host-local is told to skip it. */
  gateway: z.string().optional(),
  /** True if the pool was picked from the default supernets. */
  automatic: z.boolean(),
  /** --ipam-opt values, as Docker sent them. */
  options: z.record(z.string(), z.string()),
  createdAt: z.string(),
});

export type PoolRecord = z.infer<typeof PoolRecordSchema>;

/** Pool records carried `version: 1` from the start; see state/record-codec.ts for the upgrade path. */
export const POOL_CODEC = versionedCodec<PoolRecord>({ current: 1, schema: PoolRecordSchema, versionInRecord: true });

// ---- parsing what Docker and the settings say about pools ----------------------

/** Parses the configured default supernets of one family ("<supernet cidr>/<subnet prefix>"). */
export function parseDefaultPools(specs: string[], family: IpFamily): SupernetSpec[] {
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

export function assertPoolId(poolId: string): void {
  if (!isPoolId(poolId)) {
    throw invalid(`invalid PoolID "${poolId.slice(0, 80)}": this driver's pool IDs look like ${POOL_ID_SHAPE}`);
  }
}

export function parsePoolCidr(text: string, family: IpFamily): Cidr {
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

export function parseSubPool(text: string, pool: Cidr): Pick<PoolRecord, 'subPool' | 'rangeStart' | 'rangeEnd'> {
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
export function parseAddressInPool(text: string, record: PoolRecord): IpAddr {
  const pool = poolCidr(record);
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

export function poolCidr(record: PoolRecord): Cidr {
  const parsed = parseCidr(record.pool);
  if (!parsed) throw new PluginError('STATE_FAILED', `pool record ${record.poolId} holds an invalid pool "${record.pool}"`);
  return parsed.cidr;
}

/** Where host-local allocates by default: the --ip-range if any, else the whole pool. */
export function allocationRange(record: PoolRecord): { first: bigint; last: bigint } {
  const start = record.rangeStart ? parseIp(record.rangeStart) : undefined;
  const end = record.rangeEnd ? parseIp(record.rangeEnd) : undefined;
  if (start && end) return { first: start.value, last: end.value };
  return usableRange(poolCidr(record));
}

export function inAllocationRange(record: PoolRecord, addr: IpAddr): boolean {
  const { first, last } = allocationRange(record);
  return addr.value >= first && addr.value <= last;
}

/** The first subnet of the default supernets that overlaps none of `taken` (pools and host routes). */
export function firstFreePool(specs: readonly SupernetSpec[], family: IpFamily, taken: readonly string[]): Cidr {
  const blockers: Cidr[] = [];
  for (const text of taken) {
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

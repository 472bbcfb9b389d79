/**
 * Pure block arithmetic: a pool is cut into equal blocks of `blockPrefix`;
 * a host owns whole blocks and picks addresses inside them on its own.
 */
import { cidrContains, familyBits, parseCidr, type Cidr, type IpAddr } from '../util/ip-math.js';
import { ClusterError } from './errors.js';

/** Upper bound on blocks per pool, so claims and listings stay small. */
export const MAX_BLOCKS_PER_POOL = 4096;

export interface BlockLayout {
  pool: Cidr;
  blockPrefix: number;
}

export function checkLayout(pool: Cidr, blockPrefix: number): BlockLayout {
  const bits = familyBits(pool.family);
  if (!Number.isInteger(blockPrefix) || blockPrefix < pool.prefix || blockPrefix > bits - 2) {
    throw new ClusterError('BAD_CONFIG', `block prefix /${blockPrefix} must be between /${pool.prefix} and /${bits - 2}`);
  }
  if (blockPrefix - pool.prefix > Math.log2(MAX_BLOCKS_PER_POOL)) {
    throw new ClusterError('BAD_CONFIG', `block prefix /${blockPrefix} cuts the pool into more than ${MAX_BLOCKS_PER_POOL} blocks`);
  }
  return { pool, blockPrefix };
}

export const blockCount = (layout: BlockLayout): number => 2 ** (layout.blockPrefix - layout.pool.prefix);

function blockSize(layout: BlockLayout): bigint {
  return 1n << BigInt(familyBits(layout.pool.family) - layout.blockPrefix);
}

export function blockAt(layout: BlockLayout, index: number): Cidr {
  if (!Number.isInteger(index) || index < 0 || index >= blockCount(layout)) {
    throw new ClusterError('BAD_CONFIG', `block index ${index} is outside the pool`);
  }
  return { family: layout.pool.family, network: layout.pool.network + BigInt(index) * blockSize(layout), prefix: layout.blockPrefix };
}

/** The index of the block holding `addr`, or undefined when the address is outside the pool. */
export function blockIndexOf(layout: BlockLayout, addr: IpAddr): number | undefined {
  if (!cidrContains(layout.pool, addr)) return undefined;
  return Number((addr.value - layout.pool.network) / blockSize(layout));
}

/**
 * Addresses of the pool no host may hand out: the pool's network address, its
 * IPv4 broadcast, and the gateway. Block boundaries inside the pool are
 * ordinary addresses: containers see one flat pool prefix.
 */
export function reservedValues(layout: BlockLayout, gateway: IpAddr | undefined): Set<bigint> {
  const reserved = new Set<bigint>([layout.pool.network]);
  if (layout.pool.family === 4) reserved.add(layout.pool.network + (1n << BigInt(32 - layout.pool.prefix)) - 1n);
  if (gateway) reserved.add(gateway.value);
  return reserved;
}

/** The lowest address of `block` that is neither used nor reserved. */
export function firstFreeInBlock(block: Cidr, used: ReadonlySet<bigint>, reserved: ReadonlySet<bigint>): bigint | undefined {
  const size = 1n << BigInt(familyBits(block.family) - block.prefix);
  for (let value = block.network; value < block.network + size; value++) {
    if (!used.has(value) && !reserved.has(value)) return value;
  }
  return undefined;
}

/**
 * The next block to try claiming: the first unclaimed index at or after
 * `start`, wrapping around. Hosts start at different offsets (a hash of their
 * id) so that parallel claims rarely collide on the same key.
 */
export function nextUnclaimedBlock(count: number, claimed: ReadonlySet<number>, start: number): number | undefined {
  for (let step = 0; step < count; step++) {
    const index = (start + step) % count;
    if (!claimed.has(index)) return index;
  }
  return undefined;
}

/** A stable start offset for a host within `count` blocks. */
export function startOffset(hostId: string, count: number): number {
  let hash = 2166136261;
  for (const ch of hostId) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
  return hash % count;
}

/** Parses a pool CIDR that must be given by its network address. */
export function parsePoolCidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new ClusterError('BAD_CONFIG', `"${text}" is not a CIDR`);
  if (parsed.address.value !== parsed.cidr.network) {
    throw new ClusterError('BAD_CONFIG', `"${text}" is not the network address of its prefix`);
  }
  return parsed.cidr;
}

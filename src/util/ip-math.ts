/**
 * Strict IPv4/IPv6 address and CIDR arithmetic on BigInt values.
 *
 * Parsing is deliberately strict (no leading zeros in IPv4, no zone IDs, no
 * whitespace) because parsed addresses become file names in host-local's data
 * directory. Formatting matches Go's net.IP.String(), which is what host-local
 * uses to name its per-address files, so a formatted address is exactly the
 * file name host-local wrote.
 */
import { Address6 } from 'ip-address';

export type IpFamily = 4 | 6;

export interface IpAddr {
  family: IpFamily;
  value: bigint;
}

/** A CIDR block, always normalised to its network address. */
export interface Cidr {
  family: IpFamily;
  network: bigint;
  prefix: number;
}

export const familyBits = (family: IpFamily): number => (family === 4 ? 32 : 128);

const IPV4_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4_PATTERN = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
// Only hex digits, colons and dots (for an embedded IPv4 tail): rules out zone IDs, slashes and spaces.
const IPV6_CHARSET = /^[0-9A-Fa-f:.]{2,45}$/;
const PREFIX_PATTERN = /^(?:0|[1-9][0-9]{0,2})$/;

/** Parses a bare address (no prefix); undefined if it is not a strictly valid IPv4/IPv6 address. */
export function parseIp(text: string): IpAddr | undefined {
  if (IPV4_PATTERN.test(text)) {
    const value = text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
    return { family: 4, value };
  }
  if (!text.includes(':') || !IPV6_CHARSET.test(text) || !Address6.isValid(text)) return undefined;
  try {
    return { family: 6, value: new Address6(text).bigInt() };
  } catch {
    return undefined;
  }
}

/** Formats like Go's net.IP.String(): dotted quad, or RFC 5952 compressed lowercase IPv6. */
export function formatIp(addr: IpAddr): string {
  if (addr.family === 4) return formatIpv4(addr.value);
  // Go prints IPv4-mapped IPv6 addresses in dotted form.
  if (addr.value >> 32n === 0xffffn) return formatIpv4(addr.value & 0xffffffffn);
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr.value >> BigInt(i * 16)) & 0xffffn));
  // The longest run of two or more zero groups is compressed; the first one wins a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number): string => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const head = groups.slice(0, bestStart).map(hex).join(':');
  const tail = groups.slice(bestStart + bestLength).map(hex).join(':');
  return `${head}::${tail}`;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** A cheap shape check ("addr/len" of address characters) for text about to enter a rule or a reply. */
export const looksLikeCidr = (text: string): boolean => /^[0-9A-Fa-f.:]{2,45}\/\d{1,3}$/.test(text);

export interface ParsedCidr {
  /** The address as written (may have host bits set). */
  address: IpAddr;
  /** The block it belongs to. */
  cidr: Cidr;
}

/** Parses "addr/len" strictly; undefined if malformed. The block is normalised to its network address. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || slash !== text.lastIndexOf('/')) return undefined;
  const address = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!address || !PREFIX_PATTERN.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > familyBits(address.family)) return undefined;
  return { address, cidr: { family: address.family, network: address.value & prefixMask(address.family, prefix), prefix } };
}

export function prefixMask(family: IpFamily, prefix: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

export const cidrSize = (cidr: Cidr): bigint => 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
export const cidrFirst = (cidr: Cidr): bigint => cidr.network;
export const cidrLast = (cidr: Cidr): bigint => cidr.network + cidrSize(cidr) - 1n;

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, addr: IpAddr): boolean {
  return cidr.family === addr.family && addr.value >= cidrFirst(cidr) && addr.value <= cidrLast(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && cidrFirst(a) <= cidrLast(b) && cidrFirst(b) <= cidrLast(a);
}

/** True if `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.prefix >= outer.prefix && cidrContains(outer, { family: inner.family, value: inner.network });
}

/**
 * The range of addresses a host may use in `cidr`, the way host-local sees it:
 * never the network address; for IPv4 never the broadcast address either.
 */
export function usableRange(cidr: Cidr): { first: bigint; last: bigint } {
  return { first: cidrFirst(cidr) + 1n, last: cidr.family === 4 ? cidrLast(cidr) - 1n : cidrLast(cidr) };
}

/** A source of automatic pools: subnets of length `subnetPrefix` carved from `supernet`. */
export interface SupernetSpec {
  supernet: Cidr;
  subnetPrefix: number;
}

/** Parses "<supernet cidr>/<subnet prefix>", e.g. "10.231.0.0/16/24"; throws a descriptive Error. */
export function parseSupernetSpec(text: string): SupernetSpec {
  const slash = text.lastIndexOf('/');
  const parsed = slash > 0 ? parseCidr(text.slice(0, slash)) : undefined;
  const subnetText = text.slice(slash + 1);
  if (!parsed || !PREFIX_PATTERN.test(subnetText)) {
    throw new Error(`default pool "${text}" is not of the form <cidr>/<subnet prefix>, e.g. 10.231.0.0/16/24`);
  }
  const subnetPrefix = Number(subnetText);
  if (parsed.address.value !== parsed.cidr.network) {
    throw new Error(`default pool "${text}": ${formatIp(parsed.address)} is not the network address of ${formatCidr(parsed.cidr)}`);
  }
  if (subnetPrefix < parsed.cidr.prefix || subnetPrefix > familyBits(parsed.cidr.family) - 2) {
    throw new Error(
      `default pool "${text}": subnet prefix must be between ${parsed.cidr.prefix} and ${familyBits(parsed.cidr.family) - 2}`,
    );
  }
  return { supernet: parsed.cidr, subnetPrefix };
}

/**
 * The lowest subnet of the spec that overlaps none of `blockers`, or undefined.
 * Skips past each blocker instead of stepping one subnet at a time, so huge
 * IPv6 supernets stay cheap.
 */
export function firstFreeSubnet(spec: SupernetSpec, blockers: readonly Cidr[]): Cidr | undefined {
  const family = spec.supernet.family;
  const relevant = blockers.filter((b) => b.family === family);
  const size = 1n << BigInt(familyBits(family) - spec.subnetPrefix);
  const end = cidrLast(spec.supernet);
  let candidate = spec.supernet.network;
  while (candidate + size - 1n <= end) {
    const subnet: Cidr = { family, network: candidate, prefix: spec.subnetPrefix };
    const blocker = relevant.find((b) => cidrsOverlap(b, subnet));
    if (!blocker) return subnet;
    const pastBlocker = ((cidrLast(blocker) + size) / size) * size;
    candidate = pastBlocker > candidate ? pastBlocker : candidate + size;
  }
  return undefined;
}

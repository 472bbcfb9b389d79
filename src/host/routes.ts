/**
 * The host's routed prefixes, read from procfs rather than by running `ip`,
 * so automatic pool selection costs no process spawn.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { formatCidr, parseCidr } from '../util/ip-math.js';

/**
 * /proc/net/route prints each IPv4 address as the hex of the raw network-order
 * 32-bit word, so on a little-endian host the bytes appear reversed.
 */
function procHexToIpv4(hex: string, littleEndian: boolean): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  if (littleEndian) bytes.reverse();
  return bytes.join('.');
}

function maskToPrefix(mask: string): number | undefined {
  let bits = 0;
  let seenZero = false;
  for (const octet of mask.split('.').map(Number)) {
    for (let bit = 7; bit >= 0; bit--) {
      if (octet & (1 << bit)) {
        if (seenZero) return undefined;
        bits++;
      } else {
        seenZero = true;
      }
    }
  }
  return bits;
}

/**
 * CIDRs of the IPv4 routes in a /proc/net/route dump. Default routes are
 * skipped: every subnet "overlaps" them and Docker ignores them too.
 */
export function parseIpv4RouteTable(text: string, littleEndian = endianness() === 'LE'): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const destination = procHexToIpv4(fields[1] ?? '', littleEndian);
    const mask = procHexToIpv4(fields[7] ?? '', littleEndian);
    if (!destination || !mask) continue;
    const prefix = maskToPrefix(mask);
    if (prefix === undefined || prefix === 0) continue;
    const parsed = parseCidr(`${destination}/${prefix}`);
    if (parsed) out.push(formatCidr(parsed.cidr));
  }
  return out;
}

/** CIDRs of the IPv6 routes in a /proc/net/ipv6_route dump (default routes skipped). */
export function parseIpv6RouteTable(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [destHex, prefixHex] = fields;
    if (!destHex || !prefixHex || !/^[0-9a-fA-F]{32}$/.test(destHex) || !/^[0-9a-fA-F]{2}$/.test(prefixHex)) continue;
    const prefix = parseInt(prefixHex, 16);
    if (prefix === 0 || prefix > 128) continue;
    const groups = destHex.match(/.{4}/g) ?? [];
    const parsed = parseCidr(`${groups.join(':')}/${prefix}`);
    if (parsed) out.push(formatCidr(parsed.cidr));
  }
  return out;
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // A host without IPv6 has no ipv6_route at all.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** All non-default routes of the current network namespace, IPv4 and IPv6, as normalised CIDRs. */
export async function readHostRoutes(procNetDir = '/proc/net'): Promise<string[]> {
  const [v4, v6] = await Promise.all([readIfExists(join(procNetDir, 'route')), readIfExists(join(procNetDir, 'ipv6_route'))]);
  return [...new Set([...parseIpv4RouteTable(v4), ...parseIpv6RouteTable(v6)])];
}

/**
 * IPv4 subnet arithmetic for tests, and picking subnets that overlap no host
 * route and no Docker network (network safety: tests only use subnets that
 * are nobody else's).
 */
import Docker from 'dockerode';
import { execa } from 'execa';
import { DOCKER_SOCKET } from './prereq.js';

function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 "${ip}"`);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [ip, len] = cidr.split('/');
  const prefix = Number(len ?? '32');
  return { base: (ipv4ToInt(ip ?? '') & maskOf(prefix)) >>> 0, prefix };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  return ((ipv4ToInt(ip.split('/')[0] ?? '') & maskOf(prefix)) >>> 0) === base;
}

export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  const mask = maskOf(Math.min(pa.prefix, pb.prefix));
  return ((pa.base & mask) >>> 0) === ((pb.base & mask) >>> 0);
}

/** The destination of each IPv4 route in every table, except routes on the given devices. */
export async function hostRoutesV4(exceptDevices: readonly string[] = []): Promise<string[]> {
  return String((await execa('ip', ['-o', '-4', 'route', 'show', 'table', 'all'])).stdout)
    .split('\n')
    .filter((line) => !exceptDevices.some((dev) => line.includes(`dev ${dev} `)))
    .map((line) => line.split(/\s+/).find((word) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(word)))
    .filter((cidr): cidr is string => Boolean(cidr));
}

/** Every IPv4 CIDR in use: host routes and Docker networks. */
export async function usedIpv4Cidrs(): Promise<string[]> {
  return [...(await hostRoutesV4()), ...(await dockerSubnetsV4())];
}

/** IPv4 subnets of every Docker network, in one API call (networks come and go while other tests run). */
export async function dockerSubnetsV4(exceptIds: ReadonlySet<string> = new Set()): Promise<string[]> {
  const networks = await new Docker({ socketPath: DOCKER_SOCKET }).listNetworks();
  return networks
    .filter((network) => !exceptIds.has(network.Id))
    .flatMap((network) => network.IPAM?.Config ?? [])
    .map((config) => config.Subnet ?? '')
    .filter((subnet) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
}

const handedOutSubnets = new Set<string>();

/** A random 10.231.X.0/24 that no route, Docker network or earlier call of this process uses. */
export async function freeSubnet(): Promise<string> {
  const used = await usedIpv4Cidrs();
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = `10.231.${10 + Math.floor(Math.random() * 240)}.0/24`;
    if (handedOutSubnets.has(candidate)) continue;
    if (used.some((cidr) => cidrsOverlap(cidr, candidate))) continue;
    handedOutSubnets.add(candidate);
    return candidate;
  }
  throw new Error('no free 10.231.X.0/24 subnet');
}

/** The n-th host address of a /24 such as 10.231.7.0/24 -> 10.231.7.<n>. */
export function hostInSubnet(subnet: string, n: number): string {
  return `${subnet.split('.').slice(0, 3).join('.')}.${n}`;
}

/** A subnet as it appears in rules: the CIDR itself, or for /24 and longer its first three octets plus a dot. */
export function subnetToken(cidr: string): string {
  const [address, length] = cidr.split('/');
  if (address?.includes('.') && Number(length) >= 24) return `${address.split('.').slice(0, 3).join('.')}.`;
  return cidr;
}

/**
 * Readers for the leak snapshot: each returns one kind of kernel or disk
 * state as sorted, normalised text lines (counters, timers, indexes and
 * reference counts removed, so that only what a test made or removed differs).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { DOCKER_SOCKET } from './prereq.js';

export async function run(cmd: string, args: readonly string[]): Promise<string> {
  const result = await execa(cmd, args, { reject: false, timeout: 30_000 });
  if (result.exitCode !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
  }
  return String(result.stdout);
}

const nonEmptyLines = (text: string): string[] =>
  text
    .split('\n')
    .map((line) => line.trim().replace(/\s+/g, ' '))
    .filter(Boolean);

/** `name` or `name master <bridge>` per host link. */
export function parseLinks(output: string): string[] {
  const links: string[] = [];
  for (const line of output.split('\n')) {
    const match = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s.*?(?:\smaster\s(\S+))?\s/.exec(line);
    if (!match) continue;
    links.push(match[2] ? `${match[1]} master ${match[2]}` : `${match[1]}`);
  }
  return links.sort();
}

export const linkName = (line: string): string => line.split(' ')[0] ?? '';

export function parseNetns(output: string): string[] {
  return nonEmptyLines(output)
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean)
    .sort();
}

export const IPTABLES_TABLES = ['filter', 'nat', 'mangle', 'raw'] as const;

/** `table: rule-or-chain` lines; chain declarations lose their packet/byte counters. */
export function parseRuleset(table: string, output: string): string[] {
  const lines: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('*') || line === 'COMMIT') continue;
    lines.push(`${table}: ${line.replace(/\s*\[\d+:\d+\]$/, '')}`);
  }
  return lines;
}

/** All four tables of one family. */
export async function ruleset(binary: 'iptables-save' | 'ip6tables-save'): Promise<string[]> {
  const tables = await Promise.all(IPTABLES_TABLES.map(async (table) => parseRuleset(table, await run(binary, ['-t', table]))));
  return tables.flat().sort();
}

/** Routes of every table, without what ages or flaps (IPv6 expiry timers, linkdown). */
export async function routes(family: '-4' | '-6'): Promise<string[]> {
  return nonEmptyLines(await run('ip', [family, 'route', 'show', 'table', 'all']))
    .map((line) => `${family === '-4' ? 'v4' : 'v6'}: ${line.replace(/ expires \d+sec/, '').replace(/ linkdown/, '')}`)
    .sort();
}

/** Policy routing rules. */
export async function ipRules(family: '-4' | '-6'): Promise<string[]> {
  return nonEmptyLines(await run('ip', [family, 'rule', 'show']))
    .map((line) => `${family === '-4' ? 'v4' : 'v6'}: ${line}`)
    .sort();
}

/** The device a route, qdisc or filter line names (`dev X`). */
export const deviceOf = (line: string): string | undefined => /\bdev (\S+)/.exec(line)?.[1];

/** Every qdisc, and the filters (root and ingress) of the given links, each line naming its device. */
export async function trafficControl(links: readonly string[]): Promise<string[]> {
  const qdiscs = nonEmptyLines(await run('tc', ['qdisc', 'show'])).map((line) => `qdisc: ${line.replace(/ refcnt \d+/, '')}`);
  const filters = await Promise.all(
    links.flatMap((dev) =>
      [[], ['ingress']].map(async (where) => {
        const r = await execa('tc', ['filter', 'show', 'dev', dev, ...where], { reject: false, timeout: 30_000 });
        // A link removed since it was listed has no filters to show.
        if (r.exitCode !== 0) return [];
        return nonEmptyLines(String(r.stdout)).map((line) => `filter: dev ${dev}${where.length ? ' ingress' : ''}: ${line}`);
      }),
    ),
  );
  return [...qdiscs, ...filters.flat()].sort();
}

/**
 * Per-link settings a CNI chain (bridge, tuning, ptp, macvlan, firewall...) or
 * the plugin may change: forwarding, proxy ARP/NDP, ARP behaviour, reverse
 * path filtering, router advertisements, IPv6 on/off.
 */
const LINK_SYSCTLS = {
  ipv4: ['forwarding', 'proxy_arp', 'proxy_arp_pvlan', 'arp_notify', 'arp_ignore', 'arp_announce', 'arp_filter', 'arp_accept', 'rp_filter', 'accept_local', 'route_localnet', 'send_redirects', 'accept_redirects', 'promote_secondaries'],
  ipv6: ['forwarding', 'accept_ra', 'accept_dad', 'autoconf', 'disable_ipv6', 'proxy_ndp', 'addr_gen_mode', 'keep_addr_on_down'],
} as const;

/** Host-wide settings the bridge plugin and dockerd flip. */
const GLOBAL_SYSCTLS = ['ipv4/ip_forward', 'bridge/bridge-nf-call-iptables', 'bridge/bridge-nf-call-ip6tables', 'bridge/bridge-nf-call-arptables'];

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(join('/proc/sys/net', path), 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return undefined; // not on this kernel, or the link went away
  }
}

/** `ipv4/conf/<link>/<key>=<value>` for the given links plus `all` and `default`, and the host-wide ones. */
export function sysctls(links: readonly string[]): string[] {
  const lines: string[] = [];
  for (const link of ['all', 'default', ...links]) {
    for (const [family, keys] of Object.entries(LINK_SYSCTLS)) {
      for (const key of keys) {
        const value = readSysctl(`${family}/conf/${link}/${key}`);
        if (value !== undefined) lines.push(`${family}/conf/${link}/${key}=${value}`);
      }
    }
  }
  for (const path of GLOBAL_SYSCTLS) {
    const value = readSysctl(path);
    if (value !== undefined) lines.push(`${path}=${value}`);
  }
  return lines.sort();
}

/** The link a sysctl line belongs to (undefined for host-wide ones). */
export const sysctlLink = (line: string): string | undefined => /^ipv[46]\/conf\/([^/]+)\//.exec(line)?.[1];

/**
 * Destination-NATed UDP connection-tracking entries, from /proc/net/nf_conntrack
 * (the conntrack tool is not needed): `udp <family> src=… dst=… sport=… dport=…
 * to <address>:<port>`, the original direction and where NAT sent it. Only
 * these: a UDP entry's timer is renewed by every datagram, so a sender keeps
 * an entry that DNATs a published port to a removed container alive for as
 * long as it sends, and the port never reaches a new container. Entries
 * without NAT steer nothing, and ICMP or TCP entries of finished flows expire
 * by themselves within their protocol timeouts.
 */
export function conntrackUdp(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/nf_conntrack', 'utf8');
  } catch {
    return []; // conntrack not loaded, or no procfs view of it on this kernel
  }
  const entries: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[2] !== 'udp') continue;
    const pairs = fields.filter((f) => /^(src|dst|sport|dport)=/.test(f)).map((f) => f.split('=')[1] ?? '');
    const [src, dst, sport, dport, replySrc, , replySport] = pairs;
    if (replySrc === undefined || (replySrc === dst && replySport === dport)) continue;
    entries.push(`udp ${fields[0]} src=${src} dst=${dst} sport=${sport} dport=${dport} to ${replySrc}:${replySport}`);
  }
  return entries.sort();
}

export function listFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const entry of entries) {
    const full = join(dir, entry);
    let isDir = false;
    try {
      isDir = statSync(full).isDirectory();
    } catch {
      continue; // removed while listing
    }
    if (isDir) files.push(...listFiles(full));
    else files.push(full);
  }
  return files;
}

/** What dockerd itself made for its own bridge networks: their bridges and subnets. */
export interface DockerdOwned {
  bridges: string[];
  subnets: string[];
}

/**
 * The bridge networks of dockerd's own `bridge` driver, read from Docker.
 * docker_gwbridge is left out on purpose: Docker creates it only when a
 * network driver's Join reply lacks a gateway, so it is docker-cni's leak.
 * Without a reachable dockerd nothing is dockerd's and everything counts.
 */
export async function dockerdOwned(): Promise<DockerdOwned> {
  let networks: Docker.NetworkInspectInfo[];
  try {
    networks = await new Docker({ socketPath: DOCKER_SOCKET, timeout: 10_000 }).listNetworks({ filters: { driver: ['bridge'] } });
  } catch {
    return { bridges: [], subnets: [] };
  }
  const own = networks.filter((n) => n.Driver === 'bridge' && n.Name !== 'docker_gwbridge');
  return {
    bridges: own.map((n) => n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`).sort(),
    subnets: own.flatMap((n) => n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter(Boolean).sort(),
  };
}

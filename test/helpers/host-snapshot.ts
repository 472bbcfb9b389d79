/**
 * Host snapshots for leak checks: what a test leaves behind, or removes, is
 * found by comparing a snapshot taken before it with one taken after it.
 *
 * A snapshot holds everything docker-cni or a CNI chain can touch: links with
 * their masters, network namespaces, all four iptables tables of both
 * families, routes of every table and policy rules of both families, qdiscs
 * and filters of host links, per-link and host-wide sysctls, UDP conntrack
 * entries, and the files of the CNI result cache, host-local and docker-cni's
 * state. Both directions count: what appeared and what disappeared. What is
 * not the test's is set apart by ownership (snapshot-ownership.ts), not by
 * broad patterns.
 */
import {
  conntrackUdp,
  deviceOf,
  dockerdOwned,
  ipRules,
  linkName,
  listFiles,
  parseLinks,
  parseNetns,
  routes,
  ruleset,
  run,
  sysctlLink,
  sysctls,
  trafficControl,
  type DockerdOwned,
} from './snapshot-readers.js';
import { Ownership, forwardingFamily, isRouterAnycast, isSharedPlumbing } from './snapshot-ownership.js';
import { stagingNetnsOwner } from './processes.js';
import { cidrContains } from './subnets.js';

export interface HostSnapshot {
  /** `name` or `name master <bridge>` per host link. */
  links: string[];
  /** Names under /run/netns. */
  netns: string[];
  /** `table: rule-or-chain` lines of iptables-save, tables filter, nat, mangle and raw. */
  iptables: string[];
  /** The same from ip6tables-save. */
  ip6tables: string[];
  /** `v4: …` / `v6: …` routes of every table. */
  routes: string[];
  /** `v4: …` / `v6: …` policy rules. */
  ipRules: string[];
  /** `qdisc: …` and `filter: dev X[ ingress]: …` lines. */
  tc: string[];
  /** `ipv4/conf/<link>/<key>=<value>` and host-wide settings. */
  sysctls: string[];
  /** UDP conntrack entries (see conntrackUdp). */
  conntrack: string[];
  /** Files (recursively) under the watched directories. */
  files: string[];
  /** What dockerd had made for its own networks at the time. */
  dockerd: DockerdOwned;
}

type Section = Exclude<keyof HostSnapshot, 'dockerd'>;

export interface SnapshotOptions {
  /** Extra directories to list, e.g. the plugin's state and cache dirs. */
  dirs?: readonly string[];
}

/** Watched in every snapshot: where CNI (result cache, host-local) and docker-cni keep state by default. */
export const DEFAULT_WATCHED_DIRS = ['/var/lib/cni', '/var/lib/docker-cni'] as const;

/** Extra patterns to ignore per section; `rules` applies to iptables and ip6tables lines (after the `table: ` prefix too). */
export type LeakIgnore = Partial<Record<Exclude<Section, 'iptables' | 'ip6tables'> | 'rules', RegExp[]>>;

const DEFAULT_IGNORE: LeakIgnore = {
  // host-local bookkeeping that survives releases; reservations (files named by IP) still count.
  files: [/\/(lock|last_reserved_ip\.\d+)$/],
};

export async function takeSnapshot(options: SnapshotOptions = {}): Promise<HostSnapshot> {
  const dirs = [...new Set([...DEFAULT_WATCHED_DIRS, ...(options.dirs ?? [])])];
  const links = parseLinks(await run('ip', ['-o', 'link', 'show']));
  const names = links.map(linkName);
  const [netns, iptables, ip6tables, routes4, routes6, rules4, rules6, tc, dockerd] = await Promise.all([
    run('ip', ['netns', 'list']).then(parseNetns),
    ruleset('iptables-save'),
    ruleset('ip6tables-save'),
    routes('-4'),
    routes('-6'),
    ipRules('-4'),
    ipRules('-6'),
    trafficControl(names),
    dockerdOwned(),
  ]);
  return {
    links,
    netns,
    iptables,
    ip6tables,
    routes: [...routes4, ...routes6],
    ipRules: [...rules4, ...rules6],
    tc,
    sysctls: sysctls(names),
    conntrack: conntrackUdp(),
    files: [...new Set(dirs.flatMap(listFiles))].sort(),
    dockerd,
  };
}

/** Multiset difference: every line of `after` not matched by one in `before`. */
function added(before: readonly string[], after: readonly string[]): string[] {
  const remaining = new Map<string, number>();
  for (const line of before) remaining.set(line, (remaining.get(line) ?? 0) + 1);
  const extra: string[] = [];
  for (const line of after) {
    const count = remaining.get(line) ?? 0;
    if (count > 0) remaining.set(line, count - 1);
    else extra.push(line);
  }
  return extra;
}

/** IPv4 subnets routed (on a link, not via a gateway) in `before` but no longer in `after`: their addresses were removed. */
function removedSubnets(before: HostSnapshot, after: HostSnapshot): string[] {
  const onLink = (snapshot: HostSnapshot): string[] =>
    snapshot.routes.map((line) => /^v4: (\d+\.\d+\.\d+\.\d+\/\d+) dev /.exec(line)?.[1]).filter((cidr): cidr is string => Boolean(cidr));
  const still = new Set(onLink(after));
  return onLink(before).filter((cidr) => !still.has(cidr));
}

export interface DiffOptions {
  ignore?: LeakIgnore;
  /** Subnets the test's networks had; UDP conntrack entries naming their addresses count. */
  subnets?: readonly string[];
}

/**
 * Human-readable differences, one per line: `+ <section>: <line>` appeared,
 * `- <section>: <line>` disappeared. Empty means the host is as it was.
 */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot, options: DiffOptions = {}): string[] {
  const own = new Ownership([before.dockerd, after.dockerd], [...before.links, ...after.links]);
  const patterns = (section: keyof LeakIgnore): RegExp[] => [...(DEFAULT_IGNORE[section] ?? []), ...(options.ignore?.[section] ?? [])];
  const ignored = (section: keyof LeakIgnore, line: string): boolean => patterns(section).some((p) => p.test(line));
  const bothLinks = new Set(before.links.map(linkName).filter((name) => after.links.some((l) => linkName(l) === name)));
  const subnets = [...(options.subnets ?? []), ...removedSubnets(before, after)].filter((s) => s.includes('.'));
  const namesRemovedAddress = (entry: string): boolean =>
    [...entry.matchAll(/(?:=| to )(\d+\.\d+\.\d+\.\d+)/g)].some((m) => subnets.some((s) => cidrContains(s, m[1] ?? '')));
  const forwardingTurnedOn = own.forwardingTurnedOn(before.sysctls, after.sysctls);

  /** Whether a changed line of a section counts; `appeared` is false for a removal. */
  const counts: Record<Section, (line: string, appeared: boolean) => boolean> = {
    links: (line) => !own.foreignDevice(linkName(line)) && !ignored('links', line),
    // A staging namespace that went away was the plugin's to remove; one that came counts once its process is gone.
    netns: (line, appeared) => (appeared ? !own.liveStagingNetns(line) : stagingNetnsOwner(line) === undefined) && !ignored('netns', line),
    iptables: (line, appeared) => !own.dockerdRule(line) && !(appeared && isSharedPlumbing(line)) && !ignored('rules', line),
    ip6tables: (line, appeared) => !own.dockerdRule(line) && !(appeared && isSharedPlumbing(line)) && !ignored('rules', line),
    routes: (line, appeared) =>
      !own.foreignDevice(deviceOf(line)) && !(appeared && forwardingTurnedOn.has('ipv6') && isRouterAnycast(line)) && !ignored('routes', line),
    ipRules: (line) => !ignored('ipRules', line),
    tc: (line) => !own.foreignDevice(deviceOf(line)) && !ignored('tc', line),
    // A link that came or went is reported itself; its settings count only while it exists on both sides.
    sysctls: (line) => {
      if (forwardingTurnedOn.has(forwardingFamily(line) ?? '')) return false;
      const link = sysctlLink(line);
      return (link === undefined || link === 'all' || link === 'default' || (bothLinks.has(link) && !own.foreignDevice(link))) && !ignored('sysctls', line);
    },
    // Entries of finished flows expire by themselves: only ones that appeared and point at removed addresses count.
    conntrack: (line, appeared) => appeared && namesRemovedAddress(line) && !ignored('conntrack', line),
    files: (line) => !ignored('files', line),
  };
  const out: string[] = [];
  for (const section of Object.keys(counts) as Section[]) {
    const keep = counts[section];
    out.push(...added(before[section], after[section]).filter((l) => keep(l, true)).map((l) => `+ ${section}: ${l}`));
    out.push(...added(after[section], before[section]).filter((l) => keep(l, false)).map((l) => `- ${section}: ${l}`));
  }
  return out;
}

export interface LeakCheckOptions extends SnapshotOptions, DiffOptions {
  /**
   * Teardown by Docker and the plugin finishes slightly after the CLI
   * returns; differences must persist this long to count.
   */
  settleMs?: number;
  /**
   * Shared-host mode: count only differences that mention one of these tokens
   * (bridge names, network-ID prefixes, subnets, link names the test owns),
   * plus every file under `ownedDirs`. Other processes' churn is then not
   * blamed on the test. Never used under CI, where the whole host counts.
   */
  onlyMentioning?: readonly string[];
  /** Directories that belong to the test alone (e.g. the plugin's temp state). */
  ownedDirs?: readonly string[];
}

/** Throws an Error listing every difference when the host is not back to `before`. */
export async function assertNoLeaks(before: HostSnapshot, options: LeakCheckOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.settleMs ?? 10_000);
  let leftovers: string[];
  for (;;) {
    leftovers = diffSnapshots(before, await takeSnapshot(options), options);
    const tokens = options.onlyMentioning;
    if (tokens) {
      const owned = (options.ownedDirs ?? []).map((dir) => `files: ${dir}/`);
      leftovers = leftovers.filter((l) => owned.some((prefix) => l.slice(2).startsWith(prefix)) || tokens.some((token) => l.includes(token)));
    }
    if (leftovers.length === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (leftovers.length > 0) {
    throw new Error(`host state leaked or was removed (${leftovers.length} item(s)):\n  ${leftovers.join('\n  ')}`);
  }
}

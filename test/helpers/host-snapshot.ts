/**
 * Host snapshots for leak checks: what a test leaves behind on the host is
 * found by comparing a snapshot taken before it with one taken after it.
 *
 * Only additions count (things present after but not before). The
 * normalisation removes what legitimately churns: packet counters, link
 * indexes and states, netns ids. The ignore rules are narrow: Docker's own
 * bridges and their veths (other tests may use them), the plugin's staging
 * namespaces, and the shared iptables chains that CNI plugins and docker-cni
 * create once and, by design, never remove.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export interface HostSnapshot {
  /** `name` or `name master <bridge>` per host link. */
  links: string[];
  /** Names under /run/netns (ids stripped). */
  netns: string[];
  /** `table: rule-or-chain` lines from iptables-save. */
  iptables: string[];
  /** The same from ip6tables-save. */
  ip6tables: string[];
  /** Files (recursively) under the watched directories. */
  files: string[];
}

export interface SnapshotOptions {
  /** Extra directories to list, e.g. the plugin's state and cache dirs. */
  dirs?: readonly string[];
}

/** Watched in every snapshot: where CNI and docker-cni keep state by default. */
export const DEFAULT_WATCHED_DIRS = [
  '/var/lib/cni/results',
  '/var/lib/cni/networks',
  '/var/lib/docker-cni/networks',
  '/var/lib/docker-cni/endpoints',
  '/var/lib/docker-cni/pools',
] as const;

export interface LeakIgnore {
  links?: RegExp[];
  netns?: RegExp[];
  /** Applied to iptables and ip6tables lines (after the `table: ` prefix). */
  rules?: RegExp[];
  files?: RegExp[];
}

/**
 * Chains created once and shared by every network or container; the CNI
 * plugins never delete them (reference section 5), and docker-cni keeps its
 * own two for the life of the host.
 */
const SHARED_CHAINS = [
  'DOCKER-CNI-ISOLATION',
  'DOCKER-CNI-MASQ',
  'CNI-FORWARD',
  'CNI-ADMIN',
  'CNI-ISOLATION-STAGE-1',
  'CNI-ISOLATION-STAGE-2',
  'CNI-HOSTPORT-DNAT',
  'CNI-HOSTPORT-SETMARK',
  'CNI-HOSTPORT-MASQ',
];

/** docker-cni's own fixed chains (DOCKER-CNI-ISOLATION, -MASQ, -INGRESS, ...): upper-case words, no per-network id. */
const DOCKER_CNI_FIXED_CHAIN = /^DOCKER-CNI-[A-Z]+(-[A-Z]+)*$/;

const isSharedChain = (chain: string): boolean => SHARED_CHAINS.includes(chain) || DOCKER_CNI_FIXED_CHAIN.test(chain);

const BUILTIN_AND_DOCKER_CHAINS = ['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING', 'DOCKER-USER'];

/** Docker-managed bridges: docker0 and br-<12 hex> of `docker network create -d bridge`. */
const DOCKER_BRIDGE = /(^|[\s:])(docker0|br-[0-9a-f]{12})(\s|$)/;

/**
 * A rule is shared plumbing when it only links shared/builtin chains (or
 * marks/masquerades by mark, as portmap does) and matches on no address,
 * interface or port: anything naming a container, subnet or bridge is
 * per-network state and must be cleaned up.
 */
function isSharedPlumbing(line: string): boolean {
  const declaration = /^\w+: :(\S+) /.exec(line);
  if (declaration) return isSharedChain(declaration[1] ?? '');
  const rule = /^\w+: -A (\S+) (.*)$/.exec(line);
  if (!rule) return false;
  const chain = rule[1] ?? '';
  const rest = rule[2] ?? '';
  const target = /-j (\S+)/.exec(rest)?.[1] ?? '';
  const chainOk = isSharedChain(chain) || BUILTIN_AND_DOCKER_CHAINS.includes(chain);
  const targetOk = isSharedChain(target) || (isSharedChain(chain) && ['RETURN', 'MARK', 'MASQUERADE'].includes(target));
  if (!chainOk || !targetOk) return false;
  const specific = /(^|\s)(!\s)?(-s|-d|-i|-o|--dport|--sport|--to-destination)\s/.test(rest) || /\b\d{1,3}(\.\d{1,3}){3}\b|[0-9a-f]{1,4}::?[0-9a-f]{0,4}:/i.test(rest);
  return !specific;
}

export const DEFAULT_IGNORE: Required<LeakIgnore> = {
  links: [
    // Docker's own bridges and the veths of containers on them (other tests may churn them).
    /^(docker0|br-[0-9a-f]{12})$/,
    / master (docker0|br-[0-9a-f]{12})$/,
  ],
  // docker-cni's private staging namespaces persist across plugin restarts by design.
  netns: [/^dcni-stage-/],
  rules: [DOCKER_BRIDGE],
  files: [
    // host-local bookkeeping that survives releases; reservations (files named by IP) still count.
    /\/(lock|last_reserved_ip\.\d+)$/,
  ],
};

async function run(cmd: string, args: string[]): Promise<string> {
  const result = await execa(cmd, args, { reject: false, timeout: 30_000 });
  if (result.exitCode !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr).trim()}`);
  }
  return String(result.stdout);
}

function parseLinks(output: string): string[] {
  const links: string[] = [];
  for (const line of output.split('\n')) {
    const match = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s.*?(?:\smaster\s(\S+))?\s/.exec(line);
    if (!match) continue;
    links.push(match[2] ? `${match[1]} master ${match[2]}` : `${match[1]}`);
  }
  return links.sort();
}

function parseNetns(output: string): string[] {
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean)
    .sort();
}

function parseRuleset(table: string, output: string): string[] {
  const lines: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('*') || line === 'COMMIT') continue;
    // Chain declarations carry packet/byte counters: ":NAME POLICY [p:b]".
    lines.push(`${table}: ${line.replace(/\s*\[\d+:\d+\]$/, '')}`);
  }
  return lines;
}

async function ruleset(binary: 'iptables-save' | 'ip6tables-save'): Promise<string[]> {
  const lines: string[] = [];
  for (const table of ['filter', 'nat']) {
    lines.push(...parseRuleset(table, await run(binary, ['-t', table])));
  }
  return lines.sort();
}

function listFiles(dir: string): string[] {
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

export async function takeSnapshot(options: SnapshotOptions = {}): Promise<HostSnapshot> {
  const dirs = [...new Set([...DEFAULT_WATCHED_DIRS, ...(options.dirs ?? [])])];
  const [links, netns, iptables, ip6tables] = await Promise.all([
    run('ip', ['-o', 'link', 'show']).then(parseLinks),
    run('ip', ['netns', 'list']).then(parseNetns),
    ruleset('iptables-save'),
    ruleset('ip6tables-save'),
  ]);
  const files = dirs.flatMap(listFiles).sort();
  return { links, netns, iptables, ip6tables, files };
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

function mergeIgnore(extra: LeakIgnore): Required<LeakIgnore> {
  return {
    links: [...DEFAULT_IGNORE.links, ...(extra.links ?? [])],
    netns: [...DEFAULT_IGNORE.netns, ...(extra.netns ?? [])],
    rules: [...DEFAULT_IGNORE.rules, ...(extra.rules ?? [])],
    files: [...DEFAULT_IGNORE.files, ...(extra.files ?? [])],
  };
}

/** Human-readable leftovers, one per line, e.g. `link: dcni-0123456789`. Empty means clean. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot, ignore: LeakIgnore = {}): string[] {
  const rules = mergeIgnore(ignore);
  const keep = (patterns: RegExp[]) => (line: string) => !patterns.some((p) => p.test(line));
  const keepRule = (line: string) => !isSharedPlumbing(line) && keep(rules.rules)(line);
  return [
    ...added(before.links, after.links).filter(keep(rules.links)).map((l) => `link: ${l}`),
    ...added(before.netns, after.netns).filter(keep(rules.netns)).map((n) => `netns: ${n}`),
    ...added(before.iptables, after.iptables).filter(keepRule).map((r) => `iptables ${r}`),
    ...added(before.ip6tables, after.ip6tables).filter(keepRule).map((r) => `ip6tables ${r}`),
    ...added(before.files, after.files).filter(keep(rules.files)).map((f) => `file: ${f}`),
  ];
}

export interface LeakCheckOptions extends SnapshotOptions {
  ignore?: LeakIgnore;
  /**
   * Teardown by Docker and the plugin finishes slightly after the CLI
   * returns; leftovers must persist this long to count.
   */
  settleMs?: number;
  /**
   * Shared-host mode: count only leftovers that mention one of these tokens
   * (bridge names, network-ID prefixes, subnets, link names the test owns),
   * plus every file under `ownedDirs`. Other processes' churn is then not
   * blamed on the test. Never used under CI, where the whole host counts.
   */
  onlyMentioning?: readonly string[];
  /** Directories that belong to the test alone (e.g. the plugin's temp state). */
  ownedDirs?: readonly string[];
}

/** Throws an AssertionError-like Error listing every leftover when the host is not back to `before`. */
export async function assertNoLeaks(before: HostSnapshot, options: LeakCheckOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.settleMs ?? 10_000);
  let leftovers: string[];
  for (;;) {
    leftovers = diffSnapshots(before, await takeSnapshot(options), options.ignore);
    const tokens = options.onlyMentioning;
    if (tokens) {
      const owned = (options.ownedDirs ?? []).map((dir) => `file: ${dir}/`);
      leftovers = leftovers.filter((l) => owned.some((prefix) => l.startsWith(prefix)) || tokens.some((token) => l.includes(token)));
    }
    if (leftovers.length === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (leftovers.length > 0) {
    throw new Error(`host state leaked (${leftovers.length} item(s)):\n  ${leftovers.join('\n  ')}`);
  }
}

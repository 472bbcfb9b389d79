/**
 * Probes for what one removed endpoint left on the host (link, netns, rules,
 * host-local reservation, CNI cache entry, record), and diagnostics for a
 * failed ping or a broken network.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { DockerClient, EndpointTrace } from './docker-cli.js';
import { linksInSandbox, linksOnBridge } from './host-links.js';
import { endpointRecordPath, type PluginDirs } from './plugin-child.js';

export interface LeftoverContext {
  plugin: { dirs: PluginDirs };
  /** Addresses live containers hold now: a reused address is not a leftover. */
  liveIps: ReadonlySet<string>;
  /** iptables-save output of the filter and nat tables (one read shared by many probes). */
  rules: string;
}

/** iptables-save and ip6tables-save of the filter and nat tables, as one text. */
export async function readRules(): Promise<string> {
  const parts: string[] = [];
  for (const binary of ['iptables-save', 'ip6tables-save']) {
    for (const table of ['filter', 'nat']) {
      const r = await execa(binary, ['-t', table], { reject: false, timeout: 30_000 });
      if (r.exitCode !== 0) throw new Error(`${binary} -t ${table} failed: ${String(r.stderr)}`);
      parts.push(String(r.stdout));
    }
  }
  return parts.join('\n');
}

function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries.map((entry) => join(dir, entry));
}

/** Everything a removed endpoint left on the host; empty when it left nothing. */
export async function leftoversOf(trace: EndpointTrace, ctx: LeftoverContext): Promise<string[]> {
  const found: string[] = [];
  const { cacheDir, hostLocalDir } = ctx.plugin.dirs;
  const link = `dc${trace.endpointId.slice(0, 13)}`;
  if (existsSync(`/sys/class/net/${link}`)) found.push(`link ${link}`);
  for (const inside of await linksInSandbox(trace.sandboxKey)) found.push(`link ${inside} in netns ${trace.sandboxKey}`);
  if (existsSync(endpointRecordPath(ctx.plugin.dirs, trace.endpointId))) found.push('endpoint record');
  for (const file of filesUnder(join(cacheDir, 'results'))) {
    if (file.includes(trace.endpointId)) found.push(`CNI cache entry ${file}`);
  }
  if (!ctx.liveIps.has(trace.ip)) {
    const mentions = new RegExp(`(^|[^0-9.])${trace.ip.replace(/\./g, '\\.')}(/32)?([^0-9.]|$)`);
    for (const line of ctx.rules.split('\n')) {
      if (mentions.test(line)) found.push(`rule ${line.trim()}`);
    }
    for (const file of filesUnder(hostLocalDir)) {
      if (file.endsWith(`/${trace.ip}`)) found.push(`host-local reservation ${file}`);
    }
  }
  return found.map((what) => `${trace.container} (${trace.ip} on ${trace.network}): ${what}`);
}

/** Evidence for a failed ping: both ends' addresses, routes, neighbours, the bridge ports and the rules naming them. */
export async function pingDiagnostics(docker: DockerClient, from: EndpointTrace, to: EndpointTrace | undefined, bridge: string): Promise<string> {
  const lines: string[] = [];
  const inside = async (container: string, args: string[]): Promise<string> => {
    const r = await docker.result(['exec', container, ...args], 15_000);
    return (r.stdout || r.stderr).replace(/\n/g, ' | ');
  };
  for (const end of [from, to]) {
    if (!end) continue;
    lines.push(`${end.container} ${end.ip} ep=${end.endpointId.slice(0, 13)}`);
    lines.push(`  addr: ${await inside(end.container, ['ip', '-o', 'addr'])}`);
    lines.push(`  route: ${await inside(end.container, ['ip', 'route'])}`);
    lines.push(`  neigh: ${await inside(end.container, ['ip', 'neigh'])}`);
  }
  lines.push(`bridge ${bridge} ports: ${(await linksOnBridge(bridge)).join(' ')}`);
  const rules = await readRules();
  for (const end of [from, to]) {
    if (!end) continue;
    const mentions = rules.split('\n').filter((line) => line.includes(`${end.ip}/`) || line.includes(`${end.ip} `));
    lines.push(`rules naming ${end.ip}: ${mentions.length === 0 ? '(none)' : mentions.join(' | ')}`);
  }
  return lines.join('\n');
}

/** Evidence about one docker-cni network's host side: its bridge, the bridge's ports and its tagged rules. */
export async function networkDiagnostics(networkId: string, bridge: string): Promise<string> {
  const exists = existsSync(`/sys/class/net/${bridge}`);
  const portNames = await linksOnBridge(bridge);
  const tag = `dcni:${networkId.slice(0, 12)}`;
  const rules = (await readRules()).split('\n').filter((line) => line.includes(tag) || line.includes(bridge));
  return [
    `bridge ${bridge}: ${exists ? 'present' : 'MISSING'}, ${portNames.length} port(s)`,
    `rules tagged ${tag} or naming ${bridge} (${rules.length}):`,
    ...rules.map((r) => `  ${r}`),
  ].join('\n');
}


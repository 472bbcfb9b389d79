/**
 * What the firewall tests read from the kernel and what they expect there:
 * iptables-save normalised, the rules one network must have (from the docs,
 * not from the code under test), and specs with never-created bridges and
 * subnets that overlap no host route.
 */
import { execa } from 'execa';
import { CHAINS, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import { networkTag } from '../../../src/names.js';
import { randomHex } from '../../helpers/common.js';
import { cidrsOverlap, hostRoutesV4 } from '../../helpers/subnets.js';

export type Family = 'ipv4' | 'ipv6';
export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];
const SAVE: Record<Family, string> = { ipv4: 'iptables-save', ipv6: 'ip6tables-save' };

/** iptables-save without comments and counters, comment quotes dropped (legacy and nft print them differently). */
export async function saved(family: Family): Promise<string[]> {
  const { stdout } = await execa(SAVE[family], [], { timeout: 30_000 });
  return String(stdout)
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]').replace(/--comment "([^"\s]*)"/g, '--comment $1'));
}
export const snapshot = async (): Promise<Record<Family, string[]>> => ({ ipv4: await saved('ipv4'), ipv6: await saved('ipv6') });

/** Our chains and the jumps into them, as iptables-save prints them, for a host whose filter table looks like `before`. */
export function structure(before: readonly string[]): string[] {
  const parent = before.includes(':DOCKER-USER - [0:0]') ? 'DOCKER-USER' : 'FORWARD';
  return [
    `:${CHAINS.egress} - [0:0]`,
    `:${CHAINS.ingress} - [0:0]`,
    `:${CHAINS.isolation} - [0:0]`,
    `-A ${parent} -j ${CHAINS.isolation}`,
    `-A ${CHAINS.isolation} -j ${CHAINS.ingress}`,
    `-A ${CHAINS.isolation} -j ${CHAINS.egress}`,
    `:${CHAINS.masquerade} - [0:0]`,
    `-A POSTROUTING -j ${CHAINS.masquerade}`,
  ];
}

/** Four shapes of network, so every kind of rule is made and removed concurrently. */
export function specFor(i: number, subnetV4: string, v6Prefix: string): NetworkFirewallSpec {
  const shape = i % 4;
  return {
    networkId: randomHex(64),
    bridge: `dcfw${randomHex(8)}`,
    subnetsV4: [subnetV4],
    subnetsV6: shape === 1 || shape === 3 ? [`${v6Prefix}:${i.toString(16)}::/64`] : [],
    internal: shape === 1,
    icc: shape !== 1,
    masquerade: shape !== 2,
    isolate: shape !== 2,
    spansHosts: shape === 2,
  };
}

/** What the docs promise for one network in one family, keyed by "table chain", in order. */
export function expectedRules(spec: NetworkFirewallSpec, family: Family): Map<string, string[]> {
  const subnets = family === 'ipv4' ? spec.subnetsV4 : spec.subnetsV6;
  const out = new Map<string, string[]>();
  if (subnets.length === 0) return out;
  const b = spec.bridge;
  const c = `-m comment --comment ${networkTag(spec.networkId)}`;
  const span = spec.spansHosts ? subnets : [];
  out.set(`filter ${CHAINS.ingress}`, [
    `-A ${CHAINS.ingress} -i ${b} -o ${b} ${c} -j ${spec.icc ? 'ACCEPT' : 'DROP'}`,
    ...span.map((s) => `-A ${CHAINS.ingress} -s ${s} -o ${b} ${c} -j ACCEPT`),
    `-A ${CHAINS.ingress} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT ${c} -j ACCEPT`,
    `-A ${CHAINS.ingress} -o ${b} ${c} -j ${spec.isolate ? 'DROP' : 'ACCEPT'}`,
  ]);
  // iptables-save prints addresses before interfaces.
  const egress = span.map((s) => `-A ${CHAINS.egress} -d ${s} -i ${b} ${c} -j ACCEPT`);
  if (spec.internal) egress.push(`-A ${CHAINS.egress} -i ${b} ${c} -j DROP`);
  else {
    if (spec.isolate) egress.push(`-A ${CHAINS.egress} -i ${b} -o docker0 ${c} -j DROP`, `-A ${CHAINS.egress} -i ${b} -o br-+ ${c} -j DROP`);
    egress.push(`-A ${CHAINS.egress} -i ${b} ${c} -j ACCEPT`);
  }
  out.set(`filter ${CHAINS.egress}`, egress);
  if (spec.masquerade && !spec.internal) {
    out.set(`nat ${CHAINS.masquerade}`, [
      ...span.map((s) => `-A ${CHAINS.masquerade} -s ${s} -d ${s} ${c} -j RETURN`),
      ...subnets.map((s) => `-A ${CHAINS.masquerade} -s ${s} ! -o ${b} ${c} -j MASQUERADE`),
    ]);
  }
  return out;
}

/** The rules carrying `tag`, keyed by "table chain", in the order iptables-save prints them. */
export function tagged(lines: readonly string[], tag: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const line of lines) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.includes(`--comment ${tag} `) || line.endsWith(`--comment ${tag}`)) {
      const key = `${table} ${line.split(' ')[1] ?? ''}`;
      out.set(key, [...(out.get(key) ?? []), line]);
    }
  }
  return out;
}

/** `lines` without the rules of the given tags and without the structure lines the host did not have before. */
export function untagged(lines: readonly string[], tags: readonly string[], addedStructure: ReadonlySet<string>): string[] {
  return lines.filter((line) => !tags.some((tag) => line.includes(`--comment ${tag}`)) && !addedStructure.has(line));
}

export async function freeSubnetsV4(count: number): Promise<string[]> {
  const used = await hostRoutesV4();
  const picked = new Set<string>();
  for (let attempt = 0; picked.size < count && attempt < 2000; attempt++) {
    const candidate = `10.238.${Math.floor(Math.random() * 256)}.0/24`;
    if (!used.some((cidr) => cidrsOverlap(cidr.includes('/') ? cidr : `${cidr}/32`, candidate))) picked.add(candidate);
  }
  if (picked.size < count) throw new Error(`fewer than ${count} free 10.238.X.0/24 subnets`);
  return [...picked];
}

/** A random fdc7:X:Y ULA prefix (networks add a fourth hextet and /64) that no route uses. */
export async function v6TestPrefix(): Promise<string> {
  const hextet = (): string => (0x1000 + Math.floor(Math.random() * 0xefff)).toString(16);
  const prefix = `fdc7:${hextet()}:${hextet()}`;
  const routes = String((await execa('ip', ['-6', 'route', 'show', 'table', 'all'])).stdout);
  if (routes.includes(`${prefix}:`)) throw new Error(`IPv6 prefix ${prefix} is routed here`);
  return prefix;
}

/** Bridge names of specs that exist as links (they must not). */
export async function existingBridges(specs: readonly NetworkFirewallSpec[]): Promise<string[]> {
  const links = String((await execa('ip', ['-o', 'link', 'show'])).stdout);
  return specs.map((s) => s.bridge).filter((bridge) => links.includes(` ${bridge}:`) || links.includes(` ${bridge}@`));
}

/**
 * Leaves the host as found: the structure lines a test added (our chains and
 * their jumps, which the firewall keeps by design) go again, if no network's
 * rules are left in them.
 */
export async function removeOurChains(added: Record<Family, ReadonlySet<string>>): Promise<void> {
  for (const family of FAMILIES) {
    if (added[family].size === 0) continue;
    if ((await saved(family)).some((line) => line.includes('--comment dcni:'))) continue;
    const tool = family === 'ipv4' ? 'iptables' : 'ip6tables';
    const quiet = (table: string, ...args: string[]): Promise<unknown> => execa(tool, ['-w', '5', '-t', table, ...args], { reject: false });
    for (const line of added[family]) {
      if (line.startsWith('-A ')) await quiet(line.includes(CHAINS.masquerade) ? 'nat' : 'filter', '-D', ...line.slice(3).split(' '));
    }
    for (const chain of [CHAINS.isolation, CHAINS.ingress, CHAINS.egress]) {
      if (added[family].has(`:${chain} - [0:0]`)) await quiet('filter', '-X', chain);
    }
    if (added[family].has(`:${CHAINS.masquerade} - [0:0]`)) await quiet('nat', '-X', CHAINS.masquerade);
  }
}

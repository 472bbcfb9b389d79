import type { Logger } from '../log.js';
import { PluginError } from '../errors.js';
import type { CommandRunner } from './command.js';
import { assertLinkName } from './links.js';
import { FIREWALL_HOST_LOCK, networkTag, networkTagsIn } from '../names.js';
import { looksLikeCidr } from '../util/ip-math.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { withHostLock } from '../util/host-lock.js';

/**
 * Every change is a read (iptables-save), a computed diff and a write
 * (iptables-restore); two interleaved changes would each write a diff against
 * a stale read (duplicate rules and jumps, a -D of a rule the other already
 * deleted, which fails the whole restore). iptables-restore -w serialises
 * only the write, so the read-diff-write holds a host-wide lock, shared with
 * the other processes that change our rules (the CLI's gc next to the
 * plugin, a managed and a host plugin side by side). Inside a process one
 * queue, shared by every NetworkFirewall in it (driver, startup rule sync,
 * reconciler), keeps it to one waiter on that lock.
 */
const FIREWALL_QUEUE = new KeyedLock();
const serially = <T>(work: () => Promise<T>): Promise<T> =>
  FIREWALL_QUEUE.withLock('iptables', () => withHostLock(FIREWALL_HOST_LOCK, work));

/** Chains docker-cni owns. Shared by all networks; never removed (like CNI's shared CNI-* chains). */
export const CHAINS = {
  isolation: 'DOCKER-CNI-ISOLATION',
  ingress: 'DOCKER-CNI-INGRESS',
  egress: 'DOCKER-CNI-EGRESS',
  masquerade: 'DOCKER-CNI-MASQ',
} as const;

/**
 * Where the CNI firewall plugin's ingressPolicy (same-bridge, isolated) starts
 * judging. The plugin hooks it into FORWARD, where Docker's DOCKER-USER jump
 * (and so our accepts) may come first.
 */
export const CNI_INGRESS_POLICY_CHAIN = 'CNI-ISOLATION-STAGE-1';

export interface NetworkFirewallSpec {
  networkId: string;
  bridge: string;
  subnetsV4: string[];
  subnetsV6: string[];
  internal: boolean;
  /** Inter-container communication inside the network (enable_icc). */
  icc: boolean;
  masquerade: boolean;
  /** Drop traffic between this network and other networks (Docker's bridge isolation). */
  isolate: boolean;
  /**
   * The network spans hosts (routed mode): its subnets also live behind other
   * hosts, so traffic to and from them through the underlay is the same
   * network (accepted, never masqueraded).
   */
  spansHosts?: boolean;
  /** The chain's firewall plugin isolates the bridge itself (ingressPolicy): its verdicts come before our accepts. */
  ingressPolicy?: boolean;
}

type Family = 'ipv4' | 'ipv6';
const TOOLS: Record<Family, { save: string; restore: string }> = {
  ipv4: { save: 'iptables-save', restore: 'iptables-restore' },
  ipv6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

/**
 * Per-network forwarding, isolation and masquerade rules, installed once per
 * network (not per container), in chains jumped to from DOCKER-USER, which
 * Docker evaluates before its own FORWARD rules and never rewrites.
 * Each change is one iptables-save plus one atomic iptables-restore --noflush.
 */
export class NetworkFirewall {
  constructor(
    private readonly run: CommandRunner,
    private readonly logger: Logger,
  ) {}

  /** Idempotent: replaces whatever rules this network had with the ones the spec describes. */
  async ensureNetwork(spec: NetworkFirewallSpec): Promise<void> {
    assertLinkName(spec.bridge);
    for (const cidr of [...spec.subnetsV4, ...spec.subnetsV6]) {
      if (!looksLikeCidr(cidr)) throw new PluginError('INVALID_ARGUMENT', `invalid subnet "${cidr}"`);
    }
    await serially(async () => {
      await this.apply('ipv4', spec.networkId, buildRules(spec, spec.subnetsV4));
      if (spec.subnetsV6.length > 0 || (await this.hasTaggedRules('ipv6', spec.networkId))) {
        await this.apply('ipv6', spec.networkId, spec.subnetsV6.length > 0 ? buildRules(spec, spec.subnetsV6) : emptyRules());
      }
    });
  }

  /** Idempotent: removes every rule tagged with this network. */
  async removeNetwork(networkId: string): Promise<void> {
    await serially(async () => {
      for (const family of ['ipv4', 'ipv6'] as const) {
        if (await this.hasTaggedRules(family, networkId)) await this.apply(family, networkId, emptyRules());
      }
    });
  }

  /** Network-ID prefixes (12 chars) that have rules, for reconciliation. */
  async listTaggedNetworks(): Promise<Set<string>> {
    const found = new Set<string>();
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const prefix of networkTagsIn(await this.save(family))) found.add(prefix);
    }
    return found;
  }

  private async hasTaggedRules(family: Family, networkId: string): Promise<boolean> {
    return (await this.save(family)).includes(networkTag(networkId));
  }

  private async save(family: Family): Promise<string> {
    try {
      return await this.run(TOOLS[family].save, []);
    } catch (err) {
      if (family === 'ipv6') return ''; // hosts without IPv6 netfilter
      throw err;
    }
  }

  private async apply(family: Family, networkId: string, rules: TableRules): Promise<void> {
    const saved = parseSave(await this.save(family));
    const tag = networkTag(networkId);
    const script: string[] = [];
    for (const table of ['filter', 'nat'] as const) {
      const current = saved.get(table) ?? { chains: new Set<string>(), rules: [] };
      const lines: string[] = [];
      const ownChains = table === 'filter' ? [CHAINS.isolation, CHAINS.ingress, CHAINS.egress] : [CHAINS.masquerade];
      for (const chain of ownChains) if (!current.chains.has(chain)) lines.push(`:${chain} - [0:0]`);
      // The firewall plugin makes its chain at the chain's first ADD, after CreateNetwork; it keeps one that exists.
      const policyJump = `-j ${CNI_INGRESS_POLICY_CHAIN}`;
      if (rules[table].some((r) => r.endsWith(policyJump)) && !current.chains.has(CNI_INGRESS_POLICY_CHAIN)) {
        lines.push(`:${CNI_INGRESS_POLICY_CHAIN} - [0:0]`);
      }
      lines.push(...baseJumps(table, current));
      for (const rule of current.rules) {
        if (rule.includes(`--comment ${tag} `) || rule.includes(`--comment "${tag}" `) || rule.endsWith(`--comment ${tag}`)) {
          lines.push(rule.replace(/^-A /, '-D '));
        }
      }
      lines.push(...rules[table]);
      if (lines.length > 0) script.push(`*${table}`, ...lines, 'COMMIT');
    }
    if (script.length === 0) return;
    this.logger.debug({ family, networkId, script }, 'applying network firewall rules');
    await this.run(TOOLS[family].restore, ['-w', '5', '--noflush'], { input: `${script.join('\n')}\n` });
  }
}

interface TableRules {
  filter: string[];
  nat: string[];
}
const emptyRules = (): TableRules => ({ filter: [], nat: [] });

function buildRules(spec: NetworkFirewallSpec, subnets: string[]): TableRules {
  const comment = `-m comment --comment ${networkTag(spec.networkId)}`;
  const b = spec.bridge;
  const span = spec.spansHosts ? subnets : [];
  const filter = [
    // Inserted ahead of the ingress and egress jumps, so the plugin's policy sees the traffic before any accept.
    ...(spec.ingressPolicy ? [`-I ${CHAINS.isolation} 1 -i ${b} ${comment} -j ${CNI_INGRESS_POLICY_CHAIN}`] : []),
    `-A ${CHAINS.ingress} -i ${b} -o ${b} ${comment} -j ${spec.icc ? 'ACCEPT' : 'DROP'}`,
    ...span.map((s) => `-A ${CHAINS.ingress} -s ${s} -o ${b} ${comment} -j ACCEPT`),
    ...span.map((s) => `-A ${CHAINS.egress} -i ${b} -d ${s} ${comment} -j ACCEPT`),
    `-A ${CHAINS.ingress} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT ${comment} -j ACCEPT`,
    `-A ${CHAINS.ingress} -o ${b} ${comment} -j ${spec.isolate ? 'DROP' : 'ACCEPT'}`,
  ];
  if (spec.internal) {
    filter.push(`-A ${CHAINS.egress} -i ${b} ${comment} -j DROP`);
  } else {
    if (spec.isolate) {
      // Docker's own bridges accept anything not from another Docker bridge; drop our side first.
      filter.push(`-A ${CHAINS.egress} -i ${b} -o docker0 ${comment} -j DROP`);
      filter.push(`-A ${CHAINS.egress} -i ${b} -o br-+ ${comment} -j DROP`);
    }
    filter.push(`-A ${CHAINS.egress} -i ${b} ${comment} -j ACCEPT`);
  }
  const nat =
    spec.masquerade && !spec.internal
      ? [
          ...span.map((s) => `-A ${CHAINS.masquerade} -s ${s} -d ${s} ${comment} -j RETURN`),
          ...subnets.map((s) => `-A ${CHAINS.masquerade} -s ${s} ! -o ${b} ${comment} -j MASQUERADE`),
        ]
      : [];
  return { filter, nat };
}

/** Jumps into our chains, added once per host (and again if someone flushed them). */
function baseJumps(table: 'filter' | 'nat', current: ParsedTable): string[] {
  const lines: string[] = [];
  if (table === 'filter') {
    const parent = current.chains.has('DOCKER-USER') ? 'DOCKER-USER' : 'FORWARD';
    if (!current.rules.some((r) => r.startsWith(`-A ${parent} `) && r.endsWith(`-j ${CHAINS.isolation}`))) {
      lines.push(`-I ${parent} 1 -j ${CHAINS.isolation}`);
    }
    // Every network's ingress rules must come before any network's egress ACCEPT.
    // Per-network rules there (ingressPolicy) carry a comment and stay first.
    const order = current.rules.filter((r) => r.startsWith(`-A ${CHAINS.isolation} `) && !r.includes('--comment'));
    const expected = [`-A ${CHAINS.isolation} -j ${CHAINS.ingress}`, `-A ${CHAINS.isolation} -j ${CHAINS.egress}`];
    if (order.join('\n') !== expected.join('\n')) {
      lines.push(...order.map((r) => r.replace(/^-A /, '-D ')), ...expected);
    }
  } else if (!current.rules.some((r) => r.startsWith('-A POSTROUTING ') && r.endsWith(`-j ${CHAINS.masquerade}`))) {
    lines.push(`-I POSTROUTING 1 -j ${CHAINS.masquerade}`);
  }
  return lines;
}

interface ParsedTable {
  chains: Set<string>;
  rules: string[];
}

function parseSave(text: string): Map<string, ParsedTable> {
  const tables = new Map<string, ParsedTable>();
  let current: ParsedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: [] };
      tables.set(line.slice(1).trim(), current);
    } else if (current && line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0];
      if (name) current.chains.add(name);
    } else if (current && line.startsWith('-A ')) {
      current.rules.push(line.trim());
    }
  }
  return tables;
}

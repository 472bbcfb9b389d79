/**
 * What a leak check must not blame on the test, decided by ownership (chain
 * names, devices, subnets dockerd lists as its own), never by a pattern that
 * could also match docker-cni's objects:
 *   - dockerd's own: its chains and the rules in them, its jumps and rules in
 *     the built-in chains that name its bridges or subnets, its bridges, the
 *     links enslaved to them and their routes, qdiscs and sysctls;
 *   - shared plumbing created once and never removed by design (CNI's shared
 *     chains, docker-cni's fixed DOCKER-CNI-* chains and their jumps), and the
 *     staging namespaces of a docker-cni process that still runs;
 *   - ifb0/ifb1, which the kernel creates when the bandwidth plugin first
 *     loads the ifb module (numifbs defaults to 2) and which stay with it;
 *   - forwarding switched on: the bridge plugin, as a gateway, turns on IPv4
 *     and, with IPv6 addresses, IPv6 forwarding host-wide (as dockerd does
 *     for its own networks) and never turns it off, since other networks
 *     rely on it; the kernel then adds subnet-router anycast routes to the
 *     local table. Switched off again, it counts.
 * A rule in a DOCKER-CNI-* chain (e.g. `-o docker0 ... -j DROP`) is docker-cni's
 * and always counts.
 */
import { pidAlive, stagingNetnsOwner } from './processes.js';
import { cidrContains } from './subnets.js';
import type { DockerdOwned } from './snapshot-readers.js';

/** dockerd's chains (20.10 and later); exact names, so DOCKER-CNI-* is never among them. */
const DOCKERD_CHAINS = new Set([
  'DOCKER',
  'DOCKER-USER',
  'DOCKER-INGRESS',
  'DOCKER-ISOLATION-STAGE-1',
  'DOCKER-ISOLATION-STAGE-2',
  'DOCKER-FORWARD',
  'DOCKER-BRIDGE',
  'DOCKER-CT',
  'DOCKER-INTERNAL',
]);

const BUILTIN_CHAINS = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);

/**
 * Chains created once and shared by every network or container; the CNI
 * plugins never delete them (reference section 5), and docker-cni keeps its
 * own for the life of the host.
 */
const CNI_SHARED_CHAINS = new Set([
  'CNI-FORWARD',
  'CNI-ADMIN',
  'CNI-ISOLATION-STAGE-1',
  'CNI-ISOLATION-STAGE-2',
  'CNI-HOSTPORT-DNAT',
  'CNI-HOSTPORT-SETMARK',
  'CNI-HOSTPORT-MASQ',
]);

/** docker-cni's own fixed chains (DOCKER-CNI-ISOLATION, -MASQ, -INGRESS, ...): upper-case words, no per-network id. */
const DOCKER_CNI_FIXED_CHAIN = /^DOCKER-CNI-[A-Z]+(-[A-Z]+)*$/;

const isSharedChain = (chain: string): boolean => CNI_SHARED_CHAINS.has(chain) || DOCKER_CNI_FIXED_CHAIN.test(chain);

/** Links the kernel's ifb module makes on load (see the module comment). */
const IFB_DEFAULT_LINKS = new Set(['ifb0', 'ifb1']);

/** The family of a forwarding switch (`ipv4/ip_forward`, `ipv[46]/conf/<link>/forwarding`), else undefined. */
export function forwardingFamily(line: string): string | undefined {
  return /^(ipv4)\/ip_forward=|^(ipv[46])\/conf\/[^/]+\/forwarding=/.exec(line)?.slice(1).find(Boolean);
}

/** `v6: anycast <prefix>:: dev X table local ...`: the kernel's subnet-router anycast route of a forwarding host. */
export const isRouterAnycast = (line: string): boolean => /^v6: anycast \S+ dev \S+ table local /.test(line);

export class Ownership {
  private readonly bridges: Set<string>;
  private readonly subnets: string[];
  /** Links enslaved to a dockerd bridge in either snapshot (container veths of Docker's own networks). */
  private readonly enslaved = new Set<string>();

  constructor(owned: readonly DockerdOwned[], links: readonly string[]) {
    this.bridges = new Set(owned.flatMap((o) => o.bridges));
    this.subnets = [...new Set(owned.flatMap((o) => o.subnets))];
    for (const line of links) {
      const [name = '', , master] = line.split(' ');
      if (master && this.bridges.has(master)) this.enslaved.add(name);
    }
  }

  /** A device that is dockerd's, or the kernel's ifb default. */
  foreignDevice(device: string | undefined): boolean {
    return device !== undefined && (this.bridges.has(device) || this.enslaved.has(device) || IFB_DEFAULT_LINKS.has(device));
  }

  /**
   * A staging namespace of a docker-cni process that still runs: the plugin
   * keeps a pool of them for its whole life by design. Once that process is
   * gone, its namespaces count (a graceful stop removes them; a restart after
   * a crash must).
   */
  liveStagingNetns(name: string): boolean {
    const pid = stagingNetnsOwner(name);
    return pid !== undefined && pidAlive(pid);
  }

  /** Families whose host-wide forwarding went from 0 to 1 between the two sysctl lists (see the module comment). */
  forwardingTurnedOn(before: readonly string[], after: readonly string[]): Set<string> {
    const on = new Set<string>();
    for (const [family, key] of [['ipv4', 'ipv4/ip_forward'], ['ipv6', 'ipv6/conf/all/forwarding']] as const) {
      if (before.includes(`${key}=0`) && after.includes(`${key}=1`)) on.add(family);
    }
    return on;
  }

  /** A `table: line` of iptables-save that dockerd made for its own networks. */
  dockerdRule(line: string): boolean {
    const declaration = /^\w+: :(\S+) /.exec(line);
    if (declaration) return DOCKERD_CHAINS.has(declaration[1] ?? '');
    const rule = /^\w+: -A (\S+) (.*)$/.exec(line);
    if (!rule) return false;
    const [, chain = '', rest = ''] = rule;
    const target = /-j (\S+)/.exec(rest)?.[1] ?? '';
    // dockerd's chains hold only its rules, except jumps others put in DOCKER-USER (docker-cni's, by design).
    if (DOCKERD_CHAINS.has(chain)) return !isSharedChain(target) && !target.startsWith('CNI-');
    if (!BUILTIN_CHAINS.has(chain)) return false;
    if (DOCKERD_CHAINS.has(target)) return true;
    const devices = [...rest.matchAll(/(?:^|\s)-[io] (\S+)/g)].map((m) => m[1] ?? '');
    if (devices.some((dev) => this.bridges.has(dev))) return true;
    const addresses = [...rest.matchAll(/(?:^|\s)-[sd] (\S+)/g)].map((m) => (m[1] ?? '').split('/')[0] ?? '');
    return addresses.some((ip) => ip.includes('.') && this.subnets.some((subnet) => subnet.includes('.') && cidrContains(subnet, ip)));
  }
}

/**
 * A rule is shared plumbing when it only links shared/builtin chains (or
 * marks/masquerades by mark, as portmap does) and matches on no address,
 * interface or port: anything naming a container, subnet or bridge is
 * per-network state and must be cleaned up. Such plumbing may appear during
 * a test (the first network creates it) and stays.
 */
export function isSharedPlumbing(line: string): boolean {
  const declaration = /^\w+: :(\S+) /.exec(line);
  if (declaration) return isSharedChain(declaration[1] ?? '');
  const rule = /^\w+: -A (\S+) (.*)$/.exec(line);
  if (!rule) return false;
  const [, chain = '', rest = ''] = rule;
  const target = /-j (\S+)/.exec(rest)?.[1] ?? '';
  const chainOk = isSharedChain(chain) || BUILTIN_CHAINS.has(chain) || chain === 'DOCKER-USER';
  const targetOk = isSharedChain(target) || (isSharedChain(chain) && ['RETURN', 'MARK', 'MASQUERADE'].includes(target));
  if (!chainOk || !targetOk) return false;
  const specific = /(^|\s)(!\s)?(-s|-d|-i|-o|--dport|--sport|--to-destination)\s/.test(rest) || /\b\d{1,3}(\.\d{1,3}){3}\b|[0-9a-f]{1,4}::?[0-9a-f]{0,4}:/i.test(rest);
  return !specific;
}

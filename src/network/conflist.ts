import type { CniResult, NetConfList, PluginConf } from '../cni/types.js';
import { RouteType, type StaticRoute } from '../docker/api.js';
import { generatedCniName, publicationCniName } from '../names.js';
import { confListSubnets } from '../cni/ranges.js';
import { invalid } from '../errors.js';
import { familyBits, formatCidr, formatIp, parseCidr } from '../util/ip-math.js';
import type { NetworkOptions } from './options.js';
import type { NetworkSubnet } from './records.js';
import { isRecord } from '../util/is-record.js';

/** The CNI spec version of generated configs: the newest the Debian 1.1.1 plugins speak. */
export const GENERATED_CNI_VERSION = '1.0.0';

/**
 * The bridge chain for a network without a user conflist. Addresses come from
 * Docker's IPAM through `static` at CreateEndpoint; forwarding, isolation and
 * masquerade are per-network iptables rules (see host/firewall.ts), so no
 * per-container firewall or ipMasq work is needed.
 */
export function generatedConfList(
  networkId: string,
  opts: NetworkOptions,
  bridge: string,
  hasGateway: boolean,
): NetConfList {
  const bridgePlugin: PluginConf = {
    type: 'bridge',
    bridge,
    isGateway: hasGateway,
    isDefaultGateway: false,
    ipMasq: false,
    hairpinMode: true,
    capabilities: { mac: true },
    ipam: { type: 'static' },
  };
  if (opts.mtu !== undefined) bridgePlugin.mtu = opts.mtu;
  return {
    cniVersion: GENERATED_CNI_VERSION,
    name: generatedCniName(networkId),
    plugins: [bridgePlugin, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
  };
}

export interface EndpointAddressing {
  /** CIDRs from Docker's IPAM. */
  addresses: string[];
  gatewayV4?: string;
  gatewayV6?: string;
  /** A generated chain gains the bandwidth plugin only for endpoints with limits. */
  hasBandwidth?: boolean;
}

/** The shaping plugin added to generated chains when an endpoint has `cni.bandwidth.*` limits. */
const GENERATED_BANDWIDTH_PLUGIN: PluginConf = { type: 'bandwidth', capabilities: { bandwidth: true } };

/** True when some plugin of the chain declares the capability (and so receives it in runtimeConfig). */
export function chainDeclaresCapability(conflist: NetConfList, capability: string): boolean {
  return conflist.plugins.some((p) => isRecord(p.capabilities) && p.capabilities[capability] === true);
}

const isV6 = (cidr: string): boolean => cidr.includes(':');

const publishes = (plugin: PluginConf): boolean => isRecord(plugin.capabilities) && plugin.capabilities.portMappings === true;

/**
 * The chain one endpoint runs: the network template with every IPAM section
 * replaced by `static` holding Docker's addresses, because Docker re-applies
 * its own address after moving the link and the two must agree. Plugins that
 * publish ports are left out: Docker says which endpoint of a container
 * publishes (ProgramExternalConnectivity), so they run later, on their own
 * (publicationConfList).
 */
export function endpointConfList(template: NetConfList, generated: boolean, addressing: EndpointAddressing): NetConfList {
  const addresses = addressing.addresses.map((address) => {
    const gateway = isV6(address) ? addressing.gatewayV6 : addressing.gatewayV4;
    return gateway ? { address, gateway } : { address };
  });
  const plugins = template.plugins
    .filter((plugin) => !publishes(plugin))
    .map((plugin): PluginConf => {
      if (!plugin.ipam || typeof plugin.ipam.type !== 'string') return structuredClone(plugin);
      const ipam: Record<string, unknown> = { type: 'static', addresses };
      if (Array.isArray(plugin.ipam.routes)) ipam.routes = plugin.ipam.routes;
      if (plugin.ipam.dns && typeof plugin.ipam.dns === 'object') ipam.dns = plugin.ipam.dns;
      return { ...structuredClone(plugin), ipam };
    });
  if (generated && addressing.hasBandwidth && !plugins.some((p) => p.type === 'bandwidth')) {
    plugins.push(structuredClone(GENERATED_BANDWIDTH_PLUGIN));
  }
  const { bytes: _bytes, sourcePath: _sourcePath, ...rest } = template;
  return { ...structuredClone(rest), plugins };
}

/**
 * The plugins of a network that publish ports (those declaring the
 * portMappings capability), as a list of their own; undefined when none does.
 */
export function publicationConfList(template: NetConfList): NetConfList | undefined {
  const plugins = template.plugins.filter(publishes).map((p) => structuredClone(p));
  if (plugins.length === 0) return undefined;
  const { bytes: _bytes, sourcePath: _sourcePath, plugins: _plugins, ...rest } = template;
  return { ...structuredClone(rest), name: publicationCniName(template.name), plugins };
}

/** The gateway to hand Docker for one family: the network's, else a default route in the CNI result. */
export function gatewayFromResult(result: CniResult | undefined, v6: boolean): string | undefined {
  const defaultDst = v6 ? '::/0' : '0.0.0.0/0';
  const route = result?.routes?.find((r) => r.dst === defaultDst);
  if (!route) return undefined;
  if (route.gw) return route.gw;
  // A default route without gw means "via the address's gateway" (ptp, and IPAM routes in general).
  return result?.ips?.find((ip) => isV6(ip.address) === v6 && ip.gateway)?.gateway;
}

/**
 * Main plugins whose containers have no gateway on the host: the router is
 * somewhere on the parent's segment (macvlan, ipvlan) or the device is handed
 * over as is (host-device). Docker ≥ 28 asks (GwAllocCheck) whether to reserve
 * a gateway address; for these it would only take an address from the pool.
 * ptp is not among them: its host end carries the gateway address.
 */
const GATEWAY_LESS_TYPES = new Set(['macvlan', 'ipvlan', 'host-device']);

/** True when the chain's main plugin gives containers no host-side gateway. */
export function chainIsGatewayLess(conflist: Pick<NetConfList, 'plugins'>): boolean {
  const main = conflist.plugins[0];
  return main !== undefined && GATEWAY_LESS_TYPES.has(main.type);
}

/** Firewall-plugin ingress policies that isolate the bridge (CNI 1.1.0); "open" does not. */
const ISOLATING_INGRESS_POLICIES = new Set(['same-bridge', 'isolated']);

/** True when the chain's firewall plugin isolates its bridge itself (ingressPolicy). */
export function chainHasIngressPolicy(conflist: Pick<NetConfList, 'plugins'>): boolean {
  return conflist.plugins.some((p) => p.type === 'firewall' && typeof p.ingressPolicy === 'string' && ISOLATING_INGRESS_POLICIES.has(p.ingressPolicy));
}

/**
 * Plugins that give the container a point-to-point link: the peer is reached
 * through the host, never on-link. Docker re-applies the address with the
 * pool's prefix after moving the link, which makes the whole pool on-link, so
 * ARP for another container goes unanswered.
 */
const POINT_TO_POINT_TYPES = new Set(['ptp']);

/**
 * For point-to-point chains: routes that send the pool via the gateway again.
 * Each pool becomes its two halves (one bit longer than the on-link route
 * Docker's address adds, so they win), with the gateway itself kept on-link
 * by a host route.
 */
export function pointToPointRoutes(conflist: NetConfList, result: CniResult | undefined): StaticRoute[] {
  if (!conflist.plugins.some((p) => POINT_TO_POINT_TYPES.has(p.type))) return [];
  const routes: StaticRoute[] = [];
  for (const ip of result?.ips ?? []) {
    if (!ip.gateway) continue;
    // Docker sets the default route only through a gateway it finds on-link.
    const hostBits = isV6(ip.gateway) ? 128 : 32;
    routes.push({ Destination: `${ip.gateway}/${hostBits}`, RouteType: RouteType.connected });
    for (const half of splitInHalves(ip.address)) {
      routes.push({ Destination: half, RouteType: RouteType.nextHop, NextHop: ip.gateway });
    }
  }
  return routes;
}

/** The two halves of the network of an interface address, e.g. 10.1.2.3/24 -> 10.1.2.0/25, 10.1.2.128/25. */
export function splitInHalves(cidr: string): string[] {
  const parsed = parseCidr(cidr);
  if (!parsed) return [];
  const { family, network, prefix } = parsed.cidr;
  const bits = familyBits(family);
  if (prefix < 1 || prefix >= bits - 1) return [];
  const upper = network | (1n << BigInt(bits - prefix - 1));
  return [`${formatIp({ family, value: network })}/${prefix + 1}`, `${formatIp({ family, value: upper })}/${prefix + 1}`];
}

/** CNI routes other than the default ones become Join StaticRoutes (Docker re-creates them after the move). */
export function staticRoutesFromResult(result: CniResult | undefined): StaticRoute[] {
  const routes: StaticRoute[] = [];
  for (const route of result?.routes ?? []) {
    if (route.dst === '0.0.0.0/0' || route.dst === '::/0') continue;
    routes.push(
      route.gw
        ? { Destination: route.dst, RouteType: RouteType.nextHop, NextHop: route.gw }
        : { Destination: route.dst, RouteType: RouteType.connected },
    );
  }
  return routes;
}

/** Subnets of a network, for firewall rules. */
export const poolsOf = (subnets: NetworkSubnet[]): string[] => subnets.map((s) => s.pool);

/**
 * Docker's pools must be the conflist's own subnets, or containers get
 * addresses the chain's routes do not match. A family the conflist declares
 * nothing for is not checked (dhcp, or no IPAM at all).
 */
export function assertPoolsMatchConflist(conflist: NetConfList, pools: NetworkSubnet[]): void {
  const declared = confListSubnets(conflist);
  for (const { pool } of pools) {
    const parsed = parseCidr(pool);
    if (!parsed) continue;
    const ofFamily = declared.filter((s) => s.family === parsed.cidr.family);
    if (ofFamily.length === 0 || ofFamily.some((s) => s.subnet === formatCidr(parsed.cidr))) continue;
    throw invalid(
      `subnet ${pool} contradicts conflist "${conflist.name}", whose IPv${parsed.cidr.family} range is ${ofFamily.map((s) => s.subnet).join(', ')}` +
        ` (leave out --subnet and pass --ipam-driver <this driver> --ipam-opt cni.network=${conflist.name}, or pass --subnet ${ofFamily[0]?.subnet ?? ''})`,
    );
  }
}

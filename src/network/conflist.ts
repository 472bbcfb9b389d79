import { createHash } from 'node:crypto';
import type { CniResult, NetConfList, PluginConf } from '../cni/types.js';
import { RouteType, type StaticRoute } from '../docker/api.js';
import type { NetworkOptions } from './options.js';
import type { NetworkSubnet } from './records.js';

/** The CNI spec version of generated configs: the newest the Debian 1.1.1 plugins speak. */
export const GENERATED_CNI_VERSION = '1.0.0';

/** Deterministic bridge name from the network ID: ≤ 15 chars, unique per network. */
export function bridgeNameFor(networkId: string): string {
  return `dcni-${networkId.slice(0, 10)}`;
}

/** CNI network name (and so the cache key prefix) of a generated network. */
export function generatedCniName(networkId: string): string {
  return `dcni-${networkId.slice(0, 12)}`;
}

/** Host-side name of the link handed to Docker: deterministic from the endpoint ID, ≤ 15 chars. */
export function hostLinkNameFor(endpointId: string): string {
  const hex = /^[0-9a-f]{13}/.test(endpointId) ? endpointId.slice(0, 13) : createHash('sha256').update(endpointId).digest('hex').slice(0, 13);
  return `dc${hex}`;
}

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
  hasPortMappings: boolean;
}

const isV6 = (cidr: string): boolean => cidr.includes(':');

/**
 * The chain one endpoint runs: the network template with every IPAM section
 * replaced by `static` holding Docker's addresses, because Docker re-applies
 * its own address after moving the link and the two must agree. A generated
 * chain drops portmap when the endpoint publishes nothing (one spawn less).
 */
export function endpointConfList(template: NetConfList, generated: boolean, addressing: EndpointAddressing): NetConfList {
  const addresses = addressing.addresses.map((address) => {
    const gateway = isV6(address) ? addressing.gatewayV6 : addressing.gatewayV4;
    return gateway ? { address, gateway } : { address };
  });
  const plugins = template.plugins
    .filter((plugin) => !(generated && plugin.type === 'portmap' && !addressing.hasPortMappings))
    .map((plugin): PluginConf => {
      if (!plugin.ipam || typeof plugin.ipam.type !== 'string') return structuredClone(plugin);
      const ipam: Record<string, unknown> = { type: 'static', addresses };
      if (Array.isArray(plugin.ipam.routes)) ipam.routes = plugin.ipam.routes;
      if (plugin.ipam.dns && typeof plugin.ipam.dns === 'object') ipam.dns = plugin.ipam.dns;
      return { ...structuredClone(plugin), ipam: ipam as PluginConf['ipam'] };
    });
  const { bytes: _bytes, sourcePath: _sourcePath, ...rest } = template;
  return { ...structuredClone(rest), plugins };
}

/** The gateway to hand Docker for one family: the network's, else a default route in the CNI result. */
export function gatewayFromResult(result: CniResult | undefined, v6: boolean): string | undefined {
  const defaultDst = v6 ? '::/0' : '0.0.0.0/0';
  const route = result?.routes?.find((r) => r.dst === defaultDst && r.gw);
  if (route?.gw) return route.gw;
  return undefined;
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

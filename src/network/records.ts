import type { CniPortMapping, CniResult, NetConfList } from '../cni/types.js';
import type { StaticRoute } from '../docker/api.js';
import type { NetworkFirewallSpec } from '../host/firewall.js';
import type { BandwidthLimits } from './options.js';

/** One Docker address pool as CreateNetwork reported it. */
export interface NetworkSubnet {
  pool: string;
  /** Without prefix length; absent on internal/gateway-less pools. */
  gateway?: string;
}

/**
 * What docker-cni must remember about a network: Docker never replays CreateNetwork.
 * The policy flags are the firewall's own fields, so the two cannot drift apart.
 */
export interface NetworkRecord extends Pick<NetworkFirewallSpec, 'internal' | 'icc' | 'masquerade' | 'isolate'> {
  id: string;
  createdAt: string;
  /** generated: a bridge conflist built from Docker's data; conflist: a user's conflist from the conf dir. */
  mode: 'generated' | 'conflist';
  /** CNI network name (cache key part). */
  cniName: string;
  /** The chain template; per-endpoint addresses are filled in at CreateEndpoint. */
  conflist: NetConfList;
  /** Bridge to isolate/forward for (generated, or a user bridge conflist). */
  bridge?: string;
  ipv4: NetworkSubnet[];
  ipv6: NetworkSubnet[];
  /** Default host IP for published ports (com.docker.network.bridge.host_binding_ipv4). */
  hostBindingIp?: string;
  /** Default traffic shaping for the network's endpoints (cni.bandwidth.*). */
  bandwidth?: BandwidthLimits;
  /** The raw -o options, for `docker-cni` diagnostics. */
  options: Record<string, string>;
}

export type EndpointStatus = 'creating' | 'ready' | 'deleting';

/** Journaled per endpoint: a restart finishes or undoes whatever step was in flight. */
export interface EndpointRecord {
  id: string;
  networkId: string;
  status: EndpointStatus;
  createdAt: string;
  /** The link handed to Docker (host netns until Docker moves it), ≤ 15 chars. */
  hostLinkName: string;
  /** The ifname the CNI chain ran with, in the staging netns. */
  ifName: string;
  /** Staging netns in use while status is 'creating' (for recovery). */
  stagingNetns?: string;
  /** CIDRs Docker's IPAM gave (v4 and v6). */
  addresses: string[];
  mac?: string;
  portMappings: CniPortMapping[];
  /** The exact chain and args the ADD ran with, so DEL can replay it even without the CNI cache. */
  conflist: NetConfList;
  cniArgs: Array<[string, string]>;
  capabilityArgs: Record<string, unknown>;
  result?: CniResult;
  gatewayV4?: string;
  gatewayV6?: string;
  staticRoutes: StaticRoute[];
}

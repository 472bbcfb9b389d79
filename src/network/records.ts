import type { CniPortMapping, CniResult, NetConfList } from '../cni/types.js';
import type { StaticRoute } from '../docker/api.js';
import type { NetworkFirewallSpec } from '../host/firewall.js';
import { z } from 'zod';
import { versionedCodec } from '../state/record-codec.js';
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

// ---- stored form -----------------------------------------------------------------
// Nested CNI values (conflists, results) are checked for the fields the driver
// relies on and otherwise kept as written: they go back to plugins verbatim.

const ConfListShape = z.looseObject({
  cniVersion: z.string(),
  name: z.string(),
  plugins: z.array(z.looseObject({ type: z.string() })).min(1),
});

const SubnetShape = z.object({ pool: z.string(), gateway: z.string().optional() });

const BandwidthShape = z.object({
  ingressRate: z.number().optional(),
  ingressBurst: z.number().optional(),
  egressRate: z.number().optional(),
  egressBurst: z.number().optional(),
});

const NetworkRecordSchema = z.looseObject({
  version: z.literal(1),
  id: z.string().min(1),
  createdAt: z.string(),
  mode: z.enum(['generated', 'conflist']),
  cniName: z.string().min(1),
  conflist: ConfListShape,
  bridge: z.string().optional(),
  ipv4: z.array(SubnetShape),
  ipv6: z.array(SubnetShape),
  internal: z.boolean(),
  icc: z.boolean(),
  masquerade: z.boolean(),
  isolate: z.boolean(),
  hostBindingIp: z.string().optional(),
  bandwidth: BandwidthShape.optional(),
  options: z.record(z.string(), z.string()),
});

const EndpointRecordSchema = z.looseObject({
  version: z.literal(1),
  id: z.string().min(1),
  networkId: z.string().min(1),
  status: z.enum(['creating', 'ready', 'deleting']),
  createdAt: z.string(),
  hostLinkName: z.string().min(1),
  ifName: z.string().min(1),
  stagingNetns: z.string().optional(),
  addresses: z.array(z.string()),
  mac: z.string().optional(),
  portMappings: z.array(
    z.looseObject({
      hostPort: z.number(),
      containerPort: z.number(),
      protocol: z.enum(['tcp', 'udp', 'sctp']),
      hostIP: z.string().optional(),
    }),
  ),
  conflist: ConfListShape,
  cniArgs: z.array(z.tuple([z.string(), z.string()])),
  capabilityArgs: z.record(z.string(), z.unknown()),
  result: z.looseObject({ cniVersion: z.string() }).optional(),
  gatewayV4: z.string().optional(),
  gatewayV6: z.string().optional(),
  staticRoutes: z.array(z.looseObject({ Destination: z.string(), RouteType: z.number(), NextHop: z.string().optional() })),
});

/**
 * Version 1 is the format of every release so far; records written before
 * versions existed have no `version` field and read as version 1.
 */
export const NETWORK_CODEC = versionedCodec<NetworkRecord>({ current: 1, schema: NetworkRecordSchema });
export const ENDPOINT_CODEC = versionedCodec<EndpointRecord>({ current: 1, schema: EndpointRecordSchema });

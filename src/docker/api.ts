/**
 * The Docker side of the wire: libnetwork's remote NetworkDriver and IpamDriver
 * protocol. Every RPC path is defined once here, with the zod schema of its
 * request body. Nothing in this module knows about CNI.
 *
 * Docker sends no Content-Type and sometimes an empty body, and may add fields
 * in newer versions, so schemas accept unknown keys (they are dropped).
 */
import { z } from 'zod';

export const RPC = {
  activate: '/Plugin.Activate',
  network: {
    getCapabilities: '/NetworkDriver.GetCapabilities',
    createNetwork: '/NetworkDriver.CreateNetwork',
    allocateNetwork: '/NetworkDriver.AllocateNetwork',
    deleteNetwork: '/NetworkDriver.DeleteNetwork',
    freeNetwork: '/NetworkDriver.FreeNetwork',
    createEndpoint: '/NetworkDriver.CreateEndpoint',
    endpointOperInfo: '/NetworkDriver.EndpointOperInfo',
    deleteEndpoint: '/NetworkDriver.DeleteEndpoint',
    join: '/NetworkDriver.Join',
    leave: '/NetworkDriver.Leave',
    discoverNew: '/NetworkDriver.DiscoverNew',
    discoverDelete: '/NetworkDriver.DiscoverDelete',
    programExternalConnectivity: '/NetworkDriver.ProgramExternalConnectivity',
    revokeExternalConnectivity: '/NetworkDriver.RevokeExternalConnectivity',
  },
  ipam: {
    getCapabilities: '/IpamDriver.GetCapabilities',
    getDefaultAddressSpaces: '/IpamDriver.GetDefaultAddressSpaces',
    requestPool: '/IpamDriver.RequestPool',
    releasePool: '/IpamDriver.ReleasePool',
    requestAddress: '/IpamDriver.RequestAddress',
    releaseAddress: '/IpamDriver.ReleaseAddress',
  },
} as const;

/** The Accept/Content-Type Docker's plugin client speaks. */
export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** Largest request body accepted; Docker's real bodies are a few KiB. */
export const MAX_BODY_BYTES = 1024 * 1024;

// ---- well-known option keys -------------------------------------------------
export const OPT = {
  generic: 'com.docker.network.generic',
  enableIPv6: 'com.docker.network.enable_ipv6',
  internal: 'com.docker.network.internal',
  portMap: 'com.docker.network.portmap',
  exposedPorts: 'com.docker.network.endpoint.exposedports',
  gatewayData: 'com.docker.network.gateway',
  requestAddressType: 'RequestAddressType',
  bridgeName: 'com.docker.network.bridge.name',
  mtu: 'com.docker.network.driver.mtu',
  enableIpMasquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  enableIcc: 'com.docker.network.bridge.enable_icc',
  hostBindingIpv4: 'com.docker.network.bridge.host_binding_ipv4',
} as const;

// ---- primitives ---------------------------------------------------------------
/** Docker object IDs (64 hex in practice). Never contains '/', so safe in paths. */
export const DockerId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be 1-128 chars of [A-Za-z0-9_.-], starting alphanumeric');
const Cidr = z.string().max(64);
const OptionsMap = z.record(z.string(), z.unknown());

// ---- Plugin -----------------------------------------------------------------
export interface ActivateResponse {
  Implements: string[];
}

// ---- NetworkDriver ------------------------------------------------------------
export const IPAMData = z.object({
  AddressSpace: z.string().max(256).optional().default(''),
  Pool: Cidr,
  Gateway: Cidr.optional().default(''),
  AuxAddresses: z.record(z.string(), Cidr).nullish(),
});
export type IPAMData = z.infer<typeof IPAMData>;

export const CreateNetworkRequest = z.object({
  NetworkID: DockerId,
  Options: OptionsMap.nullish(),
  IPv4Data: z.array(IPAMData).max(64).nullish(),
  IPv6Data: z.array(IPAMData).max(64).nullish(),
});
export type CreateNetworkRequest = z.infer<typeof CreateNetworkRequest>;

export const NetworkRequest = z.object({ NetworkID: DockerId });
export type DeleteNetworkRequest = z.infer<typeof NetworkRequest>;

export const EndpointInterface = z.object({
  Address: z.string().max(64).optional().default(''),
  AddressIPv6: z.string().max(64).optional().default(''),
  MacAddress: z.string().max(64).optional().default(''),
});
export type EndpointInterface = z.infer<typeof EndpointInterface>;

export const CreateEndpointRequest = z.object({
  NetworkID: DockerId,
  EndpointID: DockerId,
  Interface: EndpointInterface.nullish(),
  Options: OptionsMap.nullish(),
});
export type CreateEndpointRequest = z.infer<typeof CreateEndpointRequest>;

export interface CreateEndpointResponse {
  /** Only fields Docker left empty may be filled. */
  Interface?: Partial<EndpointInterface>;
}

export const EndpointRequest = z.object({ NetworkID: DockerId, EndpointID: DockerId });
export type EndpointRequest = z.infer<typeof EndpointRequest>;

export const JoinRequest = z.object({
  NetworkID: DockerId,
  EndpointID: DockerId,
  SandboxKey: z.string().max(4096).optional().default(''),
  Options: OptionsMap.nullish(),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const RouteType = { nextHop: 0, connected: 1 } as const;
export interface StaticRoute {
  Destination: string;
  RouteType: number;
  NextHop?: string;
}
export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: StaticRoute[];
  DisableGatewayService?: boolean;
}

export const ExternalConnectivityRequest = z.object({
  NetworkID: DockerId,
  EndpointID: DockerId,
  Options: OptionsMap.nullish(),
});
export type ExternalConnectivityRequest = z.infer<typeof ExternalConnectivityRequest>;

export interface NetworkCapabilities {
  Scope: 'local' | 'global';
  ConnectivityScope: 'local' | 'global';
}

/** One entry of com.docker.network.portmap (Proto is an IP protocol number). */
export const PortBinding = z.object({
  Proto: z.number().int().min(0).max(255),
  IP: z.string().max(64).optional().default(''),
  Port: z.number().int().min(0).max(65535),
  HostIP: z.string().max(64).optional().default(''),
  HostPort: z.number().int().min(0).max(65535).optional().default(0),
  HostPortEnd: z.number().int().min(0).max(65535).optional().default(0),
});
export type PortBinding = z.infer<typeof PortBinding>;
export const PortBindings = z.array(PortBinding).max(4096);

export const IP_PROTO = { tcp: 6, udp: 17, sctp: 132 } as const;

// ---- IpamDriver ---------------------------------------------------------------
export interface IpamCapabilities {
  RequiresMACAddress: boolean;
  RequiresRequestReplay: boolean;
}
export interface AddressSpacesResponse {
  LocalDefaultAddressSpace: string;
  GlobalDefaultAddressSpace: string;
}

export const RequestPoolRequest = z.object({
  AddressSpace: z.string().max(256).optional().default(''),
  Pool: z.string().max(64).optional().default(''),
  SubPool: z.string().max(64).optional().default(''),
  Options: z.record(z.string(), z.string()).nullish(),
  V6: z.boolean().optional().default(false),
});
export type RequestPoolRequest = z.infer<typeof RequestPoolRequest>;
export interface RequestPoolResponse {
  PoolID: string;
  Pool: string;
  Data?: Record<string, string>;
}

export const PoolId = z.string().min(1).max(256);
export const ReleasePoolRequest = z.object({ PoolID: PoolId });
export type ReleasePoolRequest = z.infer<typeof ReleasePoolRequest>;

export const RequestAddressRequest = z.object({
  PoolID: PoolId,
  Address: z.string().max(64).optional().default(''),
  Options: z.record(z.string(), z.string()).nullish(),
});
export type RequestAddressRequest = z.infer<typeof RequestAddressRequest>;
export interface RequestAddressResponse {
  Address: string;
  Data?: Record<string, string>;
}

export const ReleaseAddressRequest = z.object({ PoolID: PoolId, Address: z.string().min(1).max(64) });
export type ReleaseAddressRequest = z.infer<typeof ReleaseAddressRequest>;

// ---- the driver interfaces the HTTP layer calls -------------------------------
export interface NetworkDriverApi {
  getCapabilities(): NetworkCapabilities;
  createNetwork(req: CreateNetworkRequest): Promise<void>;
  deleteNetwork(req: DeleteNetworkRequest): Promise<void>;
  createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse>;
  endpointOperInfo(req: EndpointRequest): Promise<{ Value: Record<string, unknown> }>;
  deleteEndpoint(req: EndpointRequest): Promise<void>;
  join(req: JoinRequest): Promise<JoinResponse>;
  leave(req: EndpointRequest): Promise<void>;
  programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void>;
  revokeExternalConnectivity(req: ExternalConnectivityRequest): Promise<void>;
}

export interface IpamDriverApi {
  getCapabilities(): IpamCapabilities;
  getDefaultAddressSpaces(): AddressSpacesResponse;
  requestPool(req: RequestPoolRequest): Promise<RequestPoolResponse>;
  releasePool(req: ReleasePoolRequest): Promise<void>;
  requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse>;
  releaseAddress(req: ReleaseAddressRequest): Promise<void>;
}

/**
 * One realistic request per RPC, shaped like what dockerd 20.10 sends, with the
 * driver method it must reach and the schema that validates it. Shared by the
 * HTTP tests and the fuzz suite.
 */
import type { z } from 'zod';
import {
  CreateEndpointRequest,
  CreateNetworkRequest,
  EndpointRequest,
  ExternalConnectivityRequest,
  JoinRequest,
  NetworkRequest,
  RPC,
  ReleaseAddressRequest,
  ReleasePoolRequest,
  RequestAddressRequest,
  RequestPoolRequest,
} from '../../../src/docker/api.js';
import type { IpamMethod, NetworkMethod } from '../../helpers/fake-drivers.js';

export const NET_ID = 'a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0abcd';
export const EP_ID = 'f0e1d2c3b4a5f0e1d2c3b4a5f0e1d2c3b4a5f0e1d2c3b4a5f0e1d2c3b4a5f0e1';

export type DriverTarget = { api: 'network'; method: NetworkMethod } | { api: 'ipam'; method: IpamMethod };

export interface RpcSample {
  path: string;
  /** A body Docker would send; undefined means Docker sends none. */
  body: Record<string, unknown> | undefined;
  /** The driver method the body must reach, or null for RPCs answered by the HTTP layer. */
  target: DriverTarget | null;
  /** The schema the HTTP layer validates with; null when the body's content is ignored. */
  schema: z.ZodType | null;
  /** Status for a valid request. */
  okStatus: 200 | 404;
}

const portMap = JSON.stringify([{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8081, HostPortEnd: 8081 }]);

export const RPC_SAMPLES: readonly RpcSample[] = [
  { path: RPC.activate, body: undefined, target: null, schema: null, okStatus: 200 },
  {
    path: RPC.network.getCapabilities,
    body: undefined,
    target: { api: 'network', method: 'getCapabilities' },
    schema: null,
    okStatus: 200,
  },
  {
    path: RPC.network.createNetwork,
    body: {
      NetworkID: NET_ID,
      Options: {
        'com.docker.network.enable_ipv6': false,
        'com.docker.network.generic': { 'cni.conflist': 'bridge' },
      },
      IPv4Data: [
        { AddressSpace: 'CniLocal', Pool: '10.231.1.0/24', Gateway: '10.231.1.1/24', AuxAddresses: { r: '10.231.1.9/24' } },
      ],
      IPv6Data: [],
    },
    target: { api: 'network', method: 'createNetwork' },
    schema: CreateNetworkRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.deleteNetwork,
    body: { NetworkID: NET_ID },
    target: { api: 'network', method: 'deleteNetwork' },
    schema: NetworkRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.createEndpoint,
    body: {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      Interface: { Address: '10.231.1.2/24', AddressIPv6: '', MacAddress: '' },
      Options: { 'com.docker.network.portmap': JSON.parse(portMap) as unknown, 'com.docker.network.endpoint.exposedports': [] },
    },
    target: { api: 'network', method: 'createEndpoint' },
    schema: CreateEndpointRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.endpointOperInfo,
    body: { NetworkID: NET_ID, EndpointID: EP_ID },
    target: { api: 'network', method: 'endpointOperInfo' },
    schema: EndpointRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.deleteEndpoint,
    body: { NetworkID: NET_ID, EndpointID: EP_ID },
    target: { api: 'network', method: 'deleteEndpoint' },
    schema: EndpointRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.join,
    body: { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} },
    target: { api: 'network', method: 'join' },
    schema: JoinRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.leave,
    body: { NetworkID: NET_ID, EndpointID: EP_ID },
    target: { api: 'network', method: 'leave' },
    schema: EndpointRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.programExternalConnectivity,
    body: { NetworkID: NET_ID, EndpointID: EP_ID, Options: { 'com.docker.network.portmap': JSON.parse(portMap) as unknown } },
    target: { api: 'network', method: 'programExternalConnectivity' },
    schema: ExternalConnectivityRequest,
    okStatus: 200,
  },
  {
    path: RPC.network.revokeExternalConnectivity,
    body: { NetworkID: NET_ID, EndpointID: EP_ID, Options: null },
    target: { api: 'network', method: 'revokeExternalConnectivity' },
    schema: ExternalConnectivityRequest,
    okStatus: 200,
  },
  { path: RPC.network.discoverNew, body: { DiscoveryType: 1, DiscoveryData: {} }, target: null, schema: null, okStatus: 200 },
  { path: RPC.network.discoverDelete, body: { DiscoveryType: 1, DiscoveryData: {} }, target: null, schema: null, okStatus: 200 },
  { path: RPC.network.allocateNetwork, body: { NetworkID: NET_ID }, target: null, schema: null, okStatus: 404 },
  { path: RPC.network.freeNetwork, body: { NetworkID: NET_ID }, target: null, schema: null, okStatus: 404 },
  {
    path: RPC.ipam.getCapabilities,
    body: undefined,
    target: { api: 'ipam', method: 'getCapabilities' },
    schema: null,
    okStatus: 200,
  },
  {
    path: RPC.ipam.getDefaultAddressSpaces,
    body: undefined,
    target: { api: 'ipam', method: 'getDefaultAddressSpaces' },
    schema: null,
    okStatus: 200,
  },
  {
    path: RPC.ipam.requestPool,
    body: { AddressSpace: 'CniLocal', Pool: '10.231.1.0/24', SubPool: '', Options: {}, V6: false },
    target: { api: 'ipam', method: 'requestPool' },
    schema: RequestPoolRequest,
    okStatus: 200,
  },
  {
    path: RPC.ipam.releasePool,
    body: { PoolID: 'CniLocal/10.231.1.0/24' },
    target: { api: 'ipam', method: 'releasePool' },
    schema: ReleasePoolRequest,
    okStatus: 200,
  },
  {
    path: RPC.ipam.requestAddress,
    body: {
      PoolID: 'CniLocal/10.231.1.0/24',
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    },
    target: { api: 'ipam', method: 'requestAddress' },
    schema: RequestAddressRequest,
    okStatus: 200,
  },
  {
    path: RPC.ipam.releaseAddress,
    body: { PoolID: 'CniLocal/10.231.1.0/24', Address: '10.231.1.2' },
    target: { api: 'ipam', method: 'releaseAddress' },
    schema: ReleaseAddressRequest,
    okStatus: 200,
  },
];

/** Every RPC path declared in src/docker/api.ts, so tests notice a route added there but not here. */
export function allRpcPaths(): string[] {
  const paths: string[] = [];
  const walk = (node: unknown): void => {
    if (typeof node === 'string') paths.push(node);
    else if (node && typeof node === 'object') Object.values(node).forEach(walk);
  };
  walk(RPC);
  return paths.sort();
}

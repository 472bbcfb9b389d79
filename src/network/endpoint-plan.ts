/**
 * What one endpoint will be, decided before anything is touched: the chain it
 * runs, its capability args and CNI_ARGS, and the record Docker is answered
 * from. Pure: no I/O here, so every rule can be tested with plain values.
 * The steps that carry a plan out (journal -> ADD -> move -> record) are in
 * endpoint-ops.ts.
 */
import type { CniPortMapping, CniResult, NetConfList, RuntimeConf } from '../cni/types.js';
import { OPT, type CreateEndpointRequest, type CreateEndpointResponse, type PortBinding } from '../docker/api.js';
import { invalid } from '../errors.js';
import { CHAIN_IFNAME, CNI_ARG, hostLinkNameFor } from '../names.js';
import { looksLikeCidr } from '../util/ip-math.js';
import { chainDeclaresCapability, endpointConfList, gatewayFromResult, pointToPointRoutes, staticRoutesFromResult } from './conflist.js';
import { mergeBandwidth, parseEndpointOptions, type BandwidthLimits } from './options.js';
import { readPortBindings } from './ports.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

/** A CreateEndpoint request, validated against its network; ports are not picked yet. */
export interface EndpointRequestInputs {
  addresses: string[];
  mac?: string;
  bandwidth?: BandwidthLimits;
  bindings: PortBinding[];
  /** `cni.args.*` endpoint options, in the given order. */
  extraCniArgs: Array<[string, string]>;
}

export function readEndpointRequest(network: NetworkRecord, req: CreateEndpointRequest): EndpointRequestInputs {
  const addresses = [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);
  if (addresses.length === 0) {
    throw invalid(`no address given for the endpoint: docker-cni needs an IPAM driver (use --ipam-driver cni or Docker's default)`);
  }
  for (const address of addresses) assertCidr(address);
  const mac = req.Interface?.MacAddress || undefined;
  if (mac && !/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/.test(mac)) throw invalid(`invalid MAC address "${mac}"`);

  const endpointOptions = parseEndpointOptions(req.Options);
  const bandwidth = mergeBandwidth(network.bandwidth, endpointOptions.bandwidth);
  if (bandwidth && network.mode === 'conflist' && !chainDeclaresCapability(network.conflist, 'bandwidth')) {
    throw invalid(`cni.bandwidth.* needs a plugin that declares the bandwidth capability in conflist ${network.cniName}`);
  }
  return {
    addresses,
    ...(mac ? { mac } : {}),
    ...(bandwidth ? { bandwidth } : {}),
    bindings: readPortBindings(req.Options?.[OPT.portMap]),
    extraCniArgs: endpointOptions.cniArgs,
  };
}

/** The journal entry written before the chain runs: everything DEL needs to undo it. */
export function planEndpoint(
  network: NetworkRecord,
  req: CreateEndpointRequest,
  inputs: EndpointRequestInputs,
  portMappings: CniPortMapping[],
  stagingNetns: string,
): EndpointRecord {
  const conflist = endpointConfList(network.conflist, network.mode === 'generated', {
    addresses: inputs.addresses,
    gatewayV4: dockerGateway(network, 4),
    gatewayV6: dockerGateway(network, 6),
    hasPortMappings: portMappings.length > 0,
    hasBandwidth: inputs.bandwidth !== undefined,
  });
  const capabilityArgs: Record<string, unknown> = {};
  if (portMappings.length > 0) capabilityArgs.portMappings = portMappings;
  if (inputs.mac) capabilityArgs.mac = inputs.mac;
  if (inputs.bandwidth) capabilityArgs.bandwidth = inputs.bandwidth;
  const cniArgs: Array<[string, string]> = [
    [CNI_ARG.ignoreUnknown, '1'],
    [CNI_ARG.networkId, req.NetworkID],
    [CNI_ARG.endpointId, req.EndpointID],
    ...inputs.extraCniArgs,
  ];
  return {
    id: req.EndpointID,
    networkId: req.NetworkID,
    status: 'creating',
    createdAt: new Date().toISOString(),
    hostLinkName: hostLinkNameFor(req.EndpointID),
    ifName: CHAIN_IFNAME,
    stagingNetns,
    addresses: inputs.addresses,
    ...(inputs.mac ? { mac: inputs.mac } : {}),
    portMappings,
    conflist,
    cniArgs,
    capabilityArgs,
    staticRoutes: [],
  };
}

/** The record once the chain has run: what Join and EndpointOperInfo answer from. */
export function readyEndpoint(network: NetworkRecord, record: EndpointRecord, result: CniResult): EndpointRecord {
  const ready: EndpointRecord = {
    ...record,
    status: 'ready',
    result,
    mac: record.mac ?? macFromResult(result, record.ifName),
    staticRoutes: [...staticRoutesFromResult(result), ...pointToPointRoutes(record.conflist, result)],
    ...gateways(network, result),
  };
  delete ready.stagingNetns;
  if (!ready.mac) delete ready.mac;
  return ready;
}

function dockerGateway(network: NetworkRecord, family: 4 | 6): string | undefined {
  return (family === 4 ? network.ipv4 : network.ipv6).find((s) => s.gateway)?.gateway;
}

function gateways(network: NetworkRecord, result: CniResult): Pick<EndpointRecord, 'gatewayV4' | 'gatewayV6'> {
  if (network.internal) return {};
  // A user chain may route through its own gateway; otherwise Docker's gateway
  // holds (without one, Docker would attach the container to docker_gwbridge).
  const docker4 = dockerGateway(network, 4);
  const docker6 = dockerGateway(network, 6);
  const v4 = network.mode === 'generated' ? docker4 : (gatewayFromResult(result, false) ?? docker4);
  const v6 = network.mode === 'generated' ? docker6 : (gatewayFromResult(result, true) ?? docker6);
  return { ...(v4 ? { gatewayV4: v4 } : {}), ...(v6 ? { gatewayV6: v6 } : {}) };
}

/** Docker accepts only fields it left empty; changing a supplied one makes it roll back. */
export function interfaceReply(req: CreateEndpointRequest, record: EndpointRecord): CreateEndpointResponse {
  if (!req.Interface?.MacAddress && record.mac) return { Interface: { MacAddress: record.mac } };
  return {};
}

export function runtimeConfOf(record: EndpointRecord, netnsPath: string): RuntimeConf {
  return {
    containerId: record.id,
    netns: netnsPath,
    ifName: record.ifName,
    args: record.cniArgs,
    capabilityArgs: record.capabilityArgs,
  };
}

/** A chain that masquerades per container finds its rules through the link's address at DEL. */
export function chainMasquerades(conflist: NetConfList): boolean {
  return conflist.plugins.some((p) => p.ipMasq === true);
}

export function assertCidr(value: string): void {
  if (!looksLikeCidr(value)) throw invalid(`invalid address "${value}": expected a CIDR`);
}

function macFromResult(result: CniResult, ifName: string): string | undefined {
  return result.interfaces?.find((i) => i.name === ifName && i.sandbox)?.mac ?? result.interfaces?.find((i) => i.name === ifName)?.mac;
}

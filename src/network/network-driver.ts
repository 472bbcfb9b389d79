import type { CniResult, NetConfList, RuntimeConf } from '../cni/types.js';
import {
  OPT,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type CreateNetworkRequest,
  type DeleteNetworkRequest,
  type EndpointRequest,
  type ExternalConnectivityRequest,
  type IPAMData,
  type JoinRequest,
  type JoinResponse,
  type NetworkCapabilities,
  type NetworkDriverApi,
} from '../docker/api.js';
import { PluginError, invalid, notFound, wrapError } from '../errors.js';
import type { StagingLease } from '../host/staging-netns.js';
import type { NetworkFirewallSpec } from '../host/firewall.js';
import type { Logger } from '../log.js';
import type { RecordStore } from '../state/record-store.js';
import { looksLikeCidr } from '../util/ip-math.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { Stopwatch } from '../util/stopwatch.js';
import { bridgeNameFor, CHAIN_IFNAME, CNI_ARG, generatedCniName, hostLinkNameFor, shortId } from '../names.js';
import {
  chainDeclaresCapability,
  endpointConfList,
  gatewayFromResult,
  generatedConfList,
  pointToPointRoutes,
  poolsOf,
  staticRoutesFromResult,
} from './conflist.js';
import { mergeBandwidth, parseEndpointOptions, parseNetworkOptions, readGenericOptions } from './options.js';
import { allocatePortMappings, readPortBindings, type PortProbe } from './ports.js';
import type { EndpointRecord, NetworkRecord, NetworkSubnet } from './records.js';

/** libcni's chain operations, as the driver needs them. */
export interface CniChainRunner {
  addNetworkList(list: NetConfList, rt: RuntimeConf): Promise<CniResult>;
  delNetworkList(list: NetConfList | undefined, rt: RuntimeConf): Promise<void>;
}

export interface NetworkDriverDeps {
  networks: RecordStore<NetworkRecord>;
  endpoints: RecordStore<EndpointRecord>;
  cni: CniChainRunner;
  /** Finds a user conflist by name in the conf dir (NOT_FOUND if absent). */
  loadConfList(name: string): Promise<NetConfList>;
  /** Resolves a plugin binary (NOT_FOUND if absent), to fail network creation early. */
  locatePlugin(type: string): Promise<string>;
  staging: {
    acquire(): Promise<StagingLease>;
    release(lease: StagingLease, dirty?: boolean): void;
    listExisting(): Promise<string[]>;
  };
  links: {
    exists(name: string): Promise<boolean>;
    moveToHost(netnsName: string, ifName: string, hostName: string): Promise<void>;
    moveToNetns(hostName: string, netnsName: string, ifName: string): Promise<void>;
    addAddresses(netnsName: string, ifName: string, cidrs: readonly string[]): Promise<void>;
    deleteIfExists(name: string): Promise<void>;
  };
  firewall: {
    ensureNetwork(spec: NetworkFirewallSpec): Promise<void>;
    removeNetwork(networkId: string): Promise<void>;
  };
  probePort: PortProbe;
  logger: Logger;
}

/**
 * Docker's NetworkDriver carried out with CNI. The chain runs at CreateEndpoint
 * in a private staging netns (the container's netns usually does not exist
 * yet); the resulting interface is moved into our netns under a unique name and
 * handed to Docker at Join. Join itself does no work.
 */
export class NetworkDriver implements NetworkDriverApi {
  private readonly networks = new Map<string, NetworkRecord>();
  /** Endpoint records by ID, for port bookkeeping and cheap Join. */
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly locks = new KeyedLock();
  /** Ports picked by CreateEndpoints still in flight. */
  private readonly pendingPorts = new Map<string, Pick<EndpointRecord, 'portMappings'>>();

  constructor(private readonly deps: NetworkDriverDeps) {}

  /** Loads persisted state and finishes or undoes operations a crash interrupted. Call before serving. */
  async init(options: { recover?: boolean } = {}): Promise<void> {
    const recover = options.recover ?? true;
    const log = this.deps.logger;
    await this.deps.networks.ensureDir();
    await this.deps.endpoints.ensureDir();
    for (const { id, record } of await this.deps.networks.list((bad, err) => log.error({ err, id: bad }, 'corrupt network record'))) {
      this.networks.set(id, record);
    }
    for (const { id, record } of await this.deps.endpoints.list((bad, err) => log.error({ err, id: bad }, 'corrupt endpoint record'))) {
      if (record.status === 'ready' || !recover) {
        this.endpoints.set(id, record);
        continue;
      }
      log.warn({ endpoint: id, status: record.status }, 'finishing an endpoint operation interrupted by a restart');
      try {
        await this.teardown(record, record.status === 'creating' ? record.stagingNetns : undefined);
      } catch (err) {
        log.error({ err, endpoint: id }, 'could not finish interrupted endpoint operation; reconciliation will retry');
        this.endpoints.set(id, record);
      }
    }
    log.info({ networks: this.networks.size, endpoints: this.endpoints.size }, 'network driver state loaded');
  }

  /** Re-installs per-network iptables rules (after a restart or a firewall flush). Background only. */
  async ensureAllNetworkRules(): Promise<void> {
    for (const record of this.networks.values()) {
      const spec = this.firewallSpec(record);
      if (spec) await this.deps.firewall.ensureNetwork(spec);
    }
  }

  listNetworks(): NetworkRecord[] {
    return [...this.networks.values()];
  }

  listEndpoints(): EndpointRecord[] {
    return [...this.endpoints.values()];
  }

  getCapabilities(): NetworkCapabilities {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  // ---- networks ---------------------------------------------------------------

  async createNetwork(req: CreateNetworkRequest): Promise<void> {
    await this.locks.withLock(`net:${req.NetworkID}`, async () => {
      try {
        if (this.networks.has(req.NetworkID)) return;
        const record = await this.buildNetworkRecord(req);
        const spec = this.firewallSpec(record);
        // Listed before its rules exist, so a concurrent reconciliation pass
        // never sees tagged rules without their (young, hence protected) network.
        this.networks.set(record.id, record);
        if (spec) await this.deps.firewall.ensureNetwork(spec);
        await this.deps.networks.put(record.id, record);
        this.deps.logger.info({ network: record.id, mode: record.mode, cni: record.cniName, bridge: record.bridge }, 'network created');
      } catch (err) {
        this.networks.delete(req.NetworkID);
        await this.deps.firewall.removeNetwork(req.NetworkID).catch(() => undefined);
        throw wrapError(err, 'CreateNetwork');
      }
    });
  }

  private async buildNetworkRecord(req: CreateNetworkRequest): Promise<NetworkRecord> {
    const rawOptions = readGenericOptions(req.Options);
    const opts = parseNetworkOptions(rawOptions);
    const internal = isTrue(req.Options?.[OPT.internal]);
    const ipv4 = subnetsOf(req.IPv4Data, internal);
    const ipv6 = subnetsOf(req.IPv6Data, internal);
    const base = {
      id: req.NetworkID,
      createdAt: new Date().toISOString(),
      ipv4,
      ipv6,
      internal,
      icc: opts.icc,
      masquerade: opts.masquerade && !internal,
      isolate: opts.isolate,
      options: rawOptions,
      ...(opts.hostBindingIp ? { hostBindingIp: opts.hostBindingIp } : {}),
      ...(opts.bandwidth ? { bandwidth: opts.bandwidth } : {}),
    };
    if (opts.cniNetwork !== undefined) {
      const conflist = await this.deps.loadConfList(opts.cniNetwork);
      for (const plugin of conflist.plugins) {
        await this.deps.locatePlugin(plugin.type);
        if (plugin.ipam?.type) await this.deps.locatePlugin('static');
      }
      if (opts.bandwidth && !chainDeclaresCapability(conflist, 'bandwidth')) {
        throw invalid(
          `cni.bandwidth.* options need a plugin that declares "capabilities": {"bandwidth": true} in conflist ${conflist.name} (e.g. the bandwidth plugin)`,
        );
      }
      this.warnAboutLostSysctls(conflist);
      const { bytes: _bytes, ...storable } = conflist;
      const first = conflist.plugins[0];
      const bridge = first?.type === 'bridge' ? String(first.bridge ?? 'cni0') : undefined;
      return { ...base, mode: 'conflist', cniName: conflist.name, conflist: storable, ...(bridge ? { bridge } : {}) };
    }
    const bridge = opts.bridge ?? bridgeNameFor(req.NetworkID);
    const clash = [...this.networks.values()].find((n) => n.bridge === bridge);
    if (clash) throw new PluginError('CONFLICT', `bridge ${bridge} is already used by network ${shortId(clash.id)}`);
    const hasGateway = !internal && [...ipv4, ...ipv6].some((s) => s.gateway);
    for (const type of ['bridge', 'static', 'portmap', ...(opts.bandwidth ? ['bandwidth'] : [])]) await this.deps.locatePlugin(type);
    return {
      ...base,
      mode: 'generated',
      cniName: generatedCniName(req.NetworkID),
      conflist: generatedConfList(req.NetworkID, opts, bridge, hasGateway),
      bridge,
    };
  }

  /**
   * The chain runs in a staging netns and the link is then moved: namespace-wide
   * sysctls stay behind in the staging netns and the kernel resets per-interface
   * ones on the move. Link attributes (mtu, mac, promisc) survive.
   */
  private warnAboutLostSysctls(conflist: NetConfList): void {
    const tuning = conflist.plugins.filter((p) => p.type === 'tuning' && p.sysctl && typeof p.sysctl === 'object');
    if (tuning.length === 0) return;
    this.deps.logger.warn(
      { cni: conflist.name, sysctl: tuning.map((p) => p.sysctl) },
      'tuning sysctls do not reach the container (the chain runs in a staging netns); use docker run --sysctl instead. mtu, mac and promisc do apply',
    );
  }

  async deleteNetwork(req: DeleteNetworkRequest): Promise<void> {
    await this.locks.withLock(`net:${req.NetworkID}`, async () => {
      try {
        const record = this.networks.get(req.NetworkID);
        await this.deps.firewall.removeNetwork(req.NetworkID);
        if (record?.mode === 'generated' && record.bridge) await this.deps.links.deleteIfExists(record.bridge);
        await this.deps.networks.delete(req.NetworkID);
        this.networks.delete(req.NetworkID);
        this.deps.logger.info({ network: req.NetworkID }, 'network deleted');
      } catch (err) {
        throw wrapError(err, 'DeleteNetwork');
      }
    });
  }

  private firewallSpec(record: NetworkRecord): NetworkFirewallSpec | undefined {
    if (!record.bridge) return undefined;
    return {
      networkId: record.id,
      bridge: record.bridge,
      subnetsV4: poolsOf(record.ipv4),
      subnetsV6: poolsOf(record.ipv6),
      internal: record.internal,
      icc: record.icc,
      // A user conflist masquerades itself (ipMasq) if it wants to.
      masquerade: record.mode === 'generated' && record.masquerade,
      isolate: record.isolate,
    };
  }

  // ---- endpoints --------------------------------------------------------------

  async createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    return this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        return await this.createEndpointLocked(req);
      } catch (err) {
        throw wrapError(err, `CreateEndpoint ${shortId(req.EndpointID)}`);
      } finally {
        this.pendingPorts.delete(req.EndpointID);
      }
    });
  }

  private async createEndpointLocked(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    const network = this.networks.get(req.NetworkID);
    if (!network) throw notFound(`network ${shortId(req.NetworkID)} is not known to docker-cni`);
    // init() loaded every record, so memory is authoritative: no disk read on the start path.
    const existing = this.endpoints.get(req.EndpointID);
    if (existing?.status === 'ready' && existing.networkId === req.NetworkID) return this.interfaceReply(req, existing);
    if (existing) await this.teardown(existing, existing.stagingNetns);

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
    const bindings = readPortBindings(req.Options?.[OPT.portMap]);
    // One allocator at a time, and its picks stay reserved until the endpoint
    // is recorded: Docker runs CreateEndpoint of different networks in parallel.
    const portMappings =
      bindings.length === 0
        ? []
        : await this.locks.withLock('ports', async () => {
            const mappings = await allocatePortMappings(bindings, {
              ...(network.hostBindingIp ? { defaultHostIp: network.hostBindingIp } : {}),
              inUse: [...this.endpoints.values(), ...this.pendingPorts.values()].flatMap((e) => e.portMappings),
              probe: this.deps.probePort,
            });
            this.pendingPorts.set(req.EndpointID, { portMappings: mappings });
            return mappings;
          });
    const generated = network.mode === 'generated';
    const conflist = endpointConfList(network.conflist, generated, {
      addresses,
      gatewayV4: network.ipv4.find((s) => s.gateway)?.gateway,
      gatewayV6: network.ipv6.find((s) => s.gateway)?.gateway,
      hasPortMappings: portMappings.length > 0,
      hasBandwidth: bandwidth !== undefined,
    });
    const capabilityArgs: Record<string, unknown> = {};
    if (portMappings.length > 0) capabilityArgs.portMappings = portMappings;
    if (mac) capabilityArgs.mac = mac;
    if (bandwidth) capabilityArgs.bandwidth = bandwidth;
    const cniArgs: Array<[string, string]> = [
      [CNI_ARG.ignoreUnknown, '1'],
      [CNI_ARG.networkId, req.NetworkID],
      [CNI_ARG.endpointId, req.EndpointID],
      ...endpointOptions.cniArgs,
    ];
    const watch = new Stopwatch();
    const lease = await this.deps.staging.acquire();
    watch.lap('acquire');
    const record: EndpointRecord = {
      id: req.EndpointID,
      networkId: req.NetworkID,
      status: 'creating',
      createdAt: new Date().toISOString(),
      hostLinkName: hostLinkNameFor(req.EndpointID),
      ifName: CHAIN_IFNAME,
      stagingNetns: lease.name,
      addresses,
      ...(mac ? { mac } : {}),
      portMappings,
      conflist,
      cniArgs,
      capabilityArgs,
      staticRoutes: [],
    };
    let released = false;
    try {
      await this.deps.endpoints.put(record.id, record);
      this.endpoints.set(record.id, record);
      watch.lap('journal');
      const rt = this.runtimeConf(record, lease.path);
      const result = await this.deps.cni.addNetworkList(conflist, rt);
      watch.lap('cniAdd');
      try {
        await this.deps.links.moveToHost(lease.name, CHAIN_IFNAME, record.hostLinkName);
        watch.lap('move');
      } catch (err) {
        await this.deps.cni.delNetworkList(conflist, rt).catch(() => undefined);
        throw err;
      }
      this.deps.staging.release(lease);
      released = true;
      const ready: EndpointRecord = {
        ...record,
        status: 'ready',
        result,
        mac: mac ?? macFromResult(result, CHAIN_IFNAME),
        staticRoutes: [...staticRoutesFromResult(result), ...pointToPointRoutes(conflist, result)],
        ...this.gateways(network, result),
      };
      delete ready.stagingNetns;
      if (!ready.mac) delete ready.mac;
      await this.deps.endpoints.put(ready.id, ready);
      this.endpoints.set(ready.id, ready);
      watch.lap('record');
      this.deps.logger.debug({ endpoint: ready.id, phases: watch.laps }, 'endpoint created');
      if (portMappings.length > 0) {
        this.deps.logger.info({ endpoint: ready.id, ports: portMappings }, 'published ports');
      }
      return this.interfaceReply(req, ready);
    } catch (err) {
      if (!released) this.deps.staging.release(lease, true);
      await this.deps.endpoints.delete(record.id).catch(() => undefined);
      this.endpoints.delete(record.id);
      throw err;
    }
  }

  private gateways(network: NetworkRecord, result: CniResult): Pick<EndpointRecord, 'gatewayV4' | 'gatewayV6'> {
    if (network.internal) return {};
    // A user chain may route through its own gateway; otherwise Docker's gateway
    // holds (without one, Docker would attach the container to docker_gwbridge).
    const docker4 = network.ipv4.find((s) => s.gateway)?.gateway;
    const docker6 = network.ipv6.find((s) => s.gateway)?.gateway;
    const v4 = network.mode === 'generated' ? docker4 : (gatewayFromResult(result, false) ?? docker4);
    const v6 = network.mode === 'generated' ? docker6 : (gatewayFromResult(result, true) ?? docker6);
    return { ...(v4 ? { gatewayV4: v4 } : {}), ...(v6 ? { gatewayV6: v6 } : {}) };
  }

  /** Docker accepts only fields it left empty; changing a supplied one makes it roll back. */
  private interfaceReply(req: CreateEndpointRequest, record: EndpointRecord): CreateEndpointResponse {
    if (!req.Interface?.MacAddress && record.mac) return { Interface: { MacAddress: record.mac } };
    return {};
  }

  private runtimeConf(record: EndpointRecord, netnsPath: string): RuntimeConf {
    return {
      containerId: record.id,
      netns: netnsPath,
      ifName: record.ifName,
      args: record.cniArgs,
      capabilityArgs: record.capabilityArgs,
    };
  }

  async deleteEndpoint(req: EndpointRequest): Promise<void> {
    await this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        const record = this.endpoints.get(req.EndpointID);
        if (!record) return; // already gone: DeleteEndpoint is idempotent
        await this.teardown(record);
      } catch (err) {
        throw wrapError(err, `DeleteEndpoint ${shortId(req.EndpointID)}`);
      }
    });
  }

  /**
   * Undoes an endpoint completely. The link Docker hands back after Leave sits in
   * our netns; it is moved into a staging netns under the ADD-time ifname so the
   * chain's DEL finds it (bridge removes masquerade rules through it), then DEL
   * replays the cached config, args and capabilities.
   */
  private async teardown(record: EndpointRecord, leftoverNetns?: string): Promise<void> {
    const watch = new Stopwatch();
    if (record.status !== 'deleting') {
      record.status = 'deleting';
      await this.deps.endpoints.put(record.id, record);
    }
    watch.lap('journal');
    const stillThere = leftoverNetns && (await this.deps.staging.listExisting()).includes(leftoverNetns);
    const lease: StagingLease = stillThere
      ? { name: leftoverNetns, path: `/run/netns/${leftoverNetns}` }
      : await this.deps.staging.acquire();
    let clean = false;
    try {
      // Only a chain that masquerades per container needs its link back for DEL
      // (bridge finds those rules through the link's address); otherwise the
      // link is simply deleted, which saves a netns move on every stop.
      const del = (): Promise<void> => this.deps.cni.delNetworkList(record.conflist, this.runtimeConf(record, lease.path));
      if (chainMasquerades(record.conflist)) {
        if (await this.deps.links.exists(record.hostLinkName)) {
          await this.deps.links.moveToNetns(record.hostLinkName, lease.name, record.ifName);
          await this.deps.links.addAddresses(lease.name, record.ifName, record.addresses);
        }
        await del();
      } else {
        // Independent steps: the kernel's veth teardown overlaps the plugins' DEL.
        const outcomes = await Promise.allSettled([this.deps.links.deleteIfExists(record.hostLinkName), del()]);
        const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failure) throw failure.reason;
      }
      watch.lap('linkAndDel');
      clean = true;
    } finally {
      if (stillThere) {
        this.deps.staging.release(lease, true);
      } else {
        this.deps.staging.release(lease, !clean);
      }
    }
    await this.deps.links.deleteIfExists(record.hostLinkName);
    await this.deps.endpoints.delete(record.id);
    this.endpoints.delete(record.id);
    watch.lap('record');
    this.deps.logger.debug({ endpoint: record.id, phases: watch.laps }, 'endpoint deleted');
  }

  /** Reconciliation: tears down an endpoint Docker no longer knows. */
  async removeStaleEndpoint(endpointId: string): Promise<void> {
    await this.locks.withLock(`ep:${endpointId}`, async () => {
      const record = this.endpoints.get(endpointId) ?? (await this.deps.endpoints.get(endpointId));
      if (record) await this.teardown(record, record.status === 'creating' ? record.stagingNetns : undefined);
    });
  }

  /** Reconciliation: removes a network Docker no longer knows, with its endpoints. */
  async removeStaleNetwork(networkId: string): Promise<void> {
    for (const endpoint of [...this.endpoints.values()].filter((e) => e.networkId === networkId)) {
      await this.removeStaleEndpoint(endpoint.id);
    }
    await this.deleteNetwork({ NetworkID: networkId });
  }

  async endpointOperInfo(req: EndpointRequest): Promise<{ Value: Record<string, unknown> }> {
    const record = this.endpoints.get(req.EndpointID);
    if (!record) return { Value: {} };
    return {
      Value: {
        'cni.network': this.networks.get(record.networkId)?.cniName ?? '',
        'cni.link': record.hostLinkName,
        'cni.ports': record.portMappings,
      },
    };
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    const record = this.endpoints.get(req.EndpointID);
    if (!record || record.status !== 'ready' || record.networkId !== req.NetworkID) {
      throw wrapError(notFound(`endpoint ${shortId(req.EndpointID)} is not known to docker-cni`), 'Join');
    }
    const reply: JoinResponse = { InterfaceName: { SrcName: record.hostLinkName, DstPrefix: 'eth' } };
    if (record.gatewayV4) reply.Gateway = record.gatewayV4;
    if (record.gatewayV6) reply.GatewayIPv6 = record.gatewayV6;
    if (record.staticRoutes.length > 0) reply.StaticRoutes = record.staticRoutes;
    return reply;
  }

  async leave(_req: EndpointRequest): Promise<void> {
    // Docker moves the link back into our netns; DeleteEndpoint removes it.
  }

  async programExternalConnectivity(_req: ExternalConnectivityRequest): Promise<void> {
    // Ports are published by portmap in the CreateEndpoint chain, where the same lists arrive.
  }

  async revokeExternalConnectivity(_req: ExternalConnectivityRequest): Promise<void> {
    // Removed by the chain's DEL at DeleteEndpoint, which every stop and rm reaches.
  }
}

function isTrue(value: unknown): boolean {
  return value === true || value === 'true';
}

function subnetsOf(data: IPAMData[] | null | undefined, internal: boolean): NetworkSubnet[] {
  return (data ?? []).map((d) => {
    assertCidr(d.Pool);
    const gateway = d.Gateway ? d.Gateway.split('/')[0] : undefined;
    return !internal && gateway ? { pool: d.Pool, gateway } : { pool: d.Pool };
  });
}

function assertCidr(value: string): void {
  if (!looksLikeCidr(value)) throw invalid(`invalid address "${value}": expected a CIDR`);
}

function macFromResult(result: CniResult, ifName: string): string | undefined {
  return result.interfaces?.find((i) => i.name === ifName && i.sandbox)?.mac ?? result.interfaces?.find((i) => i.name === ifName)?.mac;
}

function chainMasquerades(conflist: NetConfList): boolean {
  return conflist.plugins.some((p) => p.ipMasq === true);
}

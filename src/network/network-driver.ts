import type { NetConfList } from '../cni/types.js';
import {
  OPT,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type CreateNetworkRequest,
  type DeleteNetworkRequest,
  type EndpointRequest,
  type ExternalConnectivityRequest,
  type GwAllocCheckRequest,
  type GwAllocCheckResponse,
  type IPAMData,
  type JoinRequest,
  type JoinResponse,
  type NetworkCapabilities,
  type NetworkDriverApi,
} from '../docker/api.js';
import { PluginError, invalid, wrapError } from '../errors.js';
import type { NetworkFirewallSpec } from '../host/firewall.js';
import { bridgeNameFor, generatedCniName, shortId } from '../names.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { assertPoolsMatchConflist, chainDeclaresCapability, chainHasIngressPolicy, chainIsGatewayLess, generatedConfList, poolsOf } from './conflist.js';
import type { NetworkDriverDeps } from './driver-deps.js';
import { assertCidr } from './endpoint-plan.js';
import { EndpointOps } from './endpoint-ops.js';
import { parseNetworkOptions, readGenericOptions } from './options.js';
import type { EndpointRecord, NetworkRecord, NetworkSubnet } from './records.js';

export type { CniChainRunner, NetworkDriverDeps } from './driver-deps.js';

/**
 * Docker's NetworkDriver carried out with CNI. Network operations (a record,
 * a conflist template, per-network firewall rules) are here; endpoint
 * operations, where the chains run, are in endpoint-ops.ts.
 */
export class NetworkDriver implements NetworkDriverApi {
  private readonly networks = new Map<string, NetworkRecord>();
  private readonly locks = new KeyedLock();
  private readonly endpointOps: EndpointOps;

  constructor(private readonly deps: NetworkDriverDeps) {
    this.endpointOps = new EndpointOps(deps, (id) => this.networks.get(id));
  }

  /** Loads persisted state and finishes or undoes operations a crash interrupted. Call before serving. */
  async init(options: { recover?: boolean } = {}): Promise<void> {
    const recover = options.recover ?? true;
    const log = this.deps.logger;
    await this.deps.networks.ensureDir();
    for (const { id, record } of await this.deps.networks.list((bad, err) => log.error({ err, id: bad }, 'corrupt network record'))) {
      this.networks.set(id, record);
    }
    await this.endpointOps.load(recover);
    this.announceRoutedSubnets();
    log.info({ networks: this.networks.size, endpoints: this.endpointOps.list().length }, 'network driver state loaded');
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
    return this.endpointOps.list();
  }

  getCapabilities(): NetworkCapabilities {
    // Swarm shares names and tasks.<svc> across nodes (its gossip) only for a
    // multihost driver; data and IPAM stay node-local either way.
    return { Scope: 'local', ConnectivityScope: this.deps.cluster ? 'global' : 'local', GwAllocChecker: true };
  }

  /**
   * Docker ≥ 28, before CreateNetwork: no gateway address for an internal
   * network (nothing routes it) or a gateway-less chain (macvlan, ipvlan,
   * host-device). Options that CreateNetwork would refuse are left to it, so
   * the user sees its message rather than this one's.
   */
  async gwAllocCheck(req: GwAllocCheckRequest): Promise<GwAllocCheckResponse> {
    const keep: GwAllocCheckResponse = { SkipIPv4: false, SkipIPv6: false };
    try {
      if (isTrue(req.Options?.[OPT.internal])) return { SkipIPv4: true, SkipIPv6: true };
      const opts = parseNetworkOptions(readGenericOptions(req.Options));
      if (opts.cniNetwork === undefined) return keep;
      const conflist = await this.deps.loadConfList(opts.cniNetwork);
      const skip = chainIsGatewayLess(conflist);
      if (skip) this.deps.logger.info({ cni: conflist.name }, 'gateway-less chain: Docker reserves no gateway address');
      return { SkipIPv4: skip, SkipIPv6: skip };
    } catch (err) {
      this.deps.logger.debug({ err }, 'GwAllocCheck: options left to CreateNetwork to refuse');
      return keep;
    }
  }

  private announceRoutedSubnets(): void {
    const routed = [...this.networks.values()].filter((n) => n.options['cni.cluster.mode'] === 'routed');
    this.deps.cluster?.routedSubnetsChanged(routed.flatMap((n) => poolsOf(n.ipv4)));
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
        this.announceRoutedSubnets();
        this.deps.logger.info({ network: record.id, mode: record.mode, cni: record.cniName, bridge: record.bridge }, 'network created');
      } catch (err) {
        this.networks.delete(req.NetworkID);
        await this.deps.firewall.removeNetwork(req.NetworkID).catch(() => undefined);
        throw wrapError(err, 'CreateNetwork');
      }
    });
  }

  private async buildNetworkRecord(req: CreateNetworkRequest): Promise<NetworkRecord> {
    const engineProblem = this.deps.engineProblem?.();
    if (engineProblem) throw invalid(engineProblem);
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
      assertPoolsMatchConflist(conflist, [...ipv4, ...ipv6]);
      if (opts.bandwidth && !chainDeclaresCapability(conflist, 'bandwidth')) {
        throw invalid(
          `cni.bandwidth.* options need a plugin that declares "capabilities": {"bandwidth": true} in conflist ${conflist.name} (e.g. the bandwidth plugin)`,
        );
      }
      this.warnAboutLostSysctls(conflist);
      const { bytes: _bytes, ...storable } = conflist;
      const first = conflist.plugins[0];
      const bridge = first?.type === 'bridge' ? bridgeOfPlugin(first.bridge) : undefined;
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
      'tuning sysctls do not reach the container (the chain runs in a staging netns); set them per endpoint with --network name=N,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.x=v (Docker >= 27) or docker run --sysctl. mtu, mac and promisc do apply',
    );
  }

  async deleteNetwork(req: DeleteNetworkRequest): Promise<void> {
    await this.locks.withLock(`net:${req.NetworkID}`, async () => {
      try {
        const record = this.networks.get(req.NetworkID);
        await this.endpointOps.waitForTeardowns(req.NetworkID);
        await this.deps.firewall.removeNetwork(req.NetworkID);
        if (record?.mode === 'generated' && record.bridge) await this.deps.links.deleteIfExists(record.bridge);
        await this.deps.networks.delete(req.NetworkID);
        this.networks.delete(req.NetworkID);
        this.endpointOps.forgetNetwork(req.NetworkID);
        const bridge = record?.mode === 'conflist' ? record.bridge : undefined;
        if (bridge && ![...this.networks.values()].some((n) => n.bridge === bridge)) await this.deps.conflistBridges?.afterLastNetwork(bridge);
        this.announceRoutedSubnets();
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
      ...(record.options['cni.cluster.mode'] === 'routed' ? { spansHosts: true } : {}),
      ...(chainHasIngressPolicy(record.conflist) ? { ingressPolicy: true } : {}),
    };
  }

  // ---- endpoints --------------------------------------------------------------

  createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    return this.endpointOps.createEndpoint(req);
  }

  deleteEndpoint(req: EndpointRequest): Promise<void> {
    return this.endpointOps.deleteEndpoint(req);
  }

  /** Shutdown: waits for the chains CreateEndpoint and DeleteEndpoint left running. */
  drain(): Promise<void> {
    return this.endpointOps.drain();
  }

  /** Reconciliation: tears down an endpoint Docker no longer knows. */
  removeStaleEndpoint(endpointId: string): Promise<void> {
    return this.endpointOps.removeStaleEndpoint(endpointId);
  }

  /** Reconciliation: removes a network Docker no longer knows, with its endpoints. */
  async removeStaleNetwork(networkId: string): Promise<void> {
    for (const endpoint of this.endpointOps.list().filter((e) => e.networkId === networkId)) {
      await this.removeStaleEndpoint(endpoint.id);
    }
    await this.deleteNetwork({ NetworkID: networkId });
  }

  async endpointOperInfo(req: EndpointRequest): Promise<{ Value: Record<string, unknown> }> {
    return this.endpointOps.endpointOperInfo(req);
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    return this.endpointOps.join(req);
  }

  async leave(_req: EndpointRequest): Promise<void> {
    // Docker moves the link back into our netns; DeleteEndpoint removes it.
  }

  programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    return this.endpointOps.programExternalConnectivity(req);
  }

  revokeExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    return this.endpointOps.revokeExternalConnectivity(req);
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

/** The bridge plugin's `bridge` option, defaulting as the plugin does. */
function bridgeOfPlugin(value: unknown): string {
  if (value === undefined || value === null) return 'cni0';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The composition root: the only place that wires the real implementations
 * together and listens. Everything else takes its collaborators as arguments.
 */
import type { Server } from 'node:http';
import { CniRuntime, ExecaPluginExecutor, loadConfListByName } from './cni/index.js';
import { runCommand } from './host/command.js';
import { NetworkFirewall } from './host/firewall.js';
import { HostLinks } from './host/links.js';
import { preflight } from './host/preflight.js';
import { StagingNetnsPool } from './host/staging-netns.js';
import { createApp } from './http/app.js';
import { closeServer, serveUnixSocket } from './http/serve.js';
import { IpamDriver } from './ipam/ipam-driver.js';
import { readHostRoutes } from './host/routes.js';
import { POOL_CODEC, type PoolRecord } from './ipam/pool-record.js';
import type { Logger } from './log.js';
import { NetworkDriver } from './network/network-driver.js';
import { probeHostPort } from './host/ports.js';
import { ENDPOINT_CODEC, NETWORK_CODEC, type EndpointRecord, type NetworkRecord } from './network/records.js';
import { dockerodeView } from './reconcile/docker-view.js';
import { Reconciler, type ReconcileTargets } from './reconcile/reconciler.js';
import type { Settings } from './settings.js';
import { RecordStore } from './state/record-store.js';
import { clusterHooks } from './cluster/hooks.js';
import { ClusterIpamAdapter } from './cluster/ipam-adapter.js';
import { createClusterRuntime, type ClusterRuntime } from './cluster/runtime.js';
import { clusterEnabled, loadClusterSettings } from './cluster/settings.js';

export interface PluginComponents {
  settings: Settings;
  cni: CniRuntime;
  network: NetworkDriver;
  ipam: IpamDriver;
  staging: StagingNetnsPool;
  firewall: NetworkFirewall;
  reconciler: Reconciler;
  reconcilerWithGrace(graceMs?: number): Reconciler;
  stores: {
    networks: RecordStore<NetworkRecord>;
    endpoints: RecordStore<EndpointRecord>;
    pools: RecordStore<PoolRecord>;
  };
}

/** Builds the drivers on the real host implementations, without serving. Used by `serve` and the CLI. */
export function buildComponents(settings: Settings, logger: Logger, cluster?: ClusterRuntime): PluginComponents {
  const executor = new ExecaPluginExecutor();
  const cni = new CniRuntime({
    binDirs: settings.binDirs,
    cacheDir: settings.cacheDir,
    exec: executor,
    timeoutMs: settings.pluginTimeoutMs,
    logger,
  });
  const stores = {
    networks: new RecordStore<NetworkRecord>(settings.stateDir, 'networks', true, NETWORK_CODEC),
    endpoints: new RecordStore<EndpointRecord>(settings.stateDir, 'endpoints', false, ENDPOINT_CODEC),
    pools: new RecordStore<PoolRecord>(settings.stateDir, 'pools', true, POOL_CODEC),
  };
  const staging = new StagingNetnsPool(settings.stagingPrefix, runCommand, logger);
  const firewall = new NetworkFirewall(runCommand, logger);
  const network = new NetworkDriver({
    networks: stores.networks,
    endpoints: stores.endpoints,
    cni,
    loadConfList: (name) => loadConfListByName(settings.confDir, name),
    locatePlugin: (type) => executor.findInPath(type, settings.binDirs),
    staging,
    links: new HostLinks(runCommand),
    firewall,
    probePort: probeHostPort,
    logger,
    ...(cluster ? { cluster: clusterHooks(cluster) } : {}),
  });
  const ipam = new IpamDriver({
    pools: stores.pools,
    runner: cni,
    hostLocalDataDir: settings.hostLocalDataDir,
    defaultPoolsV4: settings.defaultPoolsV4,
    defaultPoolsV6: settings.defaultPoolsV6,
    hostRoutes: () => readHostRoutes(),
    logger,
  });
  const links = new HostLinks(runCommand);
  const targets: ReconcileTargets = {
    listNetworks: () => network.listNetworks(),
    listEndpoints: () => network.listEndpoints(),
    removeStaleEndpoint: (id) => network.removeStaleEndpoint(id),
    removeStaleNetwork: (id) => network.removeStaleNetwork(id),
    listPools: () => ipam.listPools(),
    listReservations: (poolId) => ipam.listReservations(poolId),
    releaseAddress: (poolId, ip) => ipam.releaseAddress({ PoolID: poolId, Address: ip }),
    releasePool: (poolId) => ipam.releasePool({ PoolID: poolId }),
    listCachedAttachments: () => cni.listCachedAttachments(),
    deleteCachedAttachment: (entry) => cni.delNetworkList(undefined, { containerId: entry.containerId, ifName: entry.ifName, netns: '' }),
    listTaggedFirewallNetworks: () => firewall.listTaggedNetworks(),
    removeFirewallNetwork: (prefix) => firewall.removeNetwork(prefix),
    deleteLink: (name) => links.deleteIfExists(name),
  };
  const reconcilerWithGrace = (graceMs?: number): Reconciler =>
    new Reconciler({
      targets,
      docker: dockerodeView(settings.dockerSocket),
      hostLocalDataDir: settings.hostLocalDataDir,
      logger,
      ...(graceMs !== undefined ? { graceMs } : {}),
    });
  return { settings, cni, network, ipam, staging, firewall, stores, reconciler: reconcilerWithGrace(), reconcilerWithGrace };
}

export interface RunningPlugin {
  components: PluginComponents;
  server: Server;
  close(): Promise<void>;
}

/** Loads state, recovers interrupted operations, then serves the plugin socket. */
export async function startPlugin(settings: Settings, logger: Logger): Promise<RunningPlugin> {
  await preflight(settings.binDirs, logger);
  const clusterSettings = loadClusterSettings();
  const cluster = clusterEnabled(clusterSettings) ? await createClusterRuntime(clusterSettings, settings.stateDir, logger) : undefined;
  // Before the network driver loads its networks, so their routes are announced to a running sync.
  await cluster?.start();
  const components = buildComponents(settings, logger, cluster);
  await components.ipam.init();
  await components.network.init();
  await components.staging.init();
  const ipam = new ClusterIpamAdapter(components.ipam, cluster?.ipam);
  const app = createApp({ network: components.network, ipam, logger });
  const server = await serveUnixSocket(app, settings.socketPath);
  logger.info({ socket: settings.socketPath, stateDir: settings.stateDir, confDir: settings.confDir }, 'docker-cni serving');
  // Off the request path: restore per-network rules in case the host firewall was reloaded while we were down.
  void components.network.ensureAllNetworkRules().catch((err: unknown) => logger.error({ err }, 'restoring network rules failed'));
  const reconcile = (): void => {
    void components.reconciler.runPass().catch((err: unknown) => logger.error({ err }, 'reconciliation failed'));
  };
  reconcile();
  const timer = settings.reconcileIntervalMs > 0 ? setInterval(reconcile, settings.reconcileIntervalMs) : undefined;
  timer?.unref();
  return {
    components,
    server,
    close: async () => {
      if (timer) clearInterval(timer);
      await closeServer(server);
      await cluster?.stop();
      // In-flight calls have finished, so the staging namespaces are empty; a
      // kill -9 leaves them instead, and the next start removes them.
      await components.staging.destroyAll();
    },
  };
}

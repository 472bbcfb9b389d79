/**
 * The composition root: the only place that wires the real implementations
 * together and listens. Everything else takes its collaborators as arguments.
 */
import type { Server } from 'node:http';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CniRuntime, SpawnPluginExecutor, confListSubnets, loadConfListByName, resultsDir } from './cni/index.js';
import { ConfSync } from './confsync/conf-sync.js';
import { writeStatus } from './confsync/status.js';
import { runCommand as hostCommand } from './host/command.js';
import { ConflistBridges } from './host/conflist-bridges.js';
import { NetworkFirewall } from './host/firewall.js';
import { HostLinks } from './host/links.js';
import { NetnsIpWorkers } from './host/netns-ip-worker.js';
import { preflight } from './host/preflight.js';
import { StagingNetnsPool } from './host/staging-netns.js';
import { createApp } from './http/app.js';
import { closeServer, drainServer, serveUnixSocket } from './http/serve.js';
import { IpamDriver } from './ipam/ipam-driver.js';
import { readHostRoutes } from './host/routes.js';
import { POOL_CODEC, type PoolRecord } from './ipam/pool-record.js';
import type { Logger } from './log.js';
import { instrumentCommandRunner, instrumentExecutor, instrumentNetnsCommands, recordGcReport } from './observability/instrument.js';
import { parseMetricsListen, serveMetrics } from './observability/listener.js';
import { noopMetrics, type Metrics } from './observability/metrics.js';
import { NetworkDriver } from './network/network-driver.js';
import { probeHostPort } from './host/ports.js';
import { ENDPOINT_CODEC, NETWORK_CODEC, type EndpointRecord, type NetworkRecord } from './network/records.js';
import { dockerApiView, dockerNetworkAdmin, type DockerView } from './reconcile/docker-view.js';
import { EngineGuard } from './reconcile/engine-guard.js';
import { Reconciler, type ReconcileTargets } from './reconcile/reconciler.js';
import { driverNameOf, type Settings } from './settings.js';
import { RecordStore } from './state/record-store.js';
import { moveRecords } from './state/record-move.js';
import { removeWriteLeftovers } from './util/atomic-file.js';
import { CHAIN_IFNAME } from './names.js';
import { acquireStateLocks } from './state/state-lock.js';
import { clusterHooks } from './cluster/hooks.js';
import { ClusterIpamAdapter } from './cluster/ipam-adapter.js';
import type { ClusterRuntime } from './cluster/runtime.js';
import { clusterEnabled, loadClusterSettings } from './cluster/settings.js';

export interface PluginComponents {
  settings: Settings;
  cni: CniRuntime;
  network: NetworkDriver;
  ipam: IpamDriver;
  staging: StagingNetnsPool;
  /** The long-lived `ip -batch` processes of the staging namespaces and of ours. */
  ipWorkers: NetnsIpWorkers;
  firewall: NetworkFirewall;
  reconciler: Reconciler;
  engineGuard: EngineGuard;
  /** A reconciler for one pass (the CLI's `gc` and doctor's preview), with its own grace period or the default. */
  oneShotReconciler(graceMs?: number): Reconciler;
  /** Docker's view, for the CLI and background tasks only (never a request handler). */
  docker: DockerView;
  stores: {
    networks: RecordStore<NetworkRecord>;
    endpoints: RecordStore<EndpointRecord>;
    pools: RecordStore<PoolRecord>;
  };
}

const conflistBridgesDir = (stateDir: string): string => join(stateDir, 'bridges');
/** Endpoint records under `baseDir`: the run dir; earlier releases kept them in the state dir. */
const endpointStore = (baseDir: string): RecordStore<EndpointRecord> => new RecordStore<EndpointRecord>(baseDir, 'endpoints', false, ENDPOINT_CODEC);

/** Builds the drivers on the real host implementations, without serving. Used by `serve` and the CLI. */
export function buildComponents(settings: Settings, logger: Logger, metrics: Metrics = noopMetrics, cluster?: ClusterRuntime): PluginComponents {
  const executor = instrumentExecutor(new SpawnPluginExecutor(), metrics);
  const runCommand = instrumentCommandRunner(hostCommand, metrics);
  const cni = new CniRuntime({
    binDirs: settings.binDirs,
    cacheDir: settings.cacheDir,
    exec: executor,
    timeoutMs: settings.pluginTimeoutMs,
    logger,
  });
  const stores = {
    networks: new RecordStore<NetworkRecord>(settings.stateDir, 'networks', true, NETWORK_CODEC),
    endpoints: endpointStore(settings.runDir),
    pools: new RecordStore<PoolRecord>(settings.stateDir, 'pools', true, POOL_CODEC),
  };
  const ipWorkers = new NetnsIpWorkers();
  const staging = new StagingNetnsPool(settings.stagingPrefix, runCommand, logger, { refill: true, beforeDelete: (name) => ipWorkers.forget(name) });
  const firewall = new NetworkFirewall(runCommand, logger);
  // A short timeout: startup waits for this answer once.
  const dockerView = dockerApiView(settings.dockerSocket, 3_000);
  const engineGuard = new EngineGuard(() => dockerView.firewallBackend?.() ?? Promise.resolve(undefined), logger);
  const network = new NetworkDriver({
    networks: stores.networks,
    endpoints: stores.endpoints,
    cni,
    loadConfList: (name) => loadConfListByName(settings.confDir, name),
    locatePlugin: (type) => executor.findInPath(type, settings.binDirs),
    staging,
    links: new HostLinks(runCommand, instrumentNetnsCommands(ipWorkers, metrics)),
    firewall,
    conflistBridges: new ConflistBridges(conflistBridgesDir(settings.stateDir), new HostLinks(runCommand), runCommand, logger),
    probePort: probeHostPort,
    engineProblem: () => engineGuard.problem(),
    logger,
    backgroundTeardown: true,
    backgroundSetup: true,
    ...(cluster ? { cluster: clusterHooks(cluster) } : {}),
  });
  const ipam = new IpamDriver({
    pools: stores.pools,
    hostLocalDataDir: settings.hostLocalDataDir,
    defaultPoolsV4: settings.defaultPoolsV4,
    defaultPoolsV6: settings.defaultPoolsV6,
    hostRoutes: () => readHostRoutes(),
    conflistSubnets: async (name) => confListSubnets(await loadConfListByName(settings.confDir, name)),
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
    ...(cluster
      ? {
          cluster: {
            listPools: () => cluster.ipam.holdings(),
            releaseAddress: (poolId, ip) => cluster.ipam.releaseAddress(poolId, ip),
            releasePool: (poolId) => cluster.ipam.releasePool(poolId),
          },
        }
      : {}),
  };
  const docker = dockerApiView(settings.dockerSocket);
  const reconcilerOf = (options: { graceMs?: number; oneShot?: boolean }): Reconciler =>
    new Reconciler({ targets, docker, hostLocalDataDir: settings.hostLocalDataDir, logger, ...options });
  const oneShotReconciler = (graceMs?: number): Reconciler => reconcilerOf({ ...(graceMs !== undefined ? { graceMs } : {}), oneShot: true });
  return { settings, cni, network, ipam, staging, ipWorkers, firewall, stores, engineGuard, docker, reconciler: reconcilerOf({}), oneShotReconciler };
}

/**
 * A SIGKILL during an atomic write leaves its temp file behind; under the state
 * lock and before serving nothing else writes these dirs, so any such file is a
 * leftover of the previous run.
 */
async function removeKilledWrites(components: PluginComponents, logger: Logger): Promise<void> {
  const dirs: Array<[string, (name: string) => boolean]> = [
    [resultsDir(components.settings.cacheDir), (name) => name.endsWith(`-${CHAIN_IFNAME}`)],
    ...[
      ...Object.values(components.stores).map((store) => store.dir),
      conflistBridgesDir(components.settings.stateDir),
      // Where an earlier release kept endpoint records; moveEndpointRecordsToRunDir moves them after this.
      endpointStore(components.settings.stateDir).dir,
    ].map((dir): [string, (name: string) => boolean] => [dir, (name) => name.endsWith('.json')]),
  ];
  for (const [dir, isTarget] of dirs) {
    const removed = await removeWriteLeftovers(dir, isTarget);
    if (removed.length > 0) logger.warn({ dir, removed }, 'removed temp files of writes a crash interrupted');
  }
}

/**
 * Endpoint records used to be kept in the state dir; an upgrade over running containers finds them there. They move
 * before anything reads them, so the journal's recovery and Docker's next calls see them where they now live.
 */
async function moveEndpointRecordsToRunDir(components: PluginComponents, logger: Logger): Promise<void> {
  const legacy = endpointStore(components.settings.stateDir);
  if (legacy.dir === components.stores.endpoints.dir) return;
  const moved = await moveRecords(legacy, components.stores.endpoints, (id, err) =>
    logger.error({ err, id, dir: legacy.dir }, 'an endpoint record of the old location cannot be read; it stays there'),
  );
  if (moved.length > 0) logger.info({ from: legacy.dir, to: components.stores.endpoints.dir, endpoints: moved.length }, 'moved endpoint records to the run dir');
  // Only once empty: a record that could not be read keeps the old dir.
  await rmdir(legacy.dir).catch(() => undefined);
}

/** The etcd client (grpc, protobuf) is loaded only on hosts that configure a cluster: it would cost every other host ~20 MB of RSS. */
async function loadClusterRuntime(...args: Parameters<typeof import('./cluster/runtime.js').createClusterRuntime>): Promise<ClusterRuntime> {
  const { createClusterRuntime } = await import('./cluster/runtime.js');
  return createClusterRuntime(...args);
}

export interface RunningPlugin {
  components: PluginComponents;
  server: Server;
  close(): Promise<void>;
}

/** Loads state, recovers interrupted operations, then serves the plugin socket. */
export async function startPlugin(settings: Settings, logger: Logger): Promise<RunningPlugin> {
  await preflight(settings.binDirs, logger);
  const metricsListen = parseMetricsListen(settings.metricsListen);
  // Gauges are read at scrape time, from the components built just below.
  const built: { components?: PluginComponents } = {};
  const prom = metricsListen
    ? (await import('./observability/prom-metrics.js')).createPromMetrics({
        networks: () => built.components?.network.listNetworks().length ?? 0,
        endpoints: () => built.components?.network.listEndpoints().length ?? 0,
        stagingNamespaces: () => built.components?.staging.size ?? 0,
      })
    : undefined;
  const metrics = prom?.metrics ?? noopMetrics;
  // Before anything is read: a previous instance may still be finishing calls. The run dir is locked too, so two
  // instances given their own state dirs but the default run dir fail clearly instead of sharing endpoint records.
  const lock = await acquireStateLocks([settings.stateDir, settings.runDir], logger);
  let cluster: ClusterRuntime | undefined;
  let server: Server | undefined;
  let components: PluginComponents;
  let metricsServer: Server | undefined;
  try {
    const clusterSettings = loadClusterSettings();
    cluster = clusterEnabled(clusterSettings) ? await loadClusterRuntime(clusterSettings, settings.stateDir, logger) : undefined;
    // Before the network driver loads its networks, so their routes are announced to a running sync.
    await cluster?.start();
    components = buildComponents(settings, logger, metrics, cluster);
    built.components = components;
    // No Docker call before serving: a dockerd that is starting waits on its
    // plugins (us) and would not answer. The first background pass asks it
    // (reconcile below), logs an unsupported engine, and CreateNetwork refuses.
    await removeKilledWrites(components, logger);
    await moveEndpointRecordsToRunDir(components, logger);
    await components.ipam.init();
    await components.network.init();
    await components.staging.init();
    const ipam = new ClusterIpamAdapter(components.ipam, cluster?.ipam);
    const app = createApp({ network: components.network, ipam, logger, metrics });
    // Bound before the plugin socket, so that whoever sees the plugin answer finds its metrics answering too;
    // /healthz says 503 until the plugin socket is served.
    metricsServer =
      metricsListen && prom
        ? await serveMetrics(metricsListen, prom.registry, async () => ({ ok: server?.listening ?? false, detail: { socket: settings.socketPath } }))
        : undefined;
    server = await serveUnixSocket(app, settings.socketPath);
  } catch (err) {
    if (metricsServer) await closeServer(metricsServer).catch(() => undefined);
    await cluster?.stop();
    await lock.release();
    throw err;
  }
  logger.info({ socket: settings.socketPath, stateDir: settings.stateDir, runDir: settings.runDir, confDir: settings.confDir, metrics: settings.metricsListen || 'off' }, 'docker-cni serving');
  // Off the request path: restore per-network rules in case the host firewall was reloaded while we were down.
  void components.network.ensureAllNetworkRules().catch((err: unknown) => logger.error({ err }, 'restoring network rules failed'));
  const reconcile = (): void => {
    void components.engineGuard.check();
    void components.reconciler
      .runPass()
      .then((report) => recordGcReport(report, metrics))
      .catch((err: unknown) => {
        metrics.error('gc', 'PASS_FAILED');
        logger.error({ err }, 'reconciliation failed');
      });
  };
  reconcile();
  const timer = settings.reconcileIntervalMs > 0 ? setInterval(reconcile, settings.reconcileIntervalMs) : undefined;
  timer?.unref();
  const confSync = settings.confSync
    ? new ConfSync({
        confDir: settings.confDir,
        driver: driverNameOf(settings),
        docker: dockerNetworkAdmin(settings.dockerSocket),
        locatePlugin: (type) => new SpawnPluginExecutor().findInPath(type, settings.binDirs),
        saveStatus: (status) => writeStatus(settings.stateDir, status),
        logger,
      })
    : undefined;
  confSync?.start();
  return {
    components,
    server,
    close: async () => {
      if (timer) clearInterval(timer);
      confSync?.stop();
      try {
        await drainServer(server, settings.socketPath);
        await components.network.drain();
        if (metricsServer) await closeServer(metricsServer);
        await cluster?.stop();
        // In-flight calls have finished, so the staging namespaces are empty; a
        // kill -9 leaves them instead, and the next start removes them.
        await components.staging.destroyAll();
        components.ipWorkers.closeAll();
      } finally {
        await lock.release();
      }
    },
  };
}

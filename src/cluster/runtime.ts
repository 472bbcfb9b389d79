/**
 * Builds the cluster layer from settings: etcd client, host lease, cluster
 * IPAM and route sync. Nothing here runs inside a request handler except the
 * IPAM calls themselves, which need etcd only to claim a block.
 */
import { join } from 'node:path';
import { runCommand } from '../host/command.js';
import type { Logger } from '../log.js';
import { ClusterIpam } from './cluster-ipam.js';
import { EtcdStore } from './etcd-store.js';
import { HostLease } from './host-lease.js';
import { ClusterKeys } from './keys.js';
import { LocalPoolStore } from './local-state.js';
import { RouteSync } from './route-sync.js';
import { RouteTable } from './routes.js';
import { resolveHostId, resolveUnderlayIp, type ClusterSettings } from './settings.js';

export interface ClusterRuntime {
  hostId: string;
  log: Logger;
  store: EtcdStore;
  lease: HostLease;
  ipam: ClusterIpam;
  routes: RouteSync;
  /** Registers the host and starts the route watch; retries in the background when etcd is down. */
  start(): Promise<void>;
  /** Stops keepalive and watches; the lease is left to expire (a restart keeps the host's blocks). */
  stop(): Promise<void>;
}

export async function createClusterRuntime(settings: ClusterSettings, stateDir: string, logger: Logger): Promise<ClusterRuntime> {
  const log = logger.child({ component: 'cluster' });
  const hostId = await resolveHostId(settings, stateDir);
  const underlayIp = resolveUnderlayIp(settings);
  const store = new EtcdStore({ endpoints: settings.etcdEndpoints, keys: new ClusterKeys(settings.keyPrefix) });
  const lease = new HostLease({ store, hostId, ttlSeconds: settings.leaseTtlSeconds, logger: log, ...(underlayIp ? { underlayIp } : {}) });
  const ipam = new ClusterIpam({
    store,
    lease,
    local: new LocalPoolStore(join(stateDir, 'cluster', 'pools')),
    blockPrefixV4: settings.blockPrefixV4,
    blockPrefixV6: settings.blockPrefixV6,
    logger: log,
  });
  const routes = new RouteSync({ store, table: new RouteTable(runCommand, log), selfId: hostId, logger: log });
  let watching = false;
  const startWatch = async (): Promise<void> => {
    if (watching) return;
    await routes.start();
    watching = true;
  };
  return {
    hostId,
    log,
    store,
    lease,
    ipam,
    routes,
    async start() {
      try {
        await ipam.start();
        await startWatch();
      } catch (err) {
        // The plugin must serve Docker even with etcd down; cluster calls fail with ETCD_UNAVAILABLE meanwhile.
        log.error({ err }, 'cluster: etcd not reachable at start; retrying in the background');
        lease.once('registered', () => void startWatch().catch((e: unknown) => log.error({ err: e }, 'cluster: route watch failed')));
        lease.retryInBackground();
      }
    },
    async stop() {
      await routes.stop(false);
      lease.close();
      await store.close();
    },
  };
}

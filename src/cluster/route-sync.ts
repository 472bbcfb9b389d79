/**
 * Keeps this host's routes to other hosts' blocks in step with etcd: a watch
 * on blocks and hosts triggers a full, level-triggered resync (list, compute,
 * diff, apply), so a missed or reordered event can never leave a stale route.
 * A slow periodic resync covers a watch that silently stalls.
 */
import type { Watcher } from 'etcd3';
import type { Logger } from '../log.js';
import type { EtcdStore } from './etcd-store.js';
import { desiredRoutes, type Route, type RouteTable } from './routes.js';

export interface RouteSyncOptions {
  store: EtcdStore;
  table: RouteTable;
  selfId: string;
  logger: Logger;
  periodMs?: number;
  /** Wait before retrying a resync that failed (an etcd read or an `ip` call), rather than waiting a whole period. */
  retryMs?: number;
}

export class RouteSync {
  private readonly pools = new Set<string>();
  private watchers: Watcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: RouteSyncOptions) {}

  async start(): Promise<void> {
    const { client, keys } = this.options.store;
    for (const prefix of [keys.blocksPrefix(), keys.hostsPrefix()]) {
      const watcher = await this.options.store.call('watch cluster blocks', () => client.watch().prefix(prefix).create());
      watcher.on('put', () => this.trigger());
      watcher.on('delete', () => this.trigger());
      watcher.on('connected', () => this.trigger());
      watcher.on('error', (err) => this.options.logger.warn({ err: err.message }, 'cluster: etcd watch error; will resync'));
      this.watchers.push(watcher);
    }
    this.timer = setInterval(() => this.trigger(), this.options.periodMs ?? 30_000);
    this.timer.unref();
    await this.resyncNow();
  }

  /** Routed networks on this host: routes are kept for these pools only. */
  async setPools(poolIds: Iterable<string>): Promise<void> {
    this.pools.clear();
    for (const id of poolIds) this.pools.add(id);
    await this.resyncNow().catch((err: unknown) => {
      this.retrySoon();
      throw err;
    });
  }

  trigger(): void {
    if (this.stopped) return;
    this.resyncNow().catch((err: unknown) => {
      this.options.logger.warn({ err }, 'cluster: route resync failed; will retry');
      this.retrySoon();
    });
  }

  /**
   * A failed resync may have dropped the events that arrived during it, and a quiet cluster sends no
   * more: without a retry, a route could stay missing for a whole period.
   */
  private retrySoon(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.trigger();
    }, this.options.retryMs ?? 1_000);
    this.retryTimer.unref();
  }

  /** Runs a resync now; calls during one coalesce into one more run afterwards. */
  async resyncNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.resyncOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async resyncOnce(): Promise<Route[]> {
    const { store, table, selfId } = this.options;
    const hosts = await store.listHosts();
    const blocks = [];
    for (const poolId of this.pools) {
      for (const block of (await store.listBlocks(poolId)).values()) blocks.push({ poolId, record: block.record });
    }
    const desired = desiredRoutes(selfId, blocks, hosts, this.pools);
    await table.sync(desired);
    return desired;
  }

  /** Stops watching. With `removeRoutes`, also deletes every route it installed (plugin uninstall, tests). */
  async stop(removeRoutes = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    this.watchers = [];
    await this.running?.catch(() => undefined);
    if (removeRoutes) await this.options.table.sync([]);
  }
}

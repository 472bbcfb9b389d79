/**
 * Keeps one Docker network per conflist of the conf dir. Runs in the
 * background only: at start, on conf-dir changes (fs.watch, debounced) and
 * on a timer as a fallback for watches that miss events. Docker may not be
 * reachable yet (dockerd waits for its plugins while starting), so a failed
 * pass retries with backoff and never holds up serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log.js';
import { CONFLIST_DIGEST_LABEL, MANAGED_NETWORK_LABEL } from '../names.js';
import type { DockerNetworkAdmin, DockerNetworkSummary, ManagedNetworkSpec } from '../reconcile/docker-view.js';
import { planSync, type SyncAction, type WantedNetwork } from './plan.js';
import type { StatusEntry, SyncStatus } from './status.js';
import { readConfDir, type LocatePlugin } from './wanted.js';

/** The `-o` / `--ipam-opt` key naming the conflist. */
const CONFLIST_OPTION = 'cni.network';

export interface ConfSyncOptions {
  confDir: string;
  /** This plugin's Docker driver name, for both the network and its IPAM. */
  driver: string;
  docker: DockerNetworkAdmin;
  locatePlugin: LocatePlugin;
  saveStatus: (status: SyncStatus) => Promise<void>;
  logger: Logger;
  rescanMs?: number;
  debounceMs?: number;
  maxBackoffMs?: number;
}

export function networkSpecOf(wanted: WantedNetwork, driver: string): ManagedNetworkSpec {
  return {
    name: wanted.name,
    driver,
    // Our IPAM with the conflist named: host-local's rangeStart/rangeEnd are kept in the pool.
    ipamDriver: driver,
    subnets: wanted.subnets.map((s) => ({ subnet: s.subnet, ...(s.gateway ? { gateway: s.gateway } : {}) })),
    enableIPv6: wanted.subnets.some((s) => s.family === 6),
    options: { [CONFLIST_OPTION]: wanted.name },
    ipamOptions: { [CONFLIST_OPTION]: wanted.name },
    labels: { [MANAGED_NETWORK_LABEL]: driver, [CONFLIST_DIGEST_LABEL]: wanted.digest },
  };
}

export class ConfSync {
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private stopped = false;
  /** Last logged reason per name, so a waiting network is logged once, not every pass. */
  private readonly lastSaid = new Map<string, string>();

  constructor(private readonly options: ConfSyncOptions) {
    this.log = options.logger.child({ component: 'confsync' });
  }

  start(): void {
    this.log.info({ confDir: this.options.confDir, driver: this.options.driver }, 'conf-dir sync started');
    this.trigger();
  }

  /** Stops scheduling; a pass in flight is not awaited (it may be waiting on a Docker that is itself stopping). */
  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
  }

  /** Runs a pass now, or right after the current one. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.passAndSchedule().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    });
  }

  private async passAndSchedule(): Promise<void> {
    let ok = false;
    try {
      ok = await this.runPass();
    } catch (err) {
      this.log.error({ err }, 'conf-dir sync pass failed');
    }
    if (this.stopped) return;
    this.ensureWatch();
    this.failures = ok ? 0 : this.failures + 1;
    const backoff = Math.min(1000 * 2 ** Math.max(0, this.failures - 1), this.options.maxBackoffMs ?? 30_000);
    const next = ok ? (this.options.rescanMs ?? 30_000) : backoff;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.trigger(), next);
    this.timer.unref();
  }

  /** A watch on a dir that does not exist yet fails; the next pass tries again. */
  private ensureWatch(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(this.options.confDir, { persistent: false }, () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.trigger(), this.options.debounceMs ?? 300);
        this.debounce.unref();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }

  /** One pass; false when Docker could not be asked (then a retry follows with backoff). */
  async runPass(): Promise<boolean> {
    const { confDir, driver, docker } = this.options;
    const reading = await readConfDir(confDir, this.options.locatePlugin);
    const status: SyncStatus = { at: new Date().toISOString(), confDir, driver, dockerReachable: true, entries: [] };
    let managed: DockerNetworkSummary[];
    const foreign: DockerNetworkSummary[] = [];
    try {
      managed = (await docker.listByLabel(MANAGED_NETWORK_LABEL, driver)).filter((n) => n.driver === driver);
      for (const wanted of reading.wanted) {
        if (managed.some((n) => n.name === wanted.name)) continue;
        const other = await docker.inspect(wanted.name);
        if (other) foreign.push(other);
      }
    } catch (err) {
      status.dockerReachable = false;
      status.error = err instanceof Error ? err.message : String(err);
      status.entries = reading.problems.map((p) => ({ name: p.name ?? p.file, file: p.file, state: 'invalid', reason: p.reason }));
      await this.options.saveStatus(status);
      if (this.failures === 0) this.log.warn({ error: status.error }, 'Docker not reachable; conf-dir sync retries with backoff');
      return false;
    }
    for (const action of planSync({ ...reading, managed, foreign })) {
      status.entries.push(await this.apply(action));
    }
    await this.options.saveStatus(status);
    return true;
  }

  private async apply(action: SyncAction): Promise<StatusEntry> {
    const { docker, driver } = this.options;
    const say = (entry: StatusEntry, level: 'info' | 'warn' = 'info'): StatusEntry => {
      const key = `${entry.state}:${entry.reason ?? ''}`;
      if (this.lastSaid.get(entry.name) !== key) {
        this.lastSaid.set(entry.name, key);
        if (entry.state !== 'ready') this.log[level]({ network: entry.name, file: entry.file, state: entry.state, reason: entry.reason }, `conf-dir network ${entry.name}: ${entry.state}${entry.reason ? ` (${entry.reason})` : ''}`);
      }
      return entry;
    };
    try {
      switch (action.kind) {
        case 'create': {
          const id = await docker.create(networkSpecOf(action.wanted, driver));
          return say({ name: action.wanted.name, file: action.wanted.file, state: 'created', networkId: id });
        }
        case 'recreate': {
          await docker.remove(action.existing.id);
          const id = await docker.create(networkSpecOf(action.wanted, driver));
          return say({ name: action.wanted.name, file: action.wanted.file, state: 'recreated', networkId: id, reason: 'conflist changed' });
        }
        case 'remove':
          await docker.remove(action.existing.id);
          return say({ name: action.existing.name, state: 'removed', networkId: action.existing.id, reason: 'conflist gone' });
        case 'keep':
          return say({ name: action.name, state: 'ready', networkId: action.existing.id });
        case 'wait':
          return say({ name: action.name, state: 'waiting', networkId: action.existing.id, reason: action.reason }, 'warn');
        case 'skip':
          return say({ name: action.name, state: 'skipped', reason: action.reason }, 'warn');
        case 'invalid':
          return say({ name: action.problem.name ?? action.problem.file, file: action.problem.file, state: 'invalid', reason: action.problem.reason }, 'warn');
      }
    } catch (err) {
      const name = action.kind === 'remove' ? action.existing.name : 'wanted' in action ? action.wanted.name : 'unknown';
      return say({ name, state: 'failed', reason: err instanceof Error ? err.message : String(err) }, 'warn');
    }
  }
}

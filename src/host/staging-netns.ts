import { readdir } from 'node:fs/promises';
import { setImmediate } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { CommandRunner } from './command.js';
import { isStagingNetnsOf, stagingNetnsName, stagingNetnsOwner } from '../names.js';

const NETNS_DIR = '/run/netns';

export interface StagingLease {
  /** Name under /run/netns, as `ip -n` takes it. */
  readonly name: string;
  /** Path for CNI_NETNS. */
  readonly path: string;
}

/** The lease of a namespace by name (also one left by an interrupted operation). */
export const leaseOf = (name: string): StagingLease => ({ name, path: `${NETNS_DIR}/${name}` });

/**
 * A pool of private network namespaces in which CNI chains run before the
 * resulting interface is handed to Docker (the container's own netns usually
 * does not exist yet at CreateEndpoint). A namespace is clean again once its
 * interface has been moved out, so namespaces are reused: the hot path pays for
 * `ip netns add` only when more operations run at once than ever before.
 * One lease = one operation; a namespace is never shared by two operations, as
 * two chains in one netns would fight over routes.
 */
export class StagingNetnsPool {
  private readonly idle: string[] = [];
  private readonly all = new Set<string>();
  private counter = 0;
  private inFlight = 0;
  /** Most leases ever held at once: the pool keeps that many idle, so a repeated burst finds them made. */
  private peak = 0;
  private refilling: Promise<void> | undefined;
  private emptyNs: Promise<StagingLease> | undefined;

  constructor(
    private readonly prefix: string,
    private readonly run: CommandRunner,
    private readonly logger: Logger,
    private readonly options: { refill?: boolean; maxIdle?: number; beforeDelete?: (name: string) => void } = {},
  ) {}

  /** Namespaces this pool holds, idle or leased (a metrics gauge). */
  get size(): number {
    return this.all.size;
  }

  /** Removes namespaces left by an earlier run (they may hold half-made links), then pre-creates `warm` namespaces. */
  async init(warm = 2): Promise<void> {
    for (const stale of await this.listExisting()) {
      if (ownerIsAnotherLiveProcess(stale)) continue;
      await this.destroyByName(stale);
    }
    if (this.options.refill) {
      this.peak = Math.max(this.peak, warm);
      await this.fill(warm);
      return;
    }
    for (let i = 0; i < warm; i++) this.idle.push(await this.create());
  }

  async acquire(): Promise<StagingLease> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    const name = this.idle.pop();
    this.topUp();
    try {
      return leaseOf(name ?? (await this.create()));
    } catch (err) {
      this.inFlight--;
      throw err;
    }
  }

  /**
   * The namespace DELs run in when they need no link back: nothing is ever
   * made in it, so any number of them share it and none takes a lease.
   */
  empty(): Promise<StagingLease> {
    this.emptyNs ??= this.create().then(leaseOf, (err: unknown) => {
      this.emptyNs = undefined;
      throw err;
    });
    return this.emptyNs;
  }

  /**
   * Off the request path: brings the idle count back to the observed peak, with one `ip -batch` per round.
   * It starts on the next turn of the event loop, so its fork (milliseconds at the plugin's size) comes
   * after the reply of the call that set it off.
   */
  private topUp(): void {
    if (!this.options.refill || this.refilling || this.idleShortfall() <= 0) return;
    this.refilling = setImmediate()
      .then(() => {
        const want = this.idleShortfall();
        return want > 0 ? this.fill(want) : undefined;
      })
      .catch((err: unknown) => this.logger.warn({ err }, 'could not refill the staging netns pool'))
      .finally(() => {
        this.refilling = undefined;
      });
  }

  /** How many idle namespaces are missing to the observed peak (bounded by maxIdle). */
  private idleShortfall(): number {
    return Math.min(this.peak, this.options.maxIdle ?? 64) - this.idle.length;
  }

  private async fill(count: number): Promise<void> {
    const names: string[] = [];
    while (names.length < count) {
      const name = stagingNetnsName(this.prefix, process.pid, this.counter++);
      if (!this.all.has(name)) names.push(name);
    }
    const script = names.map((name) => `netns add ${name}`).join('\n');
    // -force: one failure does not stop the rest; what exists afterwards is what was made.
    let failed: Error | undefined;
    try {
      await this.run('ip', ['-force', '-batch', '-'], { input: `${script}\n` });
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
    }
    const present = new Set(await this.listExisting());
    for (const name of names) {
      if (!present.has(name)) continue;
      this.all.add(name);
      this.idle.push(name);
    }
    if (failed && !names.some((name) => present.has(name))) throw failed;
  }

  /** Returns a clean namespace to the pool. A namespace that may hold leftovers must be released with `dirty`. */
  release(lease: StagingLease, dirty = false): void {
    if (!this.all.has(lease.name)) return;
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (!dirty) {
      this.idle.push(lease.name);
      return;
    }
    this.all.delete(lease.name);
    // Off the request path: deleting a netns destroys whatever links are still inside it.
    void this.destroyByName(lease.name);
  }

  /** Deletes every namespace of this pool (shutdown of tests; the plugin keeps them across restarts). */
  async destroyAll(): Promise<void> {
    await this.refilling;
    this.idle.length = 0;
    this.emptyNs = undefined;
    for (const name of [...this.all]) await this.destroyByName(name);
    this.all.clear();
  }

  private async create(): Promise<string> {
    for (;;) {
      const name = stagingNetnsName(this.prefix, process.pid, this.counter++);
      if (this.all.has(name)) continue;
      await this.run('ip', ['netns', 'add', name]);
      this.all.add(name);
      return name;
    }
  }

  /** Names of this prefix present under /run/netns (e.g. left by a crashed run). */
  async listExisting(): Promise<string[]> {
    try {
      return (await readdir(NETNS_DIR)).filter((name) => isStagingNetnsOf(this.prefix, name));
    } catch {
      return [];
    }
  }

  private async destroyByName(name: string): Promise<void> {
    this.options.beforeDelete?.(name);
    try {
      await this.run('ip', ['netns', 'del', name]);
    } catch (err) {
      this.logger.warn({ err, netns: name }, 'could not delete staging netns');
    }
  }
}

/** A second instance (e.g. a test run) never deletes a live instance's namespaces. */
function ownerIsAnotherLiveProcess(name: string): boolean {
  const pid = stagingNetnsOwner(name);
  if (pid === undefined || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

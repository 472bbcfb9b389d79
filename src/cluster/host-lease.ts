/**
 * This host's identity in etcd: its host key, bound to a lease kept alive in
 * the background. Other hosts treat "host key gone" as "host gone", so a host
 * that cannot prove its lease is still alive fences itself: it stops handing
 * out addresses until it has registered again, because by then another host
 * may have taken its blocks over.
 */
import { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { Logger } from '../log.js';
import { ClusterError } from './errors.js';
import type { EtcdStore } from './etcd-store.js';
import type { HostRecord } from './records.js';

export interface HostLeaseOptions {
  store: EtcdStore;
  hostId: string;
  underlayIp?: string;
  ttlSeconds: number;
  logger: Logger;
  /** Bound on the wait between re-registration attempts. */
  maxRetryMs?: number;
}

export class HostLease extends EventEmitter {
  private lease: Lease | undefined;
  private lastProofAt = 0;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private registering: Promise<void> | undefined;

  constructor(private readonly options: HostLeaseOptions) {
    super();
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 2 || options.ttlSeconds > 3600) {
      throw new ClusterError('BAD_CONFIG', `lease TTL ${options.ttlSeconds}s must be an integer between 2 and 3600`);
    }
  }

  get hostId(): string {
    return this.options.hostId;
  }

  /**
   * True while the lease is certainly alive: the last proof (grant or
   * keepalive answer) is less than half a TTL old. Half, not all of it, leaves
   * room for clock drift between here and the etcd leader.
   */
  valid(now = Date.now()): boolean {
    return this.lease !== undefined && now - this.lastProofAt < (this.options.ttlSeconds * 1000) / 2;
  }

  /** Registers (or re-registers) now; throws ETCD_UNAVAILABLE when etcd does not answer. */
  async register(): Promise<void> {
    this.registering ??= this.doRegister().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  /** Throws the typed error callers show to Docker when this host may not allocate. */
  async ensureValid(): Promise<void> {
    if (this.valid()) return;
    try {
      await this.register();
    } catch (err) {
      // Docker shows the user only this message, so it carries the reason (etcd unreachable, and how).
      const reason = err instanceof Error ? err.message : String(err);
      throw new ClusterError('HOST_FENCED', `host ${this.hostId} cannot confirm its etcd lease, so it hands out no address (${reason})`, {
        cause: err,
      });
    }
  }

  private async doRegister(): Promise<void> {
    const { store, hostId, ttlSeconds, logger } = this.options;
    const previous = this.lease;
    const lease = store.client.lease(ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', (err) => this.onLost(lease, err));
    lease.on('keepaliveSucceeded', () => {
      if (this.lease === lease) this.lastProofAt = Date.now();
    });
    const record: HostRecord = {
      hostId,
      registeredAt: new Date().toISOString(),
      ...(this.options.underlayIp ? { underlayIp: this.options.underlayIp } : {}),
    };
    const startedAt = Date.now();
    try {
      await store.call(`register host ${hostId}`, () => lease.put(store.keys.host(hostId)).value(JSON.stringify(record)).exec());
    } catch (err) {
      lease.release();
      throw err;
    }
    this.lease = lease;
    this.lastProofAt = startedAt;
    // The old lease's keys moved to the new one with the put; letting it expire is harmless.
    previous?.release();
    logger.info({ hostId, ttlSeconds }, 'cluster: host registered in etcd');
    this.emit('registered');
  }

  private onLost(lease: Lease, err: Error): void {
    if (this.lease !== lease || this.closed) return;
    this.options.logger.warn({ err: err.message, hostId: this.hostId }, 'cluster: etcd lease lost; fenced until re-registered');
    this.lease = undefined;
    lease.release();
    this.emit('lost');
    this.scheduleRetry(500);
  }

  /** Keeps trying to register until it succeeds (etcd down at start). */
  retryInBackground(): void {
    this.scheduleRetry(500);
  }

  private scheduleRetry(delayMs: number): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.register().catch(() => this.scheduleRetry(Math.min(delayMs * 2, this.options.maxRetryMs ?? 5_000)));
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Stops keeping the lease alive WITHOUT revoking it: a restart within the TTL keeps the host's identity. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.lease?.release();
    this.lease = undefined;
  }

  /** Ends the host's membership now (a host that leaves the cluster for good). */
  async revoke(): Promise<void> {
    const lease = this.lease;
    this.close();
    if (lease) await this.options.store.call(`revoke lease of ${this.hostId}`, () => lease.revoke());
  }
}

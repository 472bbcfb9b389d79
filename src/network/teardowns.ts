/**
 * Endpoint teardowns that finish after DeleteEndpoint has been answered.
 * Docker waits on DeleteEndpoint for every `--rm` and stop, but once the
 * `deleting` journal entry is durable the rest is crash-safe (startup and the
 * reconciler finish it), so it need not sit on Docker's critical path.
 * Whatever depends on a finished teardown waits for it here instead of failing.
 */
import type { Logger } from '../log.js';
import type { EndpointRecord } from './records.js';

const bareIp = (cidr: string): string => cidr.split('/')[0] ?? cidr;

export class PendingTeardowns {
  private readonly pending = new Map<string, { record: EndpointRecord; done: Promise<void> }>();

  constructor(private readonly logger: Logger) {}

  /** Runs `work` detached; a failure is logged and leaves the record `deleting` for the reconciler and the next start. */
  start(record: EndpointRecord, work: () => Promise<void>): void {
    const done = work()
      .catch((err: unknown) => {
        this.logger.error({ err, endpoint: record.id }, 'background endpoint teardown failed; reconciliation will retry');
      })
      .finally(() => {
        if (this.pending.get(record.id)?.done === done) this.pending.delete(record.id);
      });
    this.pending.set(record.id, { record, done });
  }

  /**
   * Waits for teardowns a new endpoint would collide with: one of the same
   * network holding one of its addresses (Docker hands a released address out
   * again at once, and `--ip` asks for it), and, when it publishes ports, any
   * that still holds published ports.
   */
  async waitForConflicts(networkId: string, addresses: readonly string[], publishes: boolean): Promise<void> {
    if (this.pending.size === 0) return;
    const wanted = new Set(addresses.map(bareIp));
    await this.waitFor(
      ({ networkId: net, addresses: held, portMappings }) =>
        (net === networkId && held.some((a) => wanted.has(bareIp(a)))) || (publishes && portMappings.length > 0),
    );
  }

  /** DeleteNetwork: every endpoint of the network is gone first. */
  waitForNetwork(networkId: string): Promise<void> {
    return this.waitFor((record) => record.networkId === networkId);
  }

  /** Shutdown: nothing left half-done that a clean stop could finish. */
  drain(): Promise<void> {
    return this.waitFor(() => true);
  }

  private async waitFor(matches: (record: EndpointRecord) => boolean): Promise<void> {
    const waits = [...this.pending.values()].filter(({ record }) => matches(record)).map(({ done }) => done);
    if (waits.length > 0) await Promise.all(waits);
  }
}

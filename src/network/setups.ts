/**
 * Endpoint set-ups that finish after CreateEndpoint has been answered.
 *
 * Docker serialises CreateEndpoint within a network, so a chain run inside it
 * puts every container of a burst in one queue. Once the `creating` journal
 * entry is durable and the reply's fields are known (the address came from
 * IPAM, the MAC is chosen here and handed to the chain), the chain can run
 * while dockerd goes on. Join, the first call that needs the link, waits for
 * it and reports its failure; Docker then deletes the endpoint.
 */

export class PendingSetups {
  /** Settles when the endpoint's chain has run; a failure stays until the endpoint is deleted or re-created. */
  private readonly pending = new Map<string, Promise<void>>();

  start(endpointId: string, work: () => Promise<void>): void {
    const done = work();
    // Observed later by Join; until then a rejection must not count as unhandled.
    done.catch(() => undefined);
    this.pending.set(endpointId, done);
    void done.then(() => {
      if (this.pending.get(endpointId) === done) this.pending.delete(endpointId);
    }, () => undefined);
  }

  /** Waits for the endpoint's set-up, if one is running or failed; rethrows its failure. */
  async settled(endpointId: string): Promise<void> {
    await this.pending.get(endpointId);
  }

  forget(endpointId: string): void {
    this.pending.delete(endpointId);
  }

  /** Shutdown: every set-up has finished or rolled back. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }
}

/**
 * Serialises async work per key (an endpoint ID, a network ID, "iptables").
 * Work on different keys runs concurrently; work on one key runs in call order.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with work queued or running (for diagnostics and tests). */
  get activeKeys(): string[] {
    return [...this.tails.keys()];
  }
}

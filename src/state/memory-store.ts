import { PluginError } from '../errors.js';
import { plainCodec, type RecordCodec } from './record-codec.js';
import { isRecordId, type Store } from './store.js';

/**
 * A Store in memory, for unit tests. Records go through the same codec and a
 * JSON round trip as on disk, so a test sees exactly what a restart would.
 */
export class MemoryStore<T extends object> implements Store<T> {
  private readonly records = new Map<string, string>();

  constructor(
    readonly kind: string,
    private readonly codec: RecordCodec<T> = plainCodec<T>(),
  ) {}

  private check(id: string): void {
    if (!isRecordId(id)) throw new PluginError('INVALID_ARGUMENT', `invalid ${this.kind} record id "${id}"`);
  }

  async get(id: string): Promise<T | undefined> {
    this.check(id);
    const text = this.records.get(id);
    if (text === undefined) return undefined;
    try {
      return this.codec.decode(JSON.parse(text));
    } catch (err) {
      throw new PluginError('STATE_FAILED', `reading ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  async put(id: string, record: T): Promise<void> {
    this.check(id);
    this.records.set(id, JSON.stringify(this.codec.encode(record)));
  }

  async delete(id: string): Promise<void> {
    this.check(id);
    this.records.delete(id);
  }

  async list(onCorrupt?: (id: string, err: unknown) => void): Promise<Array<{ id: string; record: T }>> {
    const out: Array<{ id: string; record: T }> = [];
    for (const id of [...this.records.keys()].sort()) {
      try {
        out.push({ id, record: this.codec.decode(JSON.parse(this.records.get(id) as string)) });
      } catch (err) {
        onCorrupt?.(id, err);
      }
    }
    return out;
  }

  async ensureDir(): Promise<void> {}
}

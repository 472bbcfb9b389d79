import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import { readJsonIfExists, removeIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import { plainCodec, type RecordCodec } from './record-codec.js';
import { isRecordId, type Store } from './store.js';
import { namesIn } from '../util/dir.js';

/**
 * One JSON file per record under `<baseDir>/<kind>/<id>.json`, written atomically
 * with mode 0600, so the cost of a write does not grow with the number of records
 * and a crash never leaves a half-written record.
 */
export class RecordStore<T extends object> implements Store<T> {
  readonly dir: string;

  /**
   * @param durable fsync each write. Records of kernel objects (endpoints) need
   *   no fsync: a process crash keeps the page cache, and a host crash takes the
   *   links and namespaces with it (they are kept on the run dir, a tmpfs).
   *   Networks and pools must survive a reboot.
   * @param codec versions and validates each record (record-codec.ts).
   */
  constructor(
    baseDir: string,
    readonly kind: string,
    private readonly durable = true,
    private readonly codec: RecordCodec<T> = plainCodec<T>(),
  ) {
    this.dir = join(baseDir, kind);
  }

  private pathOf(id: string): string {
    if (!isRecordId(id)) throw new PluginError('INVALID_ARGUMENT', `invalid ${this.kind} record id "${id}"`);
    return join(this.dir, `${id}.json`);
  }

  async get(id: string): Promise<T | undefined> {
    try {
      const raw = await readJsonIfExists<unknown>(this.pathOf(id));
      return raw === undefined ? undefined : this.codec.decode(raw);
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError('STATE_FAILED', `reading ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  async put(id: string, record: T): Promise<void> {
    try {
      await writeJsonAtomically(this.pathOf(id), this.codec.encode(record), { fsync: this.durable });
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError('STATE_FAILED', `writing ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  async delete(id: string): Promise<void> {
    await removeIfExists(this.pathOf(id));
  }

  async list(onCorrupt?: (id: string, err: unknown) => void): Promise<Array<{ id: string; record: T }>> {
    const names = await namesIn(this.dir);
    const out: Array<{ id: string; record: T }> = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!isRecordId(id)) continue;
      try {
        const raw = await readJsonIfExists<unknown>(join(this.dir, name));
        if (raw !== undefined) out.push({ id, record: this.codec.decode(raw) });
      } catch (err) {
        // Typed like get()'s, so callers can report the code and the record it names.
        onCorrupt?.(id, err instanceof PluginError ? err : new PluginError('STATE_FAILED', `reading ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err }));
      }
    }
    return out;
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

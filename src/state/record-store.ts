import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import { readJsonIfExists, removeIfExists, writeJsonAtomically } from '../util/atomic-file.js';

const RECORD_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/**
 * One JSON file per record under `<stateDir>/<kind>/<id>.json`, written atomically
 * with mode 0600, so the cost of a write does not grow with the number of records
 * and a crash never leaves a half-written record.
 */
export class RecordStore<T extends object> {
  readonly dir: string;

  /**
   * @param durable fsync each write. Records of kernel objects (endpoints) need
   *   no fsync: a process crash keeps the page cache, and a host crash takes the
   *   links and namespaces with it. Networks and pools must survive a reboot.
   */
  constructor(
    stateDir: string,
    readonly kind: string,
    private readonly durable = true,
  ) {
    this.dir = join(stateDir, kind);
  }

  private pathOf(id: string): string {
    if (!RECORD_ID.test(id) || id.includes('..')) {
      throw new PluginError('INVALID_ARGUMENT', `invalid ${this.kind} record id "${id}"`);
    }
    return join(this.dir, `${id}.json`);
  }

  async get(id: string): Promise<T | undefined> {
    try {
      return await readJsonIfExists<T>(this.pathOf(id));
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError('STATE_FAILED', `reading ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  async put(id: string, record: T): Promise<void> {
    try {
      await writeJsonAtomically(this.pathOf(id), record, { fsync: this.durable });
    } catch (err) {
      if (err instanceof PluginError) throw err;
      throw new PluginError('STATE_FAILED', `writing ${this.kind} record ${id}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Idempotent. */
  async delete(id: string): Promise<void> {
    await removeIfExists(this.pathOf(id));
  }

  /** All readable records; unreadable (corrupt) ones are reported, not thrown. */
  async list(onCorrupt?: (id: string, err: unknown) => void): Promise<Array<{ id: string; record: T }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Array<{ id: string; record: T }> = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!RECORD_ID.test(id)) continue;
      try {
        const record = await readJsonIfExists<T>(join(this.dir, name));
        if (record) out.push({ id, record });
      } catch (err) {
        onCorrupt?.(id, err);
      }
    }
    return out;
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

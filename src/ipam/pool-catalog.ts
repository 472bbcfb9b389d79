import { PluginError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../state/store.js';
import { assertPoolId, POOL_CODEC, type PoolRecord } from './pool-record.js';

/**
 * The pool records, read back only through POOL_CODEC: the store may hold
 * records written without validation (a store built without the codec, or by
 * an older release), and a record must name the pool it is filed under.
 */
export class PoolCatalog {
  /**
   * Records this process has read or written. Only this process writes them (the
   * state lock), so RequestAddress and ReleaseAddress need no disk read or decode.
   */
  private readonly cache = new Map<string, PoolRecord>();

  constructor(
    private readonly store: Store<PoolRecord>,
    private readonly logger: Logger,
  ) {}

  ensureDir(): Promise<void> {
    return this.store.ensureDir();
  }

  /** All readable pool records (corrupt ones are logged and skipped). */
  async list(): Promise<PoolRecord[]> {
    const entries = await this.store.list((id, err) => this.logger.warn({ poolId: id, err }, 'unreadable pool record skipped'));
    const out: PoolRecord[] = [];
    for (const { id, record } of entries) {
      const parsed = decodeQuietly(record);
      if (parsed?.poolId === id) out.push(parsed);
      else this.logger.warn({ poolId: id }, 'invalid pool record skipped');
    }
    return out;
  }

  /** The pool's record, or undefined if there is no such pool. */
  async get(poolId: string): Promise<PoolRecord | undefined> {
    assertPoolId(poolId);
    const cached = this.cache.get(poolId);
    if (cached) return cached;
    const raw = await this.store.get(poolId);
    if (raw === undefined) return undefined;
    let parsed: PoolRecord;
    try {
      parsed = POOL_CODEC.decode(raw);
    } catch (err) {
      throw new PluginError('STATE_FAILED', `pool record ${poolId} is invalid: ${(err as Error).message}`);
    }
    if (parsed.poolId !== poolId) throw new PluginError('STATE_FAILED', `pool record ${poolId} is invalid: id mismatch`);
    this.cache.set(poolId, parsed);
    return parsed;
  }

  async getOrThrow(poolId: string): Promise<PoolRecord> {
    const record = await this.get(poolId);
    if (!record) throw new PluginError('NOT_FOUND', `unknown pool ${poolId} (not created by this driver, or already released)`);
    return record;
  }

  /** Whether any record, readable or not, is filed under this ID. */
  async exists(poolId: string): Promise<boolean> {
    return (await this.store.get(poolId)) !== undefined;
  }

  async put(record: PoolRecord): Promise<void> {
    // Dropped first: a failed write must not leave memory ahead of the disk.
    this.cache.delete(record.poolId);
    await this.store.put(record.poolId, record);
    this.cache.set(record.poolId, POOL_CODEC.decode(record));
  }

  async delete(poolId: string): Promise<void> {
    this.cache.delete(poolId);
    await this.store.delete(poolId);
  }
}

function decodeQuietly(raw: unknown): PoolRecord | undefined {
  try {
    return POOL_CODEC.decode(raw);
  } catch {
    return undefined;
  }
}

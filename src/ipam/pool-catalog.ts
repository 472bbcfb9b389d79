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
    const raw = await this.store.get(poolId);
    if (raw === undefined) return undefined;
    let parsed: PoolRecord;
    try {
      parsed = POOL_CODEC.decode(raw);
    } catch (err) {
      throw new PluginError('STATE_FAILED', `pool record ${poolId} is invalid: ${(err as Error).message}`);
    }
    if (parsed.poolId !== poolId) throw new PluginError('STATE_FAILED', `pool record ${poolId} is invalid: id mismatch`);
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

  put(record: PoolRecord): Promise<void> {
    return this.store.put(record.poolId, record);
  }

  delete(poolId: string): Promise<void> {
    return this.store.delete(poolId);
  }
}

function decodeQuietly(raw: unknown): PoolRecord | undefined {
  try {
    return POOL_CODEC.decode(raw);
  } catch {
    return undefined;
  }
}

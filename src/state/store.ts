/**
 * Where drivers keep the records Docker will not replay. The disk store
 * (record-store.ts) is the real one; memory-store.ts serves unit tests.
 * Implementations validate every record they return (see record-codec.ts):
 * a record that does not parse is corrupt, never handed out half-read.
 */
export interface Store<T> {
  /** The record, or undefined when there is none. STATE_FAILED if it exists but cannot be read. */
  get(id: string): Promise<T | undefined>;
  /** Replaces the record atomically: a reader sees the old or the new one, never a mix. */
  put(id: string, record: T): Promise<void>;
  /** Idempotent. */
  delete(id: string): Promise<void>;
  /** All readable records in id order; unreadable (corrupt) ones are reported, not thrown. */
  list(onCorrupt?: (id: string, err: unknown) => void): Promise<Array<{ id: string; record: T }>>;
  /** Creates whatever the store needs before its first use. */
  ensureDir(): Promise<void>;
}

const RECORD_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/** Record IDs become file names: one path component, no dot-dot. */
export const isRecordId = (id: string): boolean => RECORD_ID.test(id) && !id.includes('..');

/**
 * How a record kind is written and read back: every record on disk carries a
 * schema `version`, and every read is validated with the kind's zod schema.
 *
 * Upgrade path:
 * - A record without `version` is version 1 (everything written before
 *   versions existed: network and endpoint records of earlier releases).
 * - To change a kind's format, raise its `current` and add
 *   `upgrades[n]`, a pure function turning a version-n record into a
 *   version-(n+1) one. Reads upgrade step by step and validate the result;
 *   the next write stores the current version. Old records never need a
 *   migration run, and a record newer than this build is refused as corrupt
 *   instead of being misread.
 */
import type { z } from 'zod';
import { isRecord } from '../util/is-record.js';

export interface RecordCodec<T> {
  /** The record as stored: stamped with the kind's current schema version. */
  encode(record: T): unknown;
  /** Upgrades and validates a stored record; throws an Error saying what is wrong. */
  decode(raw: unknown): T;
}

type Upgrade = (record: Record<string, unknown>) => Record<string, unknown>;

export interface VersionedKind {
  /** The version written now. */
  current: number;
  /** Validates a record of the current version (including its `version` field). */
  schema: z.ZodType;
  /** upgrades[n] turns a version-n record into a version-(n+1) one. */
  upgrades?: Readonly<Record<number, Upgrade>>;
  /** Whether the domain type carries `version` itself (pool records) or it stays a storage detail. */
  versionInRecord?: boolean;
}

/** Records without a version field were written before versions existed. */
export const LEGACY_VERSION = 1;

export function versionedCodec<T>(kind: VersionedKind): RecordCodec<T> {
  return {
    encode: (record) => ({ ...(record as object), version: kind.current }),
    decode: (raw) => {
      if (!isRecord(raw)) throw new Error('not a JSON object');
      let version = raw.version ?? LEGACY_VERSION;
      if (typeof version !== 'number' || !Number.isInteger(version) || version < LEGACY_VERSION) {
        throw new Error(`invalid schema version ${JSON.stringify(version)}`);
      }
      if (version > kind.current) throw new Error(`schema version ${version} is newer than this build reads (${kind.current})`);
      let record: Record<string, unknown> = { ...raw, version };
      for (; version < kind.current; version++) {
        const upgrade = kind.upgrades?.[version];
        if (!upgrade) throw new Error(`no upgrade from schema version ${version}`);
        record = { ...upgrade(record), version: version + 1 };
      }
      const parsed = kind.schema.safeParse(record);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`schema version ${version}: ${issue ? `${issue.path.join('.') || '(record)'}: ${issue.message}` : 'invalid'}`);
      }
      if (kind.versionInRecord) return parsed.data as T;
      const { version: _stored, ...rest } = parsed.data as Record<string, unknown>;
      return rest as T;
    },
  };
}

/** For stores whose owner validates what it reads (and for tests of the store itself): any JSON object. */
export function plainCodec<T>(): RecordCodec<T> {
  return {
    encode: (record) => record,
    decode: (raw) => {
      if (!isRecord(raw)) throw new Error('not a JSON object');
      return raw as T;
    },
  };
}

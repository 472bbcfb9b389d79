/**
 * What docker-cni persists per IPAM pool (RecordStore kind 'pools', one file per pool).
 * Endpoint allocations are NOT stored here: host-local's own files are the
 * truth for those. Only the gateway, which host-local never hands out, lives here.
 */
import { z } from 'zod';
import { POOL_ID_PATTERN } from '../names.js';

export const PoolRecordSchema = z.object({
  version: z.literal(1),
  poolId: z.string().regex(POOL_ID_PATTERN),
  addressSpace: z.string(),
  family: z.union([z.literal(4), z.literal(6)]),
  /** Normalised CIDR of the pool (network address / prefix). */
  pool: z.string(),
  /** Normalised CIDR of --ip-range, if given. */
  subPool: z.string().optional(),
  /** host-local's rangeStart/rangeEnd derived from subPool. */
  rangeStart: z.string().optional(),
  rangeEnd: z.string().optional(),
  /** Gateway address (bare IP) reserved through RequestAddress; host-local is told to skip it. */
  gateway: z.string().optional(),
  /** True if the pool was picked from the default supernets. */
  automatic: z.boolean(),
  /** --ipam-opt values, as Docker sent them. */
  options: z.record(z.string(), z.string()),
  createdAt: z.string(),
});

export type PoolRecord = z.infer<typeof PoolRecordSchema>;

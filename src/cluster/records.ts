/** The JSON records docker-cni keeps in etcd, validated on every read. */
import { z } from 'zod';

export const HostRecordSchema = z.object({
  hostId: z.string(),
  /** Where other hosts route this host's blocks to (routed mode); absent when unknown. */
  underlayIp: z.string().optional(),
  registeredAt: z.string(),
});
export type HostRecord = z.infer<typeof HostRecordSchema>;

export const PoolRecordSchema = z.object({
  poolId: z.string(),
  cidr: z.string(),
  blockPrefix: z.number().int(),
  /** Reserved cluster-wide: no host hands it out. */
  gateway: z.string().optional(),
  createdBy: z.string(),
});
export type ClusterPoolRecord = z.infer<typeof PoolRecordSchema>;

export const BlockRecordSchema = z.object({
  host: z.string(),
  cidr: z.string(),
  claimedAt: z.string(),
});
export type BlockRecord = z.infer<typeof BlockRecordSchema>;

export function parseRecord<T>(schema: z.ZodType<T>, key: string, text: string): T {
  try {
    return schema.parse(JSON.parse(text));
  } catch (err) {
    throw new Error(`etcd key ${key} holds an invalid record: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * This host's side of a cluster pool, one JSON file per pool written
 * atomically on every change: which blocks it owns and which addresses it has
 * handed out. etcd knows only the blocks; the addresses never leave the host,
 * which is what keeps allocation free of per-container etcd round trips.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonIfExists, removeIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import { isClusterPoolId } from './keys.js';
import { namesIn } from '../util/dir.js';

const LocalPoolSchema = z.object({
  poolId: z.string(),
  cidr: z.string(),
  blockPrefix: z.number().int(),
  gateway: z.string().optional(),
  /** Block indexes this host owns in etcd (as of its last successful claim or check). */
  blocks: z.array(z.number().int()),
  /** Addresses handed out (bare IPs), each with when. */
  addresses: z.record(z.string(), z.string()),
  /** When Docker last asked for the pool (RequestPool): the reconciler leaves a pool alone for a grace period after. */
  requestedAt: z.string().optional(),
  /**
   * When Docker released the pool while addresses were still recorded: Docker is done with it on this host, so
   * those addresses are leftovers (a plugin killed mid-attachment), and the reconciler finishes the release.
   */
  releasedAt: z.string().optional(),
});
export type LocalPool = z.infer<typeof LocalPoolSchema>;

export class LocalPoolStore {
  constructor(private readonly dir: string) {}

  private path(poolId: string): string {
    if (!isClusterPoolId(poolId)) throw new Error(`invalid cluster pool id "${poolId}"`);
    return join(this.dir, `${poolId}.json`);
  }

  async load(poolId: string): Promise<LocalPool | undefined> {
    const raw = await readJsonIfExists<unknown>(this.path(poolId));
    return raw === undefined ? undefined : LocalPoolSchema.parse(raw);
  }

  async save(pool: LocalPool): Promise<void> {
    await writeJsonAtomically(this.path(pool.poolId), pool);
  }

  async remove(poolId: string): Promise<void> {
    await removeIfExists(this.path(poolId));
  }

  async list(): Promise<string[]> {
    const names = await namesIn(this.dir);
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter(isClusterPoolId).sort();
  }
}

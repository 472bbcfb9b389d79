/**
 * How a host gets a block: adopt one etcd already says is ours, else claim a
 * never-claimed one, else take over one whose owner is gone. Each step is a
 * compare-and-swap in etcd, so parallel hosts may retry but never share.
 */
import { formatCidr } from '../util/ip-math.js';
import type { Logger } from '../log.js';
import { blockAt, blockCount, nextUnclaimedBlock, startOffset, type BlockLayout } from './blocks.js';
import { ClusterError } from './errors.js';
import type { EtcdStore, OwnedBlock } from './etcd-store.js';
import type { BlockRecord } from './records.js';

/** Bound on compare-and-swap retries when other hosts keep winning the race. */
const MAX_CLAIM_ATTEMPTS = 32;

export interface ClaimContext {
  store: EtcdStore;
  hostId: string;
  poolId: string;
  layout: BlockLayout;
  logger: Logger;
}

function recordFor(ctx: ClaimContext, index: number): BlockRecord {
  return { host: ctx.hostId, cidr: formatCidr(blockAt(ctx.layout, index)), claimedAt: new Date().toISOString() };
}

/**
 * Returns a block index this host now owns and does not yet know about
 * (`known`), or throws POOL_EXHAUSTED / ETCD_UNAVAILABLE.
 */
export async function claimAnyBlock(ctx: ClaimContext, known: ReadonlySet<number>): Promise<number> {
  const count = blockCount(ctx.layout);
  for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
    const blocks = await ctx.store.listBlocks(ctx.poolId);
    // A claim that succeeded in etcd but was never recorded locally (a crash in between) is ours already.
    const adopted = [...blocks.values()].find((b) => b.record.host === ctx.hostId && !known.has(b.index));
    if (adopted) return adopted.index;
    const index = nextUnclaimedBlock(count, new Set(blocks.keys()), startOffset(ctx.hostId, count));
    if (index !== undefined) {
      if (await ctx.store.claimBlock(ctx.poolId, index, recordFor(ctx, index))) {
        ctx.logger.info({ poolId: ctx.poolId, block: formatCidr(blockAt(ctx.layout, index)) }, 'cluster: block claimed');
        return index;
      }
      continue;
    }
    const taken = await reclaimOrphan(ctx, [...blocks.values()]);
    if (taken !== undefined) return taken;
    throw new ClusterError('POOL_EXHAUSTED', `pool ${formatCidr(ctx.layout.pool)} has no free block left for host ${ctx.hostId}`);
  }
  throw new ClusterError('ETCD_UNAVAILABLE', `gave up claiming a block of ${formatCidr(ctx.layout.pool)} after ${MAX_CLAIM_ATTEMPTS} lost races`);
}

/** Takes over one block whose owner's host key is gone; undefined when every owner lives. */
async function reclaimOrphan(ctx: ClaimContext, blocks: OwnedBlock[]): Promise<number | undefined> {
  const hosts = await ctx.store.listHosts();
  for (const block of blocks) {
    if (block.record.host === ctx.hostId || hosts.has(block.record.host)) continue;
    if (await ctx.store.reclaimBlock(ctx.poolId, block, recordFor(ctx, block.index))) {
      ctx.logger.warn(
        { poolId: ctx.poolId, block: block.record.cidr, from: block.record.host },
        'cluster: block of a departed host reclaimed',
      );
      return block.index;
    }
  }
  return undefined;
}

/**
 * Gets the one block that holds a requested address (`--ip`): ours, free, or
 * a departed host's. A living host's block is refused.
 */
export async function claimBlockOf(ctx: ClaimContext, index: number, address: string): Promise<void> {
  const blocks = await ctx.store.listBlocks(ctx.poolId);
  const current = blocks.get(index);
  if (current?.record.host === ctx.hostId) return;
  if (!current) {
    if (await ctx.store.claimBlock(ctx.poolId, index, recordFor(ctx, index))) return;
    throw new ClusterError('ADDRESS_TAKEN', `${address} lies in a block another host has just claimed`);
  }
  const hosts = await ctx.store.listHosts();
  if (!hosts.has(current.record.host) && (await ctx.store.reclaimBlock(ctx.poolId, current, recordFor(ctx, index)))) return;
  throw new ClusterError('ADDRESS_TAKEN', `${address} lies in block ${current.record.cidr} of host ${current.record.host}`);
}

/**
 * After (re-)registration: which of the blocks this host believes it owns are
 * still its own in etcd. Blocks etcd no longer lists are claimed back; blocks
 * now owned by another host are reported lost (this host was partitioned for
 * longer than its lease, and its addresses there may be duplicated).
 */
export async function verifyOwnedBlocks(ctx: ClaimContext, believed: readonly number[]): Promise<{ owned: number[]; lost: number[] }> {
  const blocks = await ctx.store.listBlocks(ctx.poolId);
  const owned = new Set<number>();
  const lost: number[] = [];
  for (const index of believed) {
    const current = blocks.get(index);
    if (current?.record.host === ctx.hostId) owned.add(index);
    else if (!current && (await ctx.store.claimBlock(ctx.poolId, index, recordFor(ctx, index)))) owned.add(index);
    else lost.push(index);
  }
  for (const block of blocks.values()) if (block.record.host === ctx.hostId) owned.add(block.index);
  return { owned: [...owned].sort((a, b) => a - b), lost };
}

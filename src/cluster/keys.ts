/**
 * The etcd key layout of docker-cni's cluster state, defined once.
 *
 *   <prefix>/hosts/<hostId>            HostRecord, bound to the host's lease (gone = host gone)
 *   <prefix>/pools/<poolId>            PoolRecord, permanent until removed by an operator
 *   <prefix>/blocks/<poolId>/<index>   BlockRecord, the owner of one block of a pool
 *
 * Blocks are deliberately NOT bound to the lease: a plugin that is down longer
 * than the TTL (disabled, upgraded) must not lose its blocks while its
 * containers live. Others take a block over only when its owner's host key is
 * gone AND they have no free block left (see block-claims.ts).
 */
import { createHash } from 'node:crypto';
import { ClusterError } from './errors.js';

export const DEFAULT_KEY_PREFIX = '/docker-cni/v1';

const HOST_ID = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const CLUSTER_POOL_ID = /^dcnic-[0-9a-f]{16}$/;
const KEY_PREFIX = /^\/[A-Za-z0-9_./-]{1,100}$/;

export const isHostId = (text: string): boolean => HOST_ID.test(text);
export const isClusterPoolId = (text: string): boolean => CLUSTER_POOL_ID.test(text);

/** Cluster pools are named by their subnet, so every host that asks for a subnet gets the same pool. */
export function clusterPoolId(cidr: string): string {
  return `dcnic-${createHash('sha256').update(`pool:${cidr}`).digest('hex').slice(0, 16)}`;
}

export class ClusterKeys {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {
    if (!KEY_PREFIX.test(prefix) || prefix.endsWith('/')) {
      throw new ClusterError('BAD_CONFIG', `etcd key prefix "${prefix}" must start with "/" and not end with "/"`);
    }
  }

  hostsPrefix(): string {
    return `${this.prefix}/hosts/`;
  }

  host(hostId: string): string {
    if (!isHostId(hostId)) throw new ClusterError('BAD_CONFIG', `invalid host id "${hostId}"`);
    return `${this.hostsPrefix()}${hostId}`;
  }

  pool(poolId: string): string {
    return `${this.prefix}/pools/${checkedPool(poolId)}`;
  }

  blocksPrefix(poolId?: string): string {
    return poolId === undefined ? `${this.prefix}/blocks/` : `${this.prefix}/blocks/${checkedPool(poolId)}/`;
  }

  block(poolId: string, index: number): string {
    return `${this.blocksPrefix(poolId)}${index}`;
  }

  /** Parses a block key back into pool and index; undefined for foreign keys. */
  parseBlock(key: string): { poolId: string; index: number } | undefined {
    const rest = key.startsWith(this.blocksPrefix()) ? key.slice(this.blocksPrefix().length) : undefined;
    const match = rest === undefined ? null : /^(dcnic-[0-9a-f]{16})\/(0|[1-9][0-9]{0,8})$/.exec(rest);
    if (!match?.[1] || !match[2]) return undefined;
    return { poolId: match[1], index: Number(match[2]) };
  }

  parseHost(key: string): string | undefined {
    const rest = key.startsWith(this.hostsPrefix()) ? key.slice(this.hostsPrefix().length) : undefined;
    return rest !== undefined && isHostId(rest) ? rest : undefined;
  }
}

function checkedPool(poolId: string): string {
  if (!isClusterPoolId(poolId)) throw new ClusterError('BAD_CONFIG', `invalid cluster pool id "${poolId}"`);
  return poolId;
}

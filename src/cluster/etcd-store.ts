/**
 * The only file that talks to etcd for cluster IPAM. Every write that hands
 * out something shared is a transaction guarded by a compare, so two hosts
 * racing for one block cannot both win. Every failure to reach a quorum
 * becomes ETCD_UNAVAILABLE; nothing is half-written because each change is
 * one transaction.
 */
import { Etcd3, type IKeyValue } from 'etcd3';
import { ClusterError } from './errors.js';
import type { ClusterKeys } from './keys.js';
import {
  BlockRecordSchema,
  HostRecordSchema,
  parseRecord,
  PoolRecordSchema,
  type BlockRecord,
  type ClusterPoolRecord,
  type HostRecord,
} from './records.js';

export interface EtcdStoreOptions {
  endpoints: string[];
  keys: ClusterKeys;
  /** Deadline of each etcd call; keeps Docker's 30 s plugin timeout far away. */
  callTimeoutMs?: number;
}

export interface OwnedBlock {
  index: number;
  record: BlockRecord;
  modRevision: string;
}

export class EtcdStore {
  readonly client: Etcd3;
  readonly keys: ClusterKeys;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new ClusterError('BAD_CONFIG', 'no etcd endpoints configured');
    for (const endpoint of options.endpoints) {
      if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(endpoint)) {
        throw new ClusterError('BAD_CONFIG', `etcd endpoint "${endpoint}" must look like http://host:port`);
      }
    }
    const timeout = options.callTimeoutMs ?? 2_000;
    this.keys = options.keys;
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: timeout,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    });
  }

  /** Runs one etcd operation, turning any transport failure into a typed error with context. */
  async call<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ClusterError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new ClusterError('ETCD_UNAVAILABLE', `etcd unreachable while trying to ${what}: ${detail}`, { cause: err });
    }
  }

  async getPool(poolId: string): Promise<ClusterPoolRecord | undefined> {
    const key = this.keys.pool(poolId);
    const text = await this.call(`read pool ${poolId}`, () => this.client.get(key).string());
    return text === null ? undefined : parseRecord(PoolRecordSchema, key, text);
  }

  /** Creates the pool unless it exists; returns what etcd holds afterwards. */
  async ensurePool(record: ClusterPoolRecord): Promise<ClusterPoolRecord> {
    const key = this.keys.pool(record.poolId);
    const result = await this.call(`create pool ${record.cidr}`, () =>
      this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(record)))
        .else(this.client.get(key))
        .commit(),
    );
    if (result.succeeded) return record;
    const kv = result.responses[0]?.response_range?.kvs[0];
    if (!kv) throw new ClusterError('ETCD_UNAVAILABLE', `pool ${record.cidr} vanished during creation; retry`);
    return parseRecord(PoolRecordSchema, key, kv.value.toString());
  }

  async deletePool(poolId: string): Promise<void> {
    await this.call(`delete pool ${poolId}`, () => this.client.delete().key(this.keys.pool(poolId)).exec());
  }

  async listBlocks(poolId: string): Promise<Map<number, OwnedBlock>> {
    const prefix = this.keys.blocksPrefix(poolId);
    const response = await this.call(`list blocks of ${poolId}`, () => this.client.getAll().prefix(prefix).exec());
    const blocks = new Map<number, OwnedBlock>();
    for (const kv of response.kvs) {
      const parsed = this.keys.parseBlock(kv.key.toString());
      if (!parsed) continue;
      blocks.set(parsed.index, toOwned(parsed.index, kv));
    }
    return blocks;
  }

  async listHosts(): Promise<Map<string, HostRecord>> {
    const response = await this.call('list hosts', () => this.client.getAll().prefix(this.keys.hostsPrefix()).exec());
    const hosts = new Map<string, HostRecord>();
    for (const kv of response.kvs) {
      const hostId = this.keys.parseHost(kv.key.toString());
      if (hostId) hosts.set(hostId, parseRecord(HostRecordSchema, kv.key.toString(), kv.value.toString()));
    }
    return hosts;
  }

  /** Claims a never-claimed block: succeeds only if nobody holds its key. */
  async claimBlock(poolId: string, index: number, record: BlockRecord): Promise<boolean> {
    const key = this.keys.block(poolId, index);
    const result = await this.call(`claim block ${record.cidr}`, () =>
      this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(JSON.stringify(record))).commit(),
    );
    return result.succeeded;
  }

  /**
   * Takes over a departed host's block: succeeds only if the block is
   * unchanged since it was read AND the old owner's host key (bound to its
   * lease) no longer exists, so a living host never loses a block.
   */
  async reclaimBlock(poolId: string, seen: OwnedBlock, record: BlockRecord): Promise<boolean> {
    const key = this.keys.block(poolId, seen.index);
    const ownerKey = this.keys.host(seen.record.host);
    const result = await this.call(`reclaim block ${record.cidr} from ${seen.record.host}`, () =>
      this.client
        .if(key, 'Mod', '==', Number(seen.modRevision))
        .and(ownerKey, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(record)))
        .commit(),
    );
    return result.succeeded;
  }

  /** Gives a block back, only if it is still the one `seen` (owned by us, unchanged). */
  async releaseBlock(poolId: string, seen: OwnedBlock): Promise<boolean> {
    const key = this.keys.block(poolId, seen.index);
    const result = await this.call(`release block ${seen.record.cidr}`, () =>
      this.client.if(key, 'Mod', '==', Number(seen.modRevision)).then(this.client.delete().key(key)).commit(),
    );
    return result.succeeded;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function toOwned(index: number, kv: IKeyValue): OwnedBlock {
  return { index, record: parseRecord(BlockRecordSchema, kv.key.toString(), kv.value.toString()), modRevision: kv.mod_revision };
}

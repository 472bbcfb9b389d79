import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CachedAttachment } from '../cni/types.js';
import type { Logger } from '../log.js';
import type { NetworkRecord, EndpointRecord } from '../network/records.js';
import type { PoolRecord } from '../ipam/pool-record.js';
import { CNI_ARG, endpointPrefixOfHostLink, isAllocationId, networkPrefixOfBridge, shortId } from '../names.js';
import { formatCidr, parseCidr } from '../util/ip-math.js';
import type { DockerNetworkView, DockerView } from './docker-view.js';

export type GcKind = 'endpoint' | 'network' | 'pool' | 'reservation' | 'cache' | 'link' | 'firewall';

export interface GcAction {
  kind: GcKind;
  id: string;
  reason: string;
  error?: string;
}

export interface GcReport {
  dryRun: boolean;
  dockerReachable: boolean;
  actions: GcAction[];
}

/** A multi-host (etcd) pool as held on this host: the addresses it handed out, each with when. */
export interface ClusterPoolView {
  poolId: string;
  cidr: string;
  addresses: Record<string, string>;
  /** When Docker last asked for the pool. */
  requestedAt?: string;
  /** Set when Docker released the pool while addresses were still recorded. */
  releasedAt?: string;
}

/** The cluster IPAM's side of reconciliation; absent on a host without etcd. */
export interface ClusterReconcileTargets {
  listPools(): Promise<ClusterPoolView[]>;
  releaseAddress(poolId: string, ip: string): Promise<void>;
  releasePool(poolId: string): Promise<void>;
}

/** What the reconciler may inspect and remove; the drivers provide it, under their own locks. */
export interface ReconcileTargets {
  listNetworks(): NetworkRecord[];
  listEndpoints(): EndpointRecord[];
  removeStaleEndpoint(id: string): Promise<void>;
  removeStaleNetwork(id: string): Promise<void>;
  listPools(): Promise<PoolRecord[]>;
  listReservations(poolId: string): Promise<Map<string, { containerId: string; ifName: string }>>;
  releaseAddress(poolId: string, ip: string): Promise<void>;
  releasePool(poolId: string): Promise<void>;
  listCachedAttachments(): Promise<CachedAttachment[]>;
  deleteCachedAttachment(entry: CachedAttachment): Promise<void>;
  listTaggedFirewallNetworks(): Promise<Set<string>>;
  removeFirewallNetwork(idPrefix: string): Promise<void>;
  deleteLink(name: string): Promise<void>;
  cluster?: ClusterReconcileTargets;
}

export interface ReconcilerOptions {
  targets: ReconcileTargets;
  docker: DockerView;
  hostLocalDataDir: string;
  logger: Logger;
  /** Objects younger than this are never touched: Docker may not have recorded them yet. */
  graceMs?: number;
  /** Lists link names of this host (default: /sys/class/net). */
  listLinks?: () => Promise<string[]>;
  /**
   * A single pass (the CLI's `gc`), which cannot see anything stay missing: what carries a timestamp goes on its
   * age alone, as a serving plugin's first pass cannot do.
   */
  oneShot?: boolean;
  now?: () => number;
}

/**
 * Compares docker-cni's records, the CNI cache, host-local reservations, links
 * and firewall rules with what Docker knows, and removes what no longer exists
 * (kubelet/containerd-style CNI GC). Never touches anything younger than the
 * grace period or anything Docker still lists. Runs in the background or from
 * the CLI, never inside a plugin request.
 */
export class Reconciler {
  private readonly graceMs: number;
  private readonly now: () => number;
  private running: Promise<GcReport> | undefined;
  /** First time each orphan (a network, endpoint, pool or reservation Docker no longer has; a cache entry, link or rule set) was seen. */
  private readonly orphanSince = new Map<string, number>();

  constructor(private readonly opts: ReconcilerOptions) {
    this.graceMs = opts.graceMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** One pass; concurrent callers share the pass in flight. */
  runPass(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    if (!this.running) {
      this.running = this.pass(options.dryRun ?? false).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private old(iso: string | undefined): boolean {
    const t = iso ? Date.parse(iso) : NaN;
    return Number.isNaN(t) || this.now() - t > this.graceMs;
  }

  private async pass(dryRun: boolean): Promise<GcReport> {
    const { targets, logger } = this.opts;
    const actions: GcAction[] = [];
    const act = async (action: GcAction, work: () => Promise<void>): Promise<void> => {
      actions.push(action);
      if (dryRun) return;
      try {
        await work();
      } catch (err) {
        action.error = err instanceof Error ? err.message : String(err);
        logger.warn({ action }, 'reconciliation step failed');
      }
    };

    let dockerNetworks: DockerNetworkView[] | undefined;
    try {
      dockerNetworks = await this.opts.docker.networks();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'Docker unreachable; nothing is collected without it');
    }

    // Snapshots are taken links → cache → records, so anything a concurrent
    // CreateEndpoint makes after the record snapshot is already in the record.
    const links = await (this.opts.listLinks ?? listSysLinks)();
    const cache = await targets.listCachedAttachments();
    const taggedFirewallNetworks = await targets.listTaggedFirewallNetworks();
    // Networks present now keep their rules, and so do those removed below
    // (their removal takes the rules along).
    const networksAtStart = new Set(targets.listNetworks().map((n) => shortId(n.id)));

    // What nothing Docker lists owns is removed only once it has been seen so
    // for the grace period, across passes: see `orphan` below.
    const seenOrphans = new Set<string>();
    // `oldEnough`, when given, is the object's age check; a one-shot pass relies on it alone.
    const orphan = async (action: GcAction, work: () => Promise<void>, oldEnough?: boolean): Promise<void> => {
      const key = `${action.kind}:${action.id}`;
      seenOrphans.add(key);
      const since = this.orphanSince.get(key) ?? this.now();
      this.orphanSince.set(key, since);
      const missingLongEnough = this.now() - since >= this.graceMs || (this.opts.oneShot === true && oldEnough !== undefined);
      if ((oldEnough ?? true) && missingLongEnough) await act(action, work);
    };

    if (dockerNetworks) {
      const dockerById = new Map(dockerNetworks.map((n) => [n.id, n]));
      for (const network of targets.listNetworks()) {
        const known = dockerById.get(network.id);
        if (!known) {
          // Removing a network takes its bridge and every container's link
          // along, so one list without it is not enough: it must stay missing
          // for the grace period, and be older than that. The same holds for
          // endpoints, pools and reservations below.
          await orphan(
            { kind: 'network', id: network.id, reason: 'Docker no longer has this network' },
            () => targets.removeStaleNetwork(network.id),
            this.old(network.createdAt),
          );
          continue;
        }
        const live = new Set(known.endpoints.map((e) => e.id));
        for (const endpoint of targets.listEndpoints().filter((e) => e.networkId === network.id)) {
          if (!live.has(endpoint.id)) {
            await orphan(
              { kind: 'endpoint', id: endpoint.id, reason: 'no container of this network holds the endpoint' },
              () => targets.removeStaleEndpoint(endpoint.id),
              this.old(endpoint.createdAt),
            );
          }
        }
      }
      for (const endpoint of targets.listEndpoints()) {
        if (!targets.listNetworks().some((n) => n.id === endpoint.networkId)) {
          await orphan(
            { kind: 'endpoint', id: endpoint.id, reason: 'its network is gone' },
            () => targets.removeStaleEndpoint(endpoint.id),
            this.old(endpoint.createdAt),
          );
        }
      }
      await this.reconcilePools(dockerNetworks, orphan);
      await this.reconcileClusterPools(dockerNetworks, act);
    }

    // Objects that carry no timestamp (cache entries, links, rules) are removed
    // only when nothing Docker lists owns them, and only once they have been
    // orphans for the grace period: another docker-cni instance, or a
    // CreateEndpoint not yet joined, may own them.
    if (dockerNetworks) {
      const dockerEndpointIds = dockerNetworks.flatMap((n) => n.endpoints.map((e) => e.id));
      const dockerNetworkIds = dockerNetworks.map((n) => n.id);
      const dockerOwnsEndpoint = (prefix: string): boolean => dockerEndpointIds.some((id) => id.startsWith(prefix));
      const dockerOwnsNetwork = (prefix: string): boolean => dockerNetworkIds.some((id) => id.startsWith(prefix));

      const endpointIds = new Set(targets.listEndpoints().map((e) => e.id));
      for (const entry of cache) {
        // The cache dir is shared with other CNI runtimes, which may use the same
        // conflist names: only entries carrying our endpoint arg are ours.
        const ours = (entry.cniArgs ?? []).some(([key]) => key === CNI_ARG.endpointId);
        if (ours && !endpointIds.has(entry.containerId) && !dockerOwnsEndpoint(entry.containerId)) {
          await orphan(
            { kind: 'cache', id: `${entry.networkName}/${entry.containerId}/${entry.ifName}`, reason: 'cached attachment without an endpoint' },
            () => targets.deleteCachedAttachment(entry),
          );
        }
      }

      const linkOwners = new Set(targets.listEndpoints().map((e) => e.hostLinkName));
      const bridges = new Set(targets.listNetworks().map((n) => n.bridge).filter((b): b is string => !!b));
      for (const link of links) {
        const endpointPrefix = endpointPrefixOfHostLink(link);
        const networkPrefix = networkPrefixOfBridge(link);
        if (endpointPrefix !== undefined && !linkOwners.has(link) && !dockerOwnsEndpoint(endpointPrefix)) {
          await orphan({ kind: 'link', id: link, reason: 'container link without an endpoint' }, () => targets.deleteLink(link));
        } else if (networkPrefix !== undefined && !bridges.has(link) && !dockerOwnsNetwork(networkPrefix)) {
          await orphan({ kind: 'link', id: link, reason: 'bridge without a network' }, () => targets.deleteLink(link));
        }
      }

      const networkPrefixes = new Set([...networksAtStart, ...targets.listNetworks().map((n) => shortId(n.id))]);
      for (const prefix of taggedFirewallNetworks) {
        if (!networkPrefixes.has(prefix) && !dockerOwnsNetwork(prefix)) {
          await orphan({ kind: 'firewall', id: prefix, reason: 'rules of a network that no longer exists' }, () =>
            targets.removeFirewallNetwork(prefix),
          );
        }
      }
      for (const key of this.orphanSince.keys()) if (!seenOrphans.has(key)) this.orphanSince.delete(key);
    }

    if (actions.length > 0) logger.info({ dryRun, actions }, 'reconciliation pass');
    return { dryRun, dockerReachable: dockerNetworks !== undefined, actions };
  }

  /** `orphan`: removes what stays unowned for the grace period across passes, once `oldEnough` (see pass). */
  private async reconcilePools(
    dockerNetworks: DockerNetworkView[],
    orphan: (action: GcAction, work: () => Promise<void>, oldEnough: boolean) => Promise<void>,
  ): Promise<void> {
    const { targets } = this.opts;
    for (const pool of await targets.listPools()) {
      const holders = networksOfSubnet(dockerNetworks, pool.pool);
      if (holders.length === 0) {
        await orphan({ kind: 'pool', id: pool.poolId, reason: `no Docker network uses ${pool.pool}` }, () => targets.releasePool(pool.poolId), this.old(pool.createdAt));
        continue;
      }
      const liveIps = new Set(holders.flatMap((n) => n.endpoints.flatMap((e) => e.addresses)));
      for (const [ip, reservation] of await targets.listReservations(pool.poolId)) {
        if (liveIps.has(ip) || !isAllocationId(reservation.containerId)) continue;
        const since = await mtimeIso(join(this.opts.hostLocalDataDir, pool.poolId, ip));
        await orphan(
          { kind: 'reservation', id: `${pool.poolId}/${ip}`, reason: 'no container holds this address' },
          () => targets.releaseAddress(pool.poolId, ip),
          this.old(since),
        );
      }
    }
  }

  /**
   * A plugin killed between handing out a cluster address and Docker's
   * ReleaseAddress leaves the address recorded, and with it the host's blocks
   * in etcd (a pool is given back only once empty). Addresses no container of
   * this host holds are freed after the grace period; then the pool goes
   * back once Docker is done with it: it released it, or lists no network of
   * its subnet.
   */
  private async reconcileClusterPools(
    dockerNetworks: DockerNetworkView[],
    act: (action: GcAction, work: () => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const cluster = this.opts.targets.cluster;
    if (!cluster) return;
    for (const pool of await cluster.listPools()) {
      const holders = networksOfSubnet(dockerNetworks, pool.cidr);
      const liveIps = new Set(holders.flatMap((n) => n.endpoints.flatMap((e) => e.addresses)));
      let kept = 0;
      for (const [ip, since] of Object.entries(pool.addresses)) {
        if (liveIps.has(ip) || !this.old(since)) {
          kept++;
          continue;
        }
        await act({ kind: 'reservation', id: `${pool.poolId}/${ip}`, reason: 'no container holds this cluster address' }, () =>
          cluster.releaseAddress(pool.poolId, ip),
        );
      }
      const dockerDone = pool.releasedAt !== undefined || holders.length === 0;
      if (kept === 0 && dockerDone && this.old(pool.requestedAt)) {
        await act({ kind: 'pool', id: pool.poolId, reason: `Docker is done with cluster pool ${pool.cidr} on this host` }, () =>
          cluster.releasePool(pool.poolId),
        );
      }
    }
  }
}

/**
 * Docker shows a subnet as the user wrote it (`fd00:0001::/64`), the pools hold it canonical (`fd00:1::/64`):
 * compared as text, a pool in use would look unused and be released.
 */
function networksOfSubnet(networks: DockerNetworkView[], pool: string): DockerNetworkView[] {
  const canonical = (text: string): string => {
    const parsed = parseCidr(text);
    return parsed ? formatCidr(parsed.cidr) : text;
  };
  const wanted = canonical(pool);
  return networks.filter((n) => n.subnets.some((subnet) => canonical(subnet) === wanted));
}

async function listSysLinks(): Promise<string[]> {
  try {
    return await readdir('/sys/class/net');
  } catch {
    return [];
  }
}

async function mtimeIso(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).mtime.toISOString();
  } catch {
    return undefined;
  }
}

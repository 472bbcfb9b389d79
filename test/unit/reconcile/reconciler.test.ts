import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CachedAttachment } from '../../../src/cni/types.js';
import type { PoolRecord } from '../../../src/ipam/pool-record.js';
import { silentLogger } from '../../../src/log.js';
import { bridgeNameFor, generatedCniName, hostLinkNameFor } from '../../../src/names.js';
import type { EndpointRecord, NetworkRecord } from '../../../src/network/records.js';
import type { DockerNetworkView, DockerView } from '../../../src/reconcile/docker-view.js';
import { Reconciler, type ClusterPoolView, type ClusterReconcileTargets, type GcAction, type GcReport, type ReconcileTargets } from '../../../src/reconcile/reconciler.js';
import { createDriverHarness, endpointRequest, gate, hexId, networkRequest, settle, swarmId } from '../network/driver-harness.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
const GRACE_MS = 60_000;
const OLD = new Date(NOW - 10 * GRACE_MS).toISOString();
const YOUNG = new Date(NOW - 1_000).toISOString();

function networkRecord(id: string, createdAt = OLD, fields: Partial<NetworkRecord> = {}): NetworkRecord {
  return {
    id,
    createdAt,
    mode: 'generated',
    cniName: generatedCniName(id),
    conflist: { cniVersion: '1.0.0', name: generatedCniName(id), plugins: [{ type: 'bridge' }] },
    bridge: bridgeNameFor(id),
    ipv4: [{ pool: '10.231.1.0/24', gateway: '10.231.1.1' }],
    ipv6: [],
    internal: false,
    icc: true,
    masquerade: true,
    isolate: true,
    options: {},
    ...fields,
  };
}

function endpointRecord(id: string, networkId: string, createdAt = OLD): EndpointRecord {
  return {
    id,
    networkId,
    status: 'ready',
    createdAt,
    hostLinkName: hostLinkNameFor(id),
    ifName: 'eth0',
    addresses: ['10.231.1.5/24'],
    portMappings: [],
    conflist: { cniVersion: '1.0.0', name: generatedCniName(networkId), plugins: [{ type: 'bridge' }] },
    cniArgs: [],
    capabilityArgs: {},
    staticRoutes: [],
  };
}

function poolRecord(poolId: string, pool: string, createdAt = OLD): PoolRecord {
  return { version: 1, poolId, addressSpace: 'CniLocal', family: 4, pool, automatic: false, options: {}, createdAt };
}

function cacheEntry(networkName: string, containerId: string, cniArgs: Array<[string, string]> = []): CachedAttachment {
  return { kind: 'cniCacheV1', containerId, config: '', ifName: 'eth0', networkName, cniArgs };
}

/** In-memory targets: removals really remove, so later steps of a pass see the effect, as with the real drivers. */
class FakeTargets implements ReconcileTargets {
  cluster?: ClusterReconcileTargets;
  networks: NetworkRecord[] = [];
  endpoints: EndpointRecord[] = [];
  pools: PoolRecord[] = [];
  reservations = new Map<string, Map<string, { containerId: string; ifName: string }>>();
  cache: CachedAttachment[] = [];
  tagged = new Set<string>();
  readonly calls: string[] = [];
  /** Calls (as recorded in `calls`) that throw. */
  readonly failing = new Set<string>();

  private record(call: string): void {
    this.calls.push(call);
    if (this.failing.has(call)) throw new Error(`simulated failure of ${call}`);
  }

  listNetworks(): NetworkRecord[] {
    return [...this.networks];
  }
  listEndpoints(): EndpointRecord[] {
    return [...this.endpoints];
  }
  async removeStaleEndpoint(id: string): Promise<void> {
    this.record(`removeStaleEndpoint ${id}`);
    this.endpoints = this.endpoints.filter((e) => e.id !== id);
  }
  async removeStaleNetwork(id: string): Promise<void> {
    this.record(`removeStaleNetwork ${id}`);
    this.endpoints = this.endpoints.filter((e) => e.networkId !== id);
    this.networks = this.networks.filter((n) => n.id !== id);
    this.tagged.delete(id.slice(0, 12));
  }
  async listPools(): Promise<PoolRecord[]> {
    return [...this.pools];
  }
  async listReservations(poolId: string): Promise<Map<string, { containerId: string; ifName: string }>> {
    return new Map(this.reservations.get(poolId) ?? []);
  }
  async releaseAddress(poolId: string, ip: string): Promise<void> {
    this.record(`releaseAddress ${poolId} ${ip}`);
    this.reservations.get(poolId)?.delete(ip);
  }
  async releasePool(poolId: string): Promise<void> {
    this.record(`releasePool ${poolId}`);
    this.pools = this.pools.filter((p) => p.poolId !== poolId);
  }
  async listCachedAttachments(): Promise<CachedAttachment[]> {
    return [...this.cache];
  }
  async deleteCachedAttachment(entry: CachedAttachment): Promise<void> {
    this.record(`deleteCachedAttachment ${entry.networkName}/${entry.containerId}`);
    this.cache = this.cache.filter((c) => c !== entry);
  }
  async listTaggedFirewallNetworks(): Promise<Set<string>> {
    return new Set(this.tagged);
  }
  async removeFirewallNetwork(idPrefix: string): Promise<void> {
    this.record(`removeFirewallNetwork ${idPrefix}`);
    this.tagged.delete(idPrefix);
  }
  async deleteLink(name: string): Promise<void> {
    this.record(`deleteLink ${name}`);
  }
}

class FakeDocker implements DockerView {
  calls = 0;
  constructor(public view: DockerNetworkView[] | Error) {}
  async networks(): Promise<DockerNetworkView[]> {
    this.calls++;
    if (this.view instanceof Error) throw this.view;
    return structuredClone(this.view);
  }
}

const summary = (report: GcReport): string[] => report.actions.map((a) => `${a.kind} ${a.id}`).sort();

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dcni-reconcile-unit-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** host-local's reservation file, with its mtime set to `iso`. */
async function reservationFile(poolId: string, ip: string, iso: string): Promise<void> {
  await mkdir(join(dataDir, poolId), { recursive: true });
  const path = join(dataDir, poolId, ip);
  await writeFile(path, 'dcni-alloc-x\r\neth0');
  const when = new Date(iso);
  await utimes(path, when, when);
}

/**
 * A host with one live network (L, endpoint LE, pool PL) and one of every kind
 * of leftover, all older than the grace period.
 */
async function staleWorld() {
  const ids = {
    live: hexId(),
    liveEp: hexId(),
    liveSwarm: swarmId(),
    goneNet: hexId(),
    goneNetEp: hexId(),
    staleEp: hexId(),
    orphanEp: hexId(),
    orphanEpNet: hexId(),
    livePool: 'dcni-00000000000000a1',
    stalePool: 'dcni-00000000000000b2',
    strayContainerLink: `dc${hexId().slice(0, 13)}`,
    strayBridge: `dcni-${hexId().slice(0, 10)}`,
    straySwarmBridge: bridgeNameFor(swarmId()),
    strayFirewall: hexId().slice(0, 12),
    strayCacheContainer: hexId(),
  };
  const targets = new FakeTargets();
  targets.networks = [networkRecord(ids.live), networkRecord(ids.liveSwarm), networkRecord(ids.goneNet)];
  targets.endpoints = [
    endpointRecord(ids.liveEp, ids.live),
    endpointRecord(ids.staleEp, ids.live),
    endpointRecord(ids.goneNetEp, ids.goneNet),
    endpointRecord(ids.orphanEp, ids.orphanEpNet),
  ];
  targets.pools = [poolRecord(ids.livePool, '10.231.1.0/24'), poolRecord(ids.stalePool, '10.231.9.0/24')];
  targets.reservations.set(
    ids.livePool,
    new Map([
      ['10.231.1.5', { containerId: 'dcni-alloc-live', ifName: 'eth0' }],
      ['10.231.1.6', { containerId: 'dcni-alloc-leaked', ifName: 'eth0' }],
      ['10.231.1.7', { containerId: 'not-ours', ifName: 'eth0' }],
    ]),
  );
  await reservationFile(ids.livePool, '10.231.1.6', OLD);
  await reservationFile(ids.livePool, '10.231.1.7', OLD);
  targets.cache = [
    cacheEntry(generatedCniName(ids.live), ids.liveEp, [['DOCKER_ENDPOINT_ID', ids.liveEp]]),
    cacheEntry(generatedCniName(ids.live), ids.strayCacheContainer, [['DOCKER_ENDPOINT_ID', ids.strayCacheContainer]]),
    cacheEntry('someone-elses-net', hexId()),
  ];
  targets.tagged = new Set([ids.live.slice(0, 12), ids.goneNet.slice(0, 12), ids.strayFirewall]);
  const links = [
    'lo',
    'eth0',
    'docker0',
    'veth1a2b3c4',
    'dcnotours',
    hostLinkNameFor(ids.liveEp),
    bridgeNameFor(ids.live),
    bridgeNameFor(ids.liveSwarm),
    ids.strayContainerLink,
    ids.strayBridge,
    ids.straySwarmBridge,
  ];
  const docker = new FakeDocker([
    {
      id: ids.live,
      name: 'live',
      subnets: ['10.231.1.0/24'],
      endpoints: [{ id: ids.liveEp, addresses: ['10.231.1.5'] }],
    },
    { id: ids.liveSwarm, name: 'span', subnets: ['10.233.1.0/24'], endpoints: [] },
    { id: hexId(), name: 'bridge', subnets: ['172.17.0.0/16'], endpoints: [] },
  ]);
  return { targets, docker, links, ids };
}

/** A reconciler whose clock stays at NOW: one pass = one run. */
function reconcilerAtNow(targets: ReconcileTargets, docker: DockerView, links: string[]): Reconciler {
  return new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: GRACE_MS, listLinks: async () => links, now: () => NOW });
}

/**
 * Cache entries, links and rules carry no timestamp, so the reconciler removes
 * them only once they have been orphans for the grace period: `run` here makes
 * one pass at NOW and one a grace period later, and merges what they did.
 */
function reconciler(targets: ReconcileTargets, docker: DockerView, links: string[], graceMs = GRACE_MS): { runPass(o?: { dryRun?: boolean }): Promise<GcReport> } {
  let now = NOW;
  const r = new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs, listLinks: async () => links, now: () => now });
  return {
    async runPass(options) {
      const first = await r.runPass(options);
      now += graceMs;
      const second = await r.runPass(options);
      now = NOW;
      const seen = new Set(first.actions.map((a) => `${a.kind} ${a.id}`));
      return { ...second, actions: [...first.actions, ...second.actions.filter((a) => !seen.has(`${a.kind} ${a.id}`))] };
    },
  };
}

describe('Reconciler', () => {
  test('removes every kind of leftover and nothing live', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const report = await reconciler(targets, docker, links).runPass();
    assert.equal(report.dryRun, false);
    assert.equal(report.dockerReachable, true);
    assert.deepEqual(
      summary(report),
      [
        `network ${ids.goneNet}`,
        `endpoint ${ids.staleEp}`,
        `endpoint ${ids.orphanEp}`,
        `pool ${ids.stalePool}`,
        `reservation ${ids.livePool}/10.231.1.6`,
        `cache ${generatedCniName(ids.live)}/${ids.strayCacheContainer}/eth0`,
        `link ${ids.strayContainerLink}`,
        `link ${ids.strayBridge}`,
        `link ${ids.straySwarmBridge}`,
        `firewall ${ids.strayFirewall}`,
      ].sort(),
    );
    assert.ok(report.actions.every((a) => a.error === undefined && a.reason.length > 0));
    assert.deepEqual(
      targets.networks.map((n) => n.id),
      [ids.live, ids.liveSwarm],
    );
    assert.deepEqual(
      targets.endpoints.map((e) => e.id),
      [ids.liveEp],
    );
    assert.deepEqual(
      targets.pools.map((p) => p.poolId),
      [ids.livePool],
    );
    assert.deepEqual([...(targets.reservations.get(ids.livePool)?.keys() ?? [])], ['10.231.1.5', '10.231.1.7']);
    assert.equal(targets.cache.length, 2);
    assert.deepEqual([...targets.tagged], [ids.live.slice(0, 12)]);
  });

  test('a second pass over a clean host does nothing', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const r = reconciler(targets, docker, links);
    await r.runPass();
    const cleanLinks = links.filter((l) => l !== ids.strayContainerLink && l !== ids.strayBridge && l !== ids.straySwarmBridge);
    const again = await reconciler(targets, docker, cleanLinks).runPass();
    assert.deepEqual(again.actions, []);
  });

  test('objects younger than the grace period are left alone', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    targets.networks = targets.networks.map((n) => ({ ...n, createdAt: YOUNG }));
    targets.endpoints = targets.endpoints.map((e) => ({ ...e, createdAt: YOUNG }));
    targets.pools = targets.pools.map((p) => ({ ...p, createdAt: YOUNG }));
    await reservationFile(ids.livePool, '10.231.1.6', YOUNG);
    const report = await reconcilerAtNow(targets, docker, links).runPass();
    const kinds = new Set(report.actions.map((a) => a.kind));
    for (const kind of ['network', 'endpoint', 'pool', 'reservation'] as const) assert.equal(kinds.has(kind), false, kind);
    assert.equal(targets.networks.length, 3);
    assert.equal(targets.endpoints.length, 4);
    assert.equal(targets.pools.length, 2);
  });

  test('dry run reports the same actions and removes nothing', async () => {
    const world = await staleWorld();
    const wet = await staleWorld();
    const dry = await reconciler(world.targets, world.docker, world.links).runPass({ dryRun: true });
    const real = await reconciler(wet.targets, wet.docker, wet.links).runPass();
    assert.equal(dry.dryRun, true);
    assert.equal(dry.actions.length, real.actions.length);
    assert.deepEqual(
      dry.actions.map((a) => a.kind).sort(),
      real.actions.map((a) => a.kind).sort(),
    );
    assert.deepEqual(world.targets.calls, []);
    assert.equal(world.targets.networks.length, 3);
    assert.equal(world.targets.endpoints.length, 4);
  });

  test('Docker unreachable: nothing is removed (ownership cannot be told without Docker)', async () => {
    const { targets, links } = await staleWorld();
    const report = await reconciler(targets, new FakeDocker(new Error('connect ENOENT /var/run/docker.sock')), links).runPass();
    assert.equal(report.dockerReachable, false);
    assert.deepEqual(summary(report), []);
    assert.deepEqual(targets.calls.filter((c) => !c.startsWith('list')), []);
  });

  test('timestamp-less orphans are removed only after the grace period, and never while Docker lists their owner', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const foreignEndpoint = hexId();
    const foreignLink = hostLinkNameFor(foreignEndpoint);
    const view = docker.view;
    assert.ok(Array.isArray(view));
    view[0]?.endpoints.push({ id: foreignEndpoint, addresses: [] });
    let now = NOW;
    const r = new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: GRACE_MS, listLinks: async () => [...links, foreignLink], now: () => now });
    const first = await r.runPass();
    assert.ok(!first.actions.some((a) => a.kind === 'link' || a.kind === 'cache' || a.kind === 'firewall'), summary(first).join());
    now += GRACE_MS;
    const second = await r.runPass();
    assert.ok(second.actions.some((a) => a.kind === 'link' && a.id === ids.strayContainerLink));
    assert.ok(!second.actions.some((a) => a.id === foreignLink), 'a link of an endpoint Docker lists is never removed');
  });

  test('a network Docker stops listing is torn down only once it has stayed missing for the grace period', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const view = docker.view;
    assert.ok(Array.isArray(view));
    assert.ok(view.some((n) => n.id === ids.live), 'the fixture lists the live network');
    let now = NOW;
    const r = new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: GRACE_MS, listLinks: async () => links, now: () => now });
    const removedNetworks = (report: GcReport): string[] => report.actions.filter((a) => a.kind === 'network').map((a) => a.id);

    // One list without the live network (a glitch), then it is back: nothing of it goes.
    docker.view = view.filter((n) => n.id !== ids.live);
    assert.deepEqual(removedNetworks(await r.runPass()), [], 'the first pass that misses a network removes none');
    docker.view = view;
    now += GRACE_MS;
    assert.deepEqual(removedNetworks(await r.runPass()), [ids.goneNet], 'the network missing on both passes goes');
    now += GRACE_MS / 2;
    docker.view = view.filter((n) => n.id !== ids.live);
    assert.deepEqual(removedNetworks(await r.runPass()), [], 'listed again in between: its clock started over');
    assert.ok(targets.networks.some((n) => n.id === ids.live));

    now += GRACE_MS;
    assert.deepEqual(removedNetworks(await r.runPass()), [ids.live], 'missing for the grace period: torn down');
    assert.ok(!targets.networks.some((n) => n.id === ids.live));
  });

  test('one Docker list without an endpoint, or without the network of a pool, removes none of them', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const view = docker.view;
    assert.ok(Array.isArray(view));
    let now = NOW;
    const r = new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: GRACE_MS, listLinks: async () => links, now: () => now });
    await r.runPass();
    now += GRACE_MS;
    await r.runPass(); // the fixture's leftovers are gone now
    const ofLiveNetwork = (report: GcReport): string[] =>
      report.actions.map((a) => `${a.kind} ${a.id}`).filter((a) => [ids.live, ids.liveEp, ids.livePool].some((id) => a.includes(id)));
    const glitches = [view.map((n) => (n.id === ids.live ? { ...n, endpoints: [] } : n)), view.filter((n) => n.id !== ids.live)];
    for (const glitch of glitches) {
      now += GRACE_MS;
      docker.view = glitch;
      assert.deepEqual(ofLiveNetwork(await r.runPass()), [], 'the pass that misses them removes nothing');
      docker.view = view;
      now += GRACE_MS;
      assert.deepEqual(ofLiveNetwork(await r.runPass()), [], 'listed again: their clocks started over');
    }
    assert.ok(targets.endpoints.some((e) => e.id === ids.liveEp));
    assert.ok(targets.pools.some((p) => p.poolId === ids.livePool));
    assert.ok(targets.reservations.get(ids.livePool)?.has('10.231.1.5'));

    docker.view = glitches[0]!;
    await r.runPass();
    now += GRACE_MS;
    assert.deepEqual(
      ofLiveNetwork(await r.runPass()).sort(),
      [`endpoint ${ids.liveEp}`, `reservation ${ids.livePool}/10.231.1.5`],
      'missing for the grace period: they go',
    );
  });

  test("a one-shot pass (the CLI's gc) removes what carries a timestamp on its age alone, and nothing without one", async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const report = await new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: GRACE_MS, listLinks: async () => links, now: () => NOW, oneShot: true }).runPass();
    assert.deepEqual(
      summary(report),
      [`network ${ids.goneNet}`, `endpoint ${ids.staleEp}`, `endpoint ${ids.orphanEp}`, `pool ${ids.stalePool}`, `reservation ${ids.livePool}/10.231.1.6`].sort(),
      'cache entries, links and rules need --grace-seconds 0 in a single pass',
    );
  });

  test('a one-shot pass with no grace period removes a missing network at once', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    const report = await new Reconciler({ targets, docker, hostLocalDataDir: dataDir, logger: silentLogger, graceMs: 0, listLinks: async () => links, now: () => NOW }).runPass();
    assert.ok(report.actions.some((a) => a.kind === 'network' && a.id === ids.goneNet));
  });

  test('a failing action is recorded and the pass goes on', async () => {
    const { targets, docker, links, ids } = await staleWorld();
    targets.failing.add(`removeStaleNetwork ${ids.goneNet}`);
    targets.failing.add(`deleteLink ${ids.strayContainerLink}`);
    const report = await reconciler(targets, docker, links).runPass();
    const failed = report.actions.filter((a): a is GcAction & { error: string } => a.error !== undefined);
    assert.deepEqual(
      failed.map((a) => `${a.kind} ${a.id}`).sort(),
      [`link ${ids.strayContainerLink}`, `network ${ids.goneNet}`].sort(),
    );
    assert.match(failed[0]?.error ?? '', /simulated failure/);
    assert.ok(targets.calls.includes(`deleteLink ${ids.strayBridge}`), 'later actions still ran');
    assert.ok(targets.calls.includes(`removeFirewallNetwork ${ids.strayFirewall}`));
    assert.ok(targets.calls.includes(`releasePool ${ids.stalePool}`));
  });

  test('concurrent callers share one pass', async () => {
    const { targets, docker, links } = await staleWorld();
    const r = reconcilerAtNow(targets, docker, links);
    const [a, b] = await Promise.all([r.runPass(), r.runPass()]);
    assert.equal(a, b);
    assert.equal(docker.calls, 1);
    await r.runPass();
    assert.equal(docker.calls, 2, 'a later call starts a new pass');
  });

  test(
    'a user conflist network\'s cache entries made by another CNI runtime are not ours to delete',
    async () => {
      const { targets, docker, links, ids } = await staleWorld();
      const userNet = networkRecord(hexId(), OLD, { mode: 'conflist', cniName: 'usernet' });
      targets.networks.push(userNet);
      docker.view = [...(docker.view as DockerNetworkView[]), { id: userNet.id, name: 'u', subnets: [], endpoints: [] }];
      targets.cache.push(cacheEntry('usernet', hexId(), [['K8S_POD_NAME', 'web-0']]));
      const report = await reconciler(targets, docker, links).runPass();
      assert.deepEqual(
        report.actions.filter((a) => a.kind === 'cache').map((a) => a.id),
        [`${generatedCniName(ids.live)}/${ids.strayCacheContainer}/eth0`],
      );
    },
  );
});

/** The cluster IPAM's local holdings, recording what the reconciler frees. */
class FakeClusterTargets implements ClusterReconcileTargets {
  readonly calls: string[] = [];
  constructor(public pools: ClusterPoolView[]) {}
  async listPools(): Promise<ClusterPoolView[]> {
    return structuredClone(this.pools);
  }
  async releaseAddress(poolId: string, ip: string): Promise<void> {
    this.calls.push(`releaseAddress ${poolId} ${ip}`);
    for (const pool of this.pools) if (pool.poolId === poolId) delete pool.addresses[ip];
  }
  async releasePool(poolId: string): Promise<void> {
    this.calls.push(`releasePool ${poolId}`);
    this.pools = this.pools.filter((p) => p.poolId !== poolId || Object.keys(p.addresses).length > 0);
  }
}

test('a pool counts as used when Docker shows its subnet written another way (IPv6 leading zeros)', async () => {
  const targets = new FakeTargets();
  targets.pools = [{ ...poolRecord('dcni-00000000000000d6', 'fd00:1::/64'), family: 6 }];
  targets.cluster = new FakeClusterTargets([{ poolId: 'dcnic-00000000000000d6', cidr: 'fd00:2::/64', requestedAt: OLD, addresses: {} }]);
  const docker = new FakeDocker([
    { id: hexId(), name: 'v6', subnets: ['fd00:0001:0000::/64'], endpoints: [] },
    { id: swarmId(), name: 'span6', subnets: ['FD00:0002::0/64'], endpoints: [] },
  ]);
  assert.deepEqual((await reconcilerAtNow(targets, docker, []).runPass()).actions, []);
});

describe('Reconciler on cluster pools', () => {
  const clusterWorld = () => {
    const cluster = new FakeClusterTargets([
      // In use here: one address held by a container, one leaked, one just handed out.
      { poolId: 'dcnic-00000000000000c1', cidr: '10.233.1.0/24', requestedAt: OLD, addresses: { '10.233.1.5': OLD, '10.233.1.6': OLD, '10.233.1.7': YOUNG } },
      // Docker released it with an address left (the plugin was killed mid-attachment); a swarm manager still lists the network.
      { poolId: 'dcnic-00000000000000c2', cidr: '10.233.2.0/24', requestedAt: OLD, releasedAt: OLD, addresses: { '10.233.2.9': OLD } },
      // No network of its subnet, but Docker asked for it a moment ago (its network is being created).
      { poolId: 'dcnic-00000000000000c3', cidr: '10.233.3.0/24', requestedAt: YOUNG, addresses: {} },
      // No network of its subnet for long.
      { poolId: 'dcnic-00000000000000c4', cidr: '10.233.4.0/24', requestedAt: OLD, addresses: {} },
    ]);
    const targets = new FakeTargets();
    targets.cluster = cluster;
    const docker = new FakeDocker([
      { id: swarmId(), name: 'span1', subnets: ['10.233.1.0/24'], endpoints: [{ id: hexId(), addresses: ['10.233.1.5'] }] },
      { id: swarmId(), name: 'span2', subnets: ['10.233.2.0/24'], endpoints: [] },
    ]);
    return { cluster, targets, docker };
  };

  test('frees addresses no container holds once past the grace period, then gives back pools Docker is done with', async () => {
    const { cluster, targets, docker } = clusterWorld();
    const report = await reconcilerAtNow(targets, docker, []).runPass();
    assert.deepEqual(summary(report), [
      'pool dcnic-00000000000000c2',
      'pool dcnic-00000000000000c4',
      'reservation dcnic-00000000000000c1/10.233.1.6',
      'reservation dcnic-00000000000000c2/10.233.2.9',
    ]);
    assert.deepEqual(
      cluster.pools.map((p) => [p.poolId, Object.keys(p.addresses)]),
      [
        ['dcnic-00000000000000c1', ['10.233.1.5', '10.233.1.7']],
        ['dcnic-00000000000000c3', []],
      ],
    );
    assert.deepEqual((await reconcilerAtNow(targets, docker, []).runPass()).actions, [], 'a second pass finds nothing');
  });

  test('a dry run frees nothing; Docker unreachable, nothing is even listed', async () => {
    const { cluster, targets, docker } = clusterWorld();
    const dry = await reconcilerAtNow(targets, docker, []).runPass({ dryRun: true });
    assert.equal(dry.actions.length, 4);
    assert.deepEqual(cluster.calls, []);
    const blind = await reconcilerAtNow(targets, new FakeDocker(new Error('connect ENOENT')), []).runPass();
    assert.deepEqual(blind.actions, []);
    assert.deepEqual(cluster.calls, []);
  });
});

describe('Reconciler with the real NetworkDriver', () => {
  test('stale endpoints and networks are torn down through the driver', async () => {
    const h = await createDriverHarness();
    try {
      const driver = await h.start();
      const liveNet = hexId();
      const goneNet = hexId();
      await driver.createNetwork(networkRequest(liveNet));
      await driver.createNetwork(networkRequest(goneNet, { v4: [{ pool: '10.231.2.0/24', gateway: '10.231.2.1/24' }] }));
      const liveEp = hexId();
      const staleEp = hexId();
      const goneNetEp = hexId();
      await driver.createEndpoint(endpointRequest(liveNet, liveEp, { address: '10.231.1.5/24' }));
      await driver.createEndpoint(endpointRequest(liveNet, staleEp, { address: '10.231.1.6/24' }));
      await driver.createEndpoint(endpointRequest(goneNet, goneNetEp, { address: '10.231.2.5/24' }));
      const targets = driverTargets(driver, h.firewall);
      const docker = new FakeDocker([{ id: liveNet, name: 'live', subnets: [], endpoints: [{ id: liveEp, addresses: ['10.231.1.5'] }] }]);
      const report = await new Reconciler({
        targets,
        docker,
        hostLocalDataDir: dataDir,
        logger: silentLogger,
        graceMs: 0,
        listLinks: async () => [...h.links.host],
        now: () => Date.now() + 1_000,
      }).runPass();
      assert.deepEqual(
        summary(report).filter((a) => !a.startsWith('link ')),
        [`endpoint ${staleEp}`, `network ${goneNet}`].sort(),
      );
      // The link snapshot predates the teardowns, so their (already deleted) links may be named again: harmless.
      const removedLinks = new Set([hostLinkNameFor(staleEp), hostLinkNameFor(goneNetEp)]);
      for (const action of report.actions.filter((a) => a.kind === 'link')) assert.ok(removedLinks.has(action.id), action.id);
      assert.deepEqual(
        driver.listEndpoints().map((e) => e.id),
        [liveEp],
      );
      assert.deepEqual(
        driver.listNetworks().map((n) => n.id),
        [liveNet],
      );
      assert.deepEqual(
        h.cni.of('DEL').map((c) => c.rt.containerId).sort(),
        [staleEp, goneNetEp].sort(),
      );
      assert.ok(h.links.host.has(hostLinkNameFor(liveEp)));
      assert.ok(!h.links.host.has(hostLinkNameFor(staleEp)));
      assert.deepEqual([...h.firewall.rules.keys()], [liveNet.slice(0, 12)]);
    } finally {
      await h.cleanup();
    }
  });

  test(
    'a pass running while a network is being created does not remove its fresh firewall rules',
    async () => {
      const h = await createDriverHarness();
      try {
        const driver = await h.start();
        const hold = gate();
        const rulesInstalled = gate();
        h.firewall.afterEnsure = async () => {
          rulesInstalled.open();
          await hold.promise;
        };
        const net = hexId();
        const creating = driver.createNetwork(networkRequest(net));
        await rulesInstalled.promise;
        const pass = new Reconciler({
          targets: driverTargets(driver, h.firewall),
          docker: new FakeDocker([]),
          hostLocalDataDir: dataDir,
          logger: silentLogger,
          listLinks: async () => [],
        }).runPass();
        await settle(10);
        hold.open();
        await Promise.all([creating, pass]);
        assert.ok(h.firewall.rules.has(net.slice(0, 12)), 'the new network lost its forwarding/isolation rules');
      } finally {
        await h.cleanup();
      }
    },
  );
});

/** The same wiring src/plugin.ts does, with the harness fakes for what is not the driver. */
function driverTargets(
  driver: Awaited<ReturnType<Awaited<ReturnType<typeof createDriverHarness>>['start']>>,
  firewall: { rules: Map<string, unknown>; removeNetwork(id: string): Promise<void> },
): ReconcileTargets {
  return {
    listNetworks: () => driver.listNetworks(),
    listEndpoints: () => driver.listEndpoints(),
    removeStaleEndpoint: (id) => driver.removeStaleEndpoint(id),
    removeStaleNetwork: (id) => driver.removeStaleNetwork(id),
    listPools: async () => [],
    listReservations: async () => new Map(),
    releaseAddress: async () => undefined,
    releasePool: async () => undefined,
    listCachedAttachments: async () => [],
    deleteCachedAttachment: async () => undefined,
    listTaggedFirewallNetworks: async () => new Set(firewall.rules.keys()),
    removeFirewallNetwork: (prefix) => firewall.removeNetwork(prefix),
    deleteLink: async () => undefined,
  };
}

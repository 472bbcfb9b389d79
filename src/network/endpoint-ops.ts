/**
 * The endpoint half of Docker's NetworkDriver, carried out with CNI. The chain
 * runs in a private staging netns (the container's netns usually does not
 * exist yet at CreateEndpoint); the resulting interface is moved into our
 * netns under a unique name and handed to Docker at Join.
 *
 * CreateEndpoint: plan (endpoint-plan.ts) -> journal ('creating') -> chain ADD
 * -> move the link out -> record ('ready'). When the reply's MAC can be chosen
 * up front, CreateEndpoint answers after the journal step and the chain runs
 * after it, with Join waiting for it (setups.ts). Any failure undoes the steps
 * before it; a restart finishes or undoes whatever the journal says was in flight.
 * Ports are published later, by the endpoint Docker makes the gateway (publication.ts).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  OPT,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type EndpointRequest,
  type ExternalConnectivityRequest,
  type JoinRequest,
  type JoinResponse,
  type PortBinding,
} from '../docker/api.js';
import { notFound, wrapError } from '../errors.js';
import { leaseOf, type StagingLease } from '../host/staging-netns.js';
import { CHAIN_IFNAME, shortId } from '../names.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { randomLocalMac } from '../util/mac.js';
import { Stopwatch } from '../util/stopwatch.js';
import type { NetworkDriverDeps } from './driver-deps.js';
import { chainDeclaresCapability, chainIsGatewayLess } from './conflist.js';
import {
  chainMasquerades,
  interfaceReply,
  planEndpoint,
  readEndpointRequest,
  readyEndpoint,
  runtimeConfOf,
} from './endpoint-plan.js';
import { readPortBindings } from './ports.js';
import { PortPublisher } from './publication.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import { PendingSetups } from './setups.js';
import { PendingTeardowns } from './teardowns.js';

export class EndpointOps {
  /** Endpoint records by ID, for port bookkeeping and cheap Join. */
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly locks = new KeyedLock();
  /** CreateEndpoint's port list, in case a ProgramExternalConnectivity carries none. */
  private readonly bindings = new Map<string, PortBinding[]>();
  private readonly publisher: PortPublisher;
  private readonly teardowns: PendingTeardowns;
  private readonly setups = new PendingSetups();
  /** Networks whose chain has completed an ADD in this process: their bridge exists. */
  private readonly networksAdded = new Set<string>();

  constructor(
    private readonly deps: NetworkDriverDeps,
    private readonly networkOf: (id: string) => NetworkRecord | undefined,
  ) {
    this.publisher = new PortPublisher(deps, this.locks, this.endpoints, networkOf);
    this.teardowns = new PendingTeardowns(deps.logger);
  }

  /** Loads the journal and finishes or undoes operations a crash interrupted. */
  async load(recover: boolean): Promise<void> {
    const log = this.deps.logger;
    await this.deps.endpoints.ensureDir();
    for (const { id, record } of await this.deps.endpoints.list((bad, err) => log.error({ err, id: bad }, 'corrupt endpoint record'))) {
      if (record.status === 'ready' || !recover) {
        this.endpoints.set(id, record);
        this.publisher.remember(record);
        if (recover) await this.recoverPublication(record);
        continue;
      }
      log.warn({ endpoint: id, status: record.status }, 'finishing an endpoint operation interrupted by a restart');
      try {
        await this.teardown(record, record.status === 'creating' ? record.stagingNetns : undefined);
      } catch (err) {
        log.error({ err, endpoint: id }, 'could not finish interrupted endpoint operation; reconciliation will retry');
        this.endpoints.set(id, record);
      }
    }
  }

  private async recoverPublication(record: EndpointRecord): Promise<void> {
    try {
      await this.publisher.recover(record);
    } catch (err) {
      this.deps.logger.error({ err, endpoint: record.id }, 'could not undo an interrupted port publication; DeleteEndpoint will retry');
    }
  }

  list(): EndpointRecord[] {
    return [...this.endpoints.values()];
  }

  async createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    return this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        return await this.createEndpointLocked(req);
      } catch (err) {
        throw wrapError(err, `CreateEndpoint ${shortId(req.EndpointID)}`);
      }
    });
  }

  private async createEndpointLocked(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    const network = this.networkOf(req.NetworkID);
    if (!network) throw notFound(`network ${shortId(req.NetworkID)} is not known to docker-cni`);
    // load() read every record, so memory is authoritative: no disk read on the start path.
    const existing = this.endpoints.get(req.EndpointID);
    if (existing?.status === 'ready' && existing.networkId === req.NetworkID) return interfaceReply(req, existing);
    if (existing) await this.teardown(existing, existing.stagingNetns);
    this.setups.forget(req.EndpointID);

    const requested = readEndpointRequest(network, req);
    // Ports are unpublished before a teardown goes to the background, so only addresses can collide.
    await this.teardowns.waitForConflicts(req.NetworkID, requested.addresses, false);
    // The reply carries the link's MAC: chosen here, the chain can run after the reply.
    const background = this.deps.backgroundSetup === true && (requested.mac !== undefined || chainDeclaresCapability(network.conflist, 'mac'));
    const inputs = background && !requested.mac ? { ...requested, mac: randomLocalMac() } : requested;
    const watch = new Stopwatch();
    const lease = await this.deps.staging.acquire();
    watch.lap('acquire');
    const record = planEndpoint(network, req, inputs, lease.name);
    try {
      await this.deps.endpoints.put(record.id, record);
    } catch (err) {
      this.deps.staging.release(lease);
      throw err;
    }
    this.endpoints.set(record.id, record);
    watch.lap('journal');
    if (inputs.bindings.length > 0) this.bindings.set(record.id, inputs.bindings);
    if (!background) return interfaceReply(req, await this.runChain(network, record, lease, watch));
    this.setups.start(record.id, () =>
      this.afterReply(record.id, async () => {
        try {
          await this.runChain(network, record, lease, new Stopwatch());
        } catch (err) {
          this.deps.logger.warn({ err, endpoint: record.id }, 'endpoint chain failed after CreateEndpoint was answered; Join reports it');
          throw wrapError(err, `CreateEndpoint ${shortId(record.id)}`);
        }
      }),
    );
    this.deps.logger.debug({ endpoint: record.id, phases: watch.laps }, 'endpoint journaled; its chain runs in the background');
    return interfaceReply(req, record);
  }

  /** ADD in the staging netns, move the link out, record it ready; any failure undoes the steps before it. */
  private async runChain(network: NetworkRecord, record: EndpointRecord, lease: StagingLease, watch: Stopwatch): Promise<EndpointRecord> {
    let released = false;
    try {
      const rt = runtimeConfOf(record, lease.path);
      if (network.mode === 'conflist' && network.bridge) await this.deps.conflistBridges?.beforeAdd(network.bridge);
      const result = await this.firstAddAlone(network.id, () => this.deps.cni.addNetworkList(record.conflist, rt));
      watch.lap('cniAdd');
      try {
        // The chain has just made the bridge; failing here still leaves the link in the staging netns for DEL.
        if (network.bridge && network.options['cni.cluster.mode'] === 'routed') await this.deps.cluster?.bridgeReady(network.bridge);
        await this.deps.links.moveToHost(lease.name, CHAIN_IFNAME, record.hostLinkName);
        watch.lap('move');
      } catch (err) {
        await this.deps.cni.delNetworkList(record.conflist, rt).catch(() => undefined);
        throw err;
      }
      this.deps.staging.release(lease);
      released = true;
      const ready = readyEndpoint(network, record, result);
      await this.deps.endpoints.put(ready.id, ready);
      this.endpoints.set(ready.id, ready);
      watch.lap('record');
      this.deps.logger.debug({ endpoint: ready.id, phases: watch.laps }, 'endpoint created');
      return ready;
    } catch (err) {
      if (!released) this.deps.staging.release(lease, true);
      await this.deps.endpoints.delete(record.id).catch(() => undefined);
      this.endpoints.delete(record.id);
      this.bindings.delete(record.id);
      throw err;
    }
  }

  /**
   * A network's first ADD makes its bridge and gateway address, which the bridge plugin does not do
   * race-free ("could not add IP address: file exists"); Docker serialises CreateEndpoint per network,
   * but chains that run after the reply do not wait for each other, so the first one runs alone.
   */
  private async firstAddAlone<T>(networkId: string, add: () => Promise<T>): Promise<T> {
    if (!this.networksAdded.has(networkId)) {
      const first = await this.locks.withLock(`first-add:${networkId}`, async () => {
        if (this.networksAdded.has(networkId)) return undefined;
        const result = await add();
        this.networksAdded.add(networkId);
        return { result };
      });
      if (first) return first.result;
    }
    return add();
  }

  /** The network is gone: nothing of it is left to remember. */
  forgetNetwork(networkId: string): void {
    this.networksAdded.delete(networkId);
  }

  async deleteEndpoint(req: EndpointRequest): Promise<void> {
    await this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        this.setups.forget(req.EndpointID);
        const record = this.endpoints.get(req.EndpointID);
        if (!record) return; // already gone: DeleteEndpoint is idempotent
        if (!this.deps.backgroundTeardown) {
          await this.teardown(record);
          return;
        }
        await this.markDeleting(record);
        // Published ports go before the answer: a new container may want the same host port at once.
        await this.publisher.unpublish(record);
        // Queued behind this call on the endpoint's lock, so a CreateEndpoint of the same ID waits for it.
        this.teardowns.start(record, () => this.afterReply(record.id, () => this.teardown(record)));
      } catch (err) {
        throw wrapError(err, `DeleteEndpoint ${shortId(req.EndpointID)}`);
      }
    });
  }

  /**
   * Undoes an endpoint completely. The link Docker hands back after Leave sits in
   * our netns; it is moved into a staging netns under the ADD-time ifname so the
   * chain's DEL finds it (bridge removes masquerade rules through it), then DEL
   * replays the cached config, args and capabilities.
   */
  private async teardown(record: EndpointRecord, leftoverNetns?: string): Promise<void> {
    const watch = new Stopwatch();
    await this.markDeleting(record);
    await this.publisher.unpublish(record);
    watch.lap('journal');
    const stillThere = leftoverNetns && (await this.deps.staging.listExisting()).includes(leftoverNetns);
    const masquerades = chainMasquerades(record.conflist);
    // A DEL that gets no link back makes nothing in its netns, so it runs in the
    // shared empty one and takes no lease (a burst of stops then adds no namespaces).
    const shared = !stillThere && !masquerades && this.deps.staging.empty ? await this.deps.staging.empty() : undefined;
    const lease: StagingLease = stillThere ? leaseOf(leftoverNetns) : (shared ?? (await this.deps.staging.acquire()));
    let clean = false;
    try {
      // Only a chain that masquerades per container needs its link back for DEL
      // (bridge finds those rules through the link's address); otherwise the
      // link is simply deleted, which saves a netns move on every stop.
      const del = (): Promise<void> => this.deps.cni.delNetworkList(record.conflist, runtimeConfOf(record, lease.path));
      if (masquerades) {
        if (await this.deps.links.exists(record.hostLinkName)) {
          await this.deps.links.moveToNetns(record.hostLinkName, lease.name, record.ifName);
          await this.deps.links.addAddresses(lease.name, record.ifName, record.addresses);
        }
        await del();
      } else {
        // Independent steps: the kernel's veth teardown overlaps the plugins' DEL.
        const outcomes = await Promise.allSettled([this.deps.links.deleteIfExists(record.hostLinkName), del()]);
        const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failure) throw failure.reason;
      }
      watch.lap('linkAndDel');
      clean = true;
    } finally {
      if (shared) {
        // Not leased: nothing to give back.
      } else if (stillThere) {
        this.deps.staging.release(lease, true);
      } else {
        this.deps.staging.release(lease, !clean);
      }
    }
    await this.deps.links.deleteIfExists(record.hostLinkName);
    await this.deps.endpoints.delete(record.id);
    this.endpoints.delete(record.id);
    this.bindings.delete(record.id);
    this.publisher.forget(record);
    watch.lap('record');
    this.deps.logger.debug({ endpoint: record.id, phases: watch.laps }, 'endpoint deleted');
  }

  private async markDeleting(record: EndpointRecord): Promise<void> {
    if (record.status === 'deleting') return;
    record.status = 'deleting';
    await this.deps.endpoints.put(record.id, record);
  }

  /** DeleteNetwork waits for the background teardowns of its endpoints. */
  waitForTeardowns(networkId: string): Promise<void> {
    return this.teardowns.waitForNetwork(networkId);
  }

  /** Shutdown waits for every background set-up and teardown. */
  async drain(): Promise<void> {
    await this.setups.drain();
    await this.teardowns.drain();
  }

  /** Reconciliation: tears down an endpoint Docker no longer knows. */
  async removeStaleEndpoint(endpointId: string): Promise<void> {
    await this.locks.withLock(`ep:${endpointId}`, async () => {
      const record = this.endpoints.get(endpointId) ?? (await this.deps.endpoints.get(endpointId));
      if (record) await this.teardown(record, record.status === 'creating' ? record.stagingNetns : undefined);
    });
  }

  endpointOperInfo(req: EndpointRequest): { Value: Record<string, unknown> } {
    const record = this.endpoints.get(req.EndpointID);
    if (!record) return { Value: {} };
    return {
      Value: {
        'cni.network': this.networkOf(record.networkId)?.cniName ?? '',
        'cni.link': record.hostLinkName,
        'cni.ports': record.portMappings,
      },
    };
  }

  /** Docker names this endpoint its container's gateway: it publishes the container's ports. */
  async programExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    await this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        const record = this.endpoints.get(req.EndpointID);
        if (!record || record.status !== 'ready') throw notFound(`endpoint ${shortId(req.EndpointID)} is not known to docker-cni`);
        const given = req.Options?.[OPT.portMap];
        const bindings = given === undefined || given === null ? (this.bindings.get(record.id) ?? []) : readPortBindings(given);
        await this.publisher.publish(record, bindings);
      } catch (err) {
        throw wrapError(err, `ProgramExternalConnectivity ${shortId(req.EndpointID)}`);
      }
    });
  }

  /** The endpoint stops being the gateway; an unknown endpoint has nothing published. */
  async revokeExternalConnectivity(req: ExternalConnectivityRequest): Promise<void> {
    await this.locks.withLock(`ep:${req.EndpointID}`, async () => {
      try {
        const record = this.endpoints.get(req.EndpointID);
        if (record) await this.publisher.unpublish(record);
      } catch (err) {
        throw wrapError(err, `RevokeExternalConnectivity ${shortId(req.EndpointID)}`);
      }
    });
  }

  /**
   * Work set off by a reply: queued on the endpoint's lock at once, so every later call for the endpoint waits
   * for it, but started on the event loop's next turn. A free lock's turn is a microtask, which would run the
   * work's synchronous start (a journal write, a chain's checks) before the reply reaches Docker.
   */
  private afterReply<T>(endpointId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.withLock(`ep:${endpointId}`, async () => {
      await nextTurn();
      return work();
    });
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    try {
      await this.setups.settled(req.EndpointID);
    } catch (err) {
      throw wrapError(err, 'Join');
    }
    const record = this.endpoints.get(req.EndpointID);
    if (!record || record.status !== 'ready' || record.networkId !== req.NetworkID) {
      throw wrapError(notFound(`endpoint ${shortId(req.EndpointID)} is not known to docker-cni`), 'Join');
    }
    if (req.SandboxKey && record.sandboxKey !== req.SandboxKey) {
      // Which container the endpoint is part of decides whose ports clash. Memory serves this run; the
      // journal keeps it for after a restart, written off Docker's path (afterReply: on the endpoint's lock,
      // so a DeleteEndpoint after it never sees the record come back).
      record.sandboxKey = req.SandboxKey;
      void this.afterReply(record.id, async () => {
        if (this.endpoints.get(record.id) === record) await this.deps.endpoints.put(record.id, record);
      }).catch((err: unknown) => this.deps.logger.warn({ err, endpoint: record.id }, 'could not journal the endpoint sandbox; kept in memory'));
    }
    const reply: JoinResponse = { InterfaceName: { SrcName: record.hostLinkName, DstPrefix: 'eth' } };
    if (record.gatewayV4) reply.Gateway = record.gatewayV4;
    if (record.gatewayV6) reply.GatewayIPv6 = record.gatewayV6;
    if (record.staticRoutes.length > 0) reply.StaticRoutes = record.staticRoutes;
    // With no gateway named, Docker would attach the container to docker_gwbridge for outside access; a
    // macvlan or ipvlan container's router is on the parent's segment, not on this host.
    if (!record.gatewayV4 && !record.gatewayV6 && chainIsGatewayLess(record.conflist)) reply.DisableGatewayService = true;
    return reply;
  }
}

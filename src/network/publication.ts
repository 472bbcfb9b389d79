/**
 * Published ports, the way Docker's own drivers publish them: once per
 * container, by the endpoint Docker names its gateway (ProgramExternalConnectivity),
 * until Docker revokes it (RevokeExternalConnectivity) or the endpoint goes.
 *
 * The network's portMappings-capable plugins (portmap) run as an attachment
 * of their own, started from the endpoint's cached ADD result, so they can
 * come and go while the endpoint stays. Each step is journaled in the
 * endpoint's record (records.ts `Publication`).
 */
import type { CniPortMapping, RuntimeConf } from '../cni/types.js';
import type { PortBinding } from '../docker/api.js';
import { notFound, wrapError } from '../errors.js';
import { shortId } from '../names.js';
import type { KeyedLock } from '../util/keyed-lock.js';
import { publicationConfList } from './conflist.js';
import type { NetworkDriverDeps } from './driver-deps.js';
import { allocatePortMappings } from './ports.js';
import type { EndpointRecord, NetworkRecord, Publication } from './records.js';

/** The container an endpoint belongs to; before Join is known, the endpoint stands alone. */
export const sandboxOf = (record: EndpointRecord): string => record.sandboxKey || `endpoint:${record.id}`;

/** Lock order: endpoint lock, then the sandbox lock, then the 'ports' lock. */
const sandboxLock = (sandbox: string): string => `sb:${sandbox}`;

export class PortPublisher {
  /** Each container's latest picks: a gateway move keeps its ephemeral (-P) ports when they are still free. */
  private readonly picks = new Map<string, CniPortMapping[]>();

  constructor(
    private readonly deps: NetworkDriverDeps,
    private readonly locks: KeyedLock,
    private readonly endpoints: ReadonlyMap<string, EndpointRecord>,
    private readonly networkOf: (id: string) => NetworkRecord | undefined,
  ) {}

  /** At load: a published record's picks are its container's. */
  remember(record: EndpointRecord): void {
    if (record.publication?.status === 'published') this.picks.set(sandboxOf(record), record.publication.portMappings);
  }

  /** At load: a publish or unpublish a restart interrupted is undone (its DEL is idempotent). */
  async recover(record: EndpointRecord): Promise<void> {
    if (!record.publication || record.publication.status === 'published') return;
    this.deps.logger.warn({ endpoint: record.id, status: record.publication.status }, 'undoing a port publication interrupted by a restart');
    await this.unpublish(record);
  }

  async publish(record: EndpointRecord, bindings: readonly PortBinding[]): Promise<void> {
    const sandbox = sandboxOf(record);
    await this.locks.withLock(sandboxLock(sandbox), async () => {
      if (record.publication?.status === 'published') return; // Docker repeats itself after a restart of its own
      if (record.publication) await this.unpublishLocked(record);
      // One container publishes through one endpoint: a sibling still publishing missed its Revoke.
      for (const sibling of this.endpoints.values()) {
        if (sibling.id !== record.id && sibling.publication && sandboxOf(sibling) === sandbox) await this.unpublishLocked(sibling);
      }
      if (bindings.length === 0) return;
      const network = this.networkOf(record.networkId);
      if (!network) throw notFound(`network ${shortId(record.networkId)} is not known to docker-cni`);
      const conflist = publicationConfList(network.conflist);
      if (!conflist) {
        this.deps.logger.warn({ endpoint: record.id, cni: network.cniName }, 'ports not published: no plugin of the chain declares the portMappings capability');
        return;
      }
      const publication = await this.locks.withLock('ports', async () => {
        const portMappings = await allocatePortMappings(bindings, {
          ...(network.hostBindingIp ? { defaultHostIp: network.hostBindingIp } : {}),
          inUse: [...this.endpoints.values()].filter((e) => sandboxOf(e) !== sandbox).flatMap((e) => e.portMappings),
          probe: this.deps.probePort,
          preferred: this.picks.get(sandbox) ?? [],
        });
        // portmap needs CNI_NETNS set, not entered: the container's sandbox is the honest answer.
        const pub: Publication = { status: 'publishing', portMappings, conflist, netns: record.sandboxKey || '/proc/self/ns/net' };
        // Recorded before the lock is released, so the next pick sees these ports taken.
        record.publication = pub;
        record.portMappings = portMappings;
        await this.save(record);
        return pub;
      });
      try {
        await this.deps.cni.addNetworkList(publication.conflist, this.runtimeConf(record, publication), {
          ...(record.result ? { prevResult: record.result } : {}),
        });
      } catch (err) {
        // The runtime has already rolled back the plugins it ran.
        delete record.publication;
        record.portMappings = [];
        await this.save(record).catch(() => undefined);
        throw wrapError(err, 'publishing ports');
      }
      publication.status = 'published';
      await this.save(record);
      this.picks.set(sandbox, publication.portMappings);
      this.deps.logger.info({ endpoint: record.id, ports: publication.portMappings }, 'published ports');
    });
  }

  /** Idempotent: an endpoint that publishes nothing is done. */
  async unpublish(record: EndpointRecord): Promise<void> {
    if (!record.publication) return;
    await this.locks.withLock(sandboxLock(sandboxOf(record)), () => this.unpublishLocked(record));
  }

  /** After an endpoint is gone: a container without endpoints has no picks to keep. */
  forget(record: EndpointRecord): void {
    const sandbox = sandboxOf(record);
    if (![...this.endpoints.values()].some((e) => sandboxOf(e) === sandbox)) this.picks.delete(sandbox);
  }

  private async unpublishLocked(record: EndpointRecord): Promise<void> {
    const publication = record.publication;
    if (!publication) return;
    if (publication.status !== 'unpublishing') {
      publication.status = 'unpublishing';
      await this.save(record);
    }
    await this.deps.cni.delNetworkList(publication.conflist, this.runtimeConf(record, publication));
    delete record.publication;
    record.portMappings = [];
    await this.save(record);
    this.deps.logger.info({ endpoint: record.id, ports: publication.portMappings }, 'unpublished ports');
  }

  /** Same container ID and ifName as the endpoint's chain: portmap finds the interface's address in prevResult by ifName. */
  private runtimeConf(record: EndpointRecord, publication: Publication): RuntimeConf {
    return {
      containerId: record.id,
      netns: publication.netns,
      ifName: record.ifName,
      args: record.cniArgs,
      capabilityArgs: { portMappings: publication.portMappings },
    };
  }

  /** A record being torn down is written by its teardown; never bring a deleted one back. */
  private async save(record: EndpointRecord): Promise<void> {
    if (this.endpoints.get(record.id) === record) await this.deps.endpoints.put(record.id, record);
  }
}

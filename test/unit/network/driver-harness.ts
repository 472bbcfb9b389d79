/**
 * Fakes for everything NetworkDriver touches on the host, so the driver's
 * logic runs without root, namespaces or CNI plugins:
 *  - FakeCni records every chain ADD/DEL (deep copies) and answers like a
 *    bridge+static chain would;
 *  - FakeStaging hands out leases like StagingNetnsPool (reuse on clean release);
 *  - FakeLinks keeps a set of host link names;
 *  - FakeFirewall keeps the specs it was given per network.
 * Records live in a real RecordStore on a temp dir, conflists are loaded with
 * the real loader from a temp conf dir, and plugin binaries are located with
 * the real lookup in a temp bin dir holding empty executables.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfListByName } from '../../../src/cni/conf.js';
import { SpawnPluginExecutor } from '../../../src/cni/exec.js';
import type { CniResult, NetConfList, RuntimeConf } from '../../../src/cni/types.js';
import { OPT, type CreateEndpointRequest, type CreateNetworkRequest } from '../../../src/docker/api.js';
import type { NetworkFirewallSpec } from '../../../src/host/firewall.js';
import type { StagingLease } from '../../../src/host/staging-netns.js';
import { silentLogger } from '../../../src/log.js';
import { NetworkDriver, type CniChainRunner, type NetworkDriverDeps } from '../../../src/network/network-driver.js';
import type { PortProbe } from '../../../src/network/ports.js';
import { ENDPOINT_CODEC, NETWORK_CODEC, type EndpointRecord, type NetworkRecord } from '../../../src/network/records.js';
import { RecordStore } from '../../../src/state/record-store.js';

export const hexId = (): string => randomBytes(32).toString('hex');
/** A swarm-scoped network's ID: 25 characters of base 36, not hex. */
export const swarmId = (): string => [...randomBytes(25)].map((b) => (b % 36).toString(36)).join('');

export interface ChainCall {
  verb: 'ADD' | 'DEL';
  list: NetConfList;
  rt: RuntimeConf;
  /** The result an ADD started from (a publication starts from the endpoint's). */
  prevResult?: CniResult;
}

/** The `static` addresses of the first plugin that has them (what the driver put into the chain). */
export function staticAddressesOf(list: NetConfList): Array<{ address: string; gateway?: string }> {
  for (const plugin of list.plugins) {
    const addresses = plugin.ipam?.addresses;
    if (Array.isArray(addresses)) return addresses as Array<{ address: string; gateway?: string }>;
  }
  return [];
}

export const CONTAINER_MAC = '0a:58:0a:e7:01:05';

export class FakeCni implements CniChainRunner {
  readonly calls: ChainCall[] = [];
  /** Replaces the default ADD behaviour (after the call is recorded). */
  onAdd?: (list: NetConfList, rt: RuntimeConf) => Promise<CniResult> | CniResult;
  onDel?: (list: NetConfList | undefined, rt: RuntimeConf) => Promise<void> | void;
  /** Extra routes the default result carries. */
  routes: CniResult['routes'] = [];

  async addNetworkList(list: NetConfList, rt: RuntimeConf, opts: { prevResult?: CniResult } = {}): Promise<CniResult> {
    this.calls.push({
      verb: 'ADD',
      list: structuredClone(list),
      rt: structuredClone(rt),
      ...(opts.prevResult ? { prevResult: structuredClone(opts.prevResult) } : {}),
    });
    if (this.onAdd) return this.onAdd(list, rt);
    if (opts.prevResult) return structuredClone(opts.prevResult);
    const addresses = staticAddressesOf(list);
    return {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'br-fake', mac: '02:00:00:00:00:01' },
        { name: 'veth1234', mac: '02:00:00:00:00:02' },
        { name: rt.ifName, mac: CONTAINER_MAC, sandbox: rt.netns },
      ],
      ips: addresses.map((a) => ({ address: a.address, ...(a.gateway ? { gateway: a.gateway } : {}), interface: 2 })),
      routes: structuredClone(this.routes),
    };
  }

  async delNetworkList(list: NetConfList | undefined, rt: RuntimeConf): Promise<void> {
    this.calls.push({ verb: 'DEL', list: structuredClone(list) as NetConfList, rt: structuredClone(rt) });
    if (this.onDel) await this.onDel(list, rt);
  }

  of(verb: 'ADD' | 'DEL'): ChainCall[] {
    return this.calls.filter((c) => c.verb === verb);
  }
}

export class FakeStaging {
  private counter = 0;
  private readonly idle: string[] = [];
  readonly leased = new Set<string>();
  /** Names listExisting reports (e.g. a netns a crashed run left behind). */
  existing: string[] = [];
  readonly acquired: string[] = [];
  readonly released: Array<{ name: string; dirty: boolean }> = [];
  maxConcurrent = 0;

  async acquire(): Promise<StagingLease> {
    const name = this.idle.pop() ?? `stage-${this.counter++}`;
    if (this.leased.has(name)) throw new Error(`FakeStaging: ${name} leased twice`);
    this.leased.add(name);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.leased.size);
    this.acquired.push(name);
    return { name, path: `/run/netns/${name}` };
  }

  release(lease: StagingLease, dirty = false): void {
    this.released.push({ name: lease.name, dirty });
    this.leased.delete(lease.name);
    if (!dirty) this.idle.push(lease.name);
  }

  async listExisting(): Promise<string[]> {
    return [...this.existing, ...this.leased, ...this.idle];
  }
}

export class FakeLinks {
  readonly host = new Set<string>();
  readonly calls: string[] = [];
  moveToHostError?: Error;

  async exists(name: string): Promise<boolean> {
    return this.host.has(name);
  }
  async moveToHost(netnsName: string, ifName: string, hostName: string): Promise<void> {
    this.calls.push(`moveToHost ${netnsName} ${ifName} ${hostName}`);
    if (this.moveToHostError) throw this.moveToHostError;
    this.host.add(hostName);
  }
  async moveToNetns(hostName: string, netnsName: string, ifName: string): Promise<void> {
    this.calls.push(`moveToNetns ${hostName} ${netnsName} ${ifName}`);
    this.host.delete(hostName);
  }
  async addAddresses(netnsName: string, ifName: string, cidrs: readonly string[]): Promise<void> {
    this.calls.push(`addAddresses ${netnsName} ${ifName} ${cidrs.join(',')}`);
  }
  async deleteIfExists(name: string): Promise<void> {
    this.calls.push(`deleteIfExists ${name}`);
    this.host.delete(name);
  }
}

export class FakeFirewall {
  readonly rules = new Map<string, NetworkFirewallSpec>();
  readonly ensured: NetworkFirewallSpec[] = [];
  readonly removed: string[] = [];
  /** Awaited inside ensureNetwork after the rules are in place (to hold a CreateNetwork mid-way). */
  afterEnsure?: () => Promise<void>;

  async ensureNetwork(spec: NetworkFirewallSpec): Promise<void> {
    this.ensured.push(structuredClone(spec));
    this.rules.set(spec.networkId.slice(0, 12), structuredClone(spec));
    if (this.afterEnsure) await this.afterEnsure();
  }
  async removeNetwork(networkId: string): Promise<void> {
    this.removed.push(networkId);
    this.rules.delete(networkId.slice(0, 12));
  }
}

/** Probe that reports every port free except the listed ones, recording what it was asked. */
export function fakeProbe(busy: number[] = []): PortProbe & { asked: number[] } {
  const asked: number[] = [];
  const probe = (async (_protocol, _hostIP, port) => {
    asked.push(port);
    return !busy.includes(port);
  }) as PortProbe & { asked: number[] };
  probe.asked = asked;
  return probe;
}

export const DEFAULT_PLUGINS = ['bridge', 'static', 'portmap', 'firewall', 'host-local', 'tuning', 'bandwidth', 'ptp'];

export interface DriverHarness {
  root: string;
  stateDir: string;
  confDir: string;
  binDir: string;
  cni: FakeCni;
  staging: FakeStaging;
  links: FakeLinks;
  firewall: FakeFirewall;
  networksStore: RecordStore<NetworkRecord>;
  endpointsStore: RecordStore<EndpointRecord>;
  /** A fresh driver on the same state dir and fakes (i.e. a plugin restart), already init()ed. */
  start(options?: { recover?: boolean; deps?: Partial<NetworkDriverDeps> }): Promise<NetworkDriver>;
  writeConfList(fileName: string, content: unknown): Promise<void>;
  cleanup(): Promise<void>;
}

export async function createDriverHarness(plugins: string[] = DEFAULT_PLUGINS): Promise<DriverHarness> {
  const root = await mkdtemp(join(tmpdir(), 'dcni-netdrv-unit-'));
  const stateDir = join(root, 'state');
  const confDir = join(root, 'net.d');
  const binDir = join(root, 'bin');
  await mkdir(confDir, { recursive: true });
  await mkdir(binDir, { recursive: true });
  for (const name of plugins) {
    const path = join(binDir, name);
    await writeFile(path, '#!/bin/false\n');
    await chmod(path, 0o755);
  }
  const executor = new SpawnPluginExecutor();
  const h: DriverHarness = {
    root,
    stateDir,
    confDir,
    binDir,
    cni: new FakeCni(),
    staging: new FakeStaging(),
    links: new FakeLinks(),
    firewall: new FakeFirewall(),
    networksStore: new RecordStore<NetworkRecord>(stateDir, 'networks', true, NETWORK_CODEC),
    endpointsStore: new RecordStore<EndpointRecord>(stateDir, 'endpoints', false, ENDPOINT_CODEC),
    async start(options = {}) {
      const driver = new NetworkDriver({
        networks: new RecordStore<NetworkRecord>(stateDir, 'networks', true, NETWORK_CODEC),
        endpoints: new RecordStore<EndpointRecord>(stateDir, 'endpoints', false, ENDPOINT_CODEC),
        cni: h.cni,
        loadConfList: (name) => loadConfListByName(confDir, name),
        locatePlugin: (type) => executor.findInPath(type, [binDir]),
        staging: h.staging,
        links: h.links,
        firewall: h.firewall,
        probePort: fakeProbe(),
        logger: silentLogger,
        ...options.deps,
      });
      await driver.init(options.recover === undefined ? {} : { recover: options.recover });
      return driver;
    },
    async writeConfList(fileName, content) {
      await writeFile(join(confDir, fileName), typeof content === 'string' ? content : JSON.stringify(content));
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
  return h;
}

export interface NetworkRequestOptions {
  generic?: Record<string, unknown>;
  internal?: boolean;
  v4?: Array<{ pool: string; gateway?: string }>;
  v6?: Array<{ pool: string; gateway?: string }>;
}

/** A CreateNetwork body as Docker sends it (after the HTTP layer's zod defaults). */
export function networkRequest(networkId: string, opts: NetworkRequestOptions = {}): CreateNetworkRequest {
  const options: Record<string, unknown> = { [OPT.enableIPv6]: (opts.v6 ?? []).length > 0 };
  if (opts.generic) options[OPT.generic] = opts.generic;
  if (opts.internal) options[OPT.internal] = true;
  const data = (list: NetworkRequestOptions['v4']) =>
    (list ?? []).map((s) => ({ AddressSpace: 'LocalDefault', Pool: s.pool, Gateway: s.gateway ?? '', AuxAddresses: null }));
  return {
    NetworkID: networkId,
    Options: options,
    IPv4Data: data(opts.v4 ?? [{ pool: '10.231.1.0/24', gateway: '10.231.1.1/24' }]),
    IPv6Data: data(opts.v6),
  };
}

export interface EndpointRequestOptions {
  address?: string;
  addressV6?: string;
  mac?: string;
  ports?: Array<{ Proto: number; Port: number; HostPort?: number; HostPortEnd?: number; HostIP?: string }>;
}

export function endpointRequest(networkId: string, endpointId: string, opts: EndpointRequestOptions = {}): CreateEndpointRequest {
  const options: Record<string, unknown> = {};
  if (opts.ports) {
    options[OPT.portMap] = opts.ports.map((p) => ({
      Proto: p.Proto,
      IP: '',
      Port: p.Port,
      HostIP: p.HostIP ?? '',
      HostPort: p.HostPort ?? 0,
      HostPortEnd: p.HostPortEnd ?? p.HostPort ?? 0,
    }));
    options[OPT.exposedPorts] = opts.ports.map((p) => ({ Proto: p.Proto, Port: p.Port }));
  }
  return {
    NetworkID: networkId,
    EndpointID: endpointId,
    Interface: {
      Address: opts.address ?? '10.231.1.5/24',
      AddressIPv6: opts.addressV6 ?? '',
      MacAddress: opts.mac ?? '',
    },
    Options: options,
  };
}

/** A harness, its driver (started with `deps`) and one network on it: the start of most driver tests. */
export async function driverWithNetwork(
  deps: Partial<NetworkDriverDeps> = {},
): Promise<{ h: DriverHarness; driver: NetworkDriver; net: string }> {
  const h = await createDriverHarness();
  const driver = await h.start({ deps });
  const net = hexId();
  await driver.createNetwork(networkRequest(net));
  return { h, driver, net };
}

/** A deferred promise, to hold a fake mid-call. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets pending promise callbacks and short fs operations run. */
export async function settle(ms = 20): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

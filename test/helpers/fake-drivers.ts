/**
 * Recording fakes of the two driver interfaces, for tests of anything that sits
 * in front of the drivers (the HTTP layer, the CLI wiring).
 *
 * Every call is appended to a shared, ordered log with the request exactly as
 * the driver received it. Each method answers with a sensible default until a
 * test programs it with `respond(method, impl)` or `fail(method, error)`.
 *
 *   const fakes = createFakeDrivers();
 *   fakes.network.respond('join', () => ({ InterfaceName: { SrcName: 'x', DstPrefix: 'eth' } }));
 *   fakes.ipam.fail('requestPool', new PluginError('EXHAUSTED', 'no pool left'));
 *   ... drive the code ...
 *   assert.deepEqual(fakes.network.requestsOf('createNetwork'), [{ NetworkID: 'n1', ... }]);
 */
import type { IpamDriverApi, NetworkDriverApi } from '../../src/docker/api.js';

export type NetworkMethod = keyof NetworkDriverApi;
export type IpamMethod = keyof IpamDriverApi;

export interface RecordedCall {
  /** Position in the shared log, starting at 0. */
  seq: number;
  api: 'network' | 'ipam';
  method: string;
  /** The argument the driver method got (undefined for the argument-less capability calls). */
  request: unknown;
}

/** Ordered record of calls across both fakes, so tests can assert call order between the APIs. */
export class CallLog {
  readonly calls: RecordedCall[] = [];
  record(api: RecordedCall['api'], method: string, request: unknown): void {
    this.calls.push({ seq: this.calls.length, api, method, request });
  }
  clear(): void {
    this.calls.length = 0;
  }
  get length(): number {
    return this.calls.length;
  }
}

type Impl<Api, M extends keyof Api> = Api[M] extends (...args: infer A) => infer R
  ? (...args: A) => R | Awaited<R>
  : never;

type ArgOf<Api, M extends keyof Api> = Api[M] extends (arg: infer A) => unknown ? A : undefined;

/** The shared engine behind both fakes: records, then runs the programmed or default behaviour. */
class Programmable<Api extends object> {
  private readonly programmed = new Map<keyof Api, (arg: unknown) => unknown>();

  constructor(
    private readonly api: RecordedCall['api'],
    readonly log: CallLog,
    private readonly defaults: { [M in keyof Api]: (arg: ArgOf<Api, M>) => unknown },
  ) {}

  invoke(method: keyof Api, arg: unknown): unknown {
    // structuredClone so a driver-side mutation cannot rewrite history, and a test
    // cannot be fooled by the caller mutating the request object later.
    this.log.record(this.api, String(method), arg === undefined ? undefined : structuredClone(arg));
    const impl = this.programmed.get(method) ?? (this.defaults[method] as (arg: unknown) => unknown);
    return impl(arg);
  }

  respond(method: keyof Api, impl: (arg: never) => unknown): void {
    this.programmed.set(method, impl as (arg: unknown) => unknown);
  }

  reset(method?: keyof Api): void {
    if (method === undefined) this.programmed.clear();
    else this.programmed.delete(method);
  }

  requestsOf(method: keyof Api): unknown[] {
    return this.log.calls.filter((c) => c.api === this.api && c.method === method).map((c) => c.request);
  }
}

/** Makes a method throw (synchronously for the sync capability calls, as a rejection for the rest). */
function failing(error: unknown, sync: boolean): () => unknown {
  return sync
    ? () => {
        throw error;
      }
    : () => Promise.reject(error);
}

const SYNC_NETWORK_METHODS: ReadonlySet<string> = new Set(['getCapabilities']);
const SYNC_IPAM_METHODS: ReadonlySet<string> = new Set(['getCapabilities', 'getDefaultAddressSpaces']);

export class FakeNetworkDriver implements NetworkDriverApi {
  private readonly engine: Programmable<NetworkDriverApi>;

  constructor(readonly log: CallLog = new CallLog()) {
    this.engine = new Programmable<NetworkDriverApi>('network', log, {
      getCapabilities: () => ({ Scope: 'local', ConnectivityScope: 'local' }),
      gwAllocCheck: async () => ({ SkipIPv4: false, SkipIPv6: false }),
      createNetwork: async () => undefined,
      deleteNetwork: async () => undefined,
      createEndpoint: async () => ({}),
      endpointOperInfo: async () => ({ Value: {} }),
      deleteEndpoint: async () => undefined,
      join: async (req) => ({
        InterfaceName: { SrcName: `fk${req.EndpointID.slice(0, 10)}`, DstPrefix: 'eth' },
      }),
      leave: async () => undefined,
      programExternalConnectivity: async () => undefined,
      revokeExternalConnectivity: async () => undefined,
    });
  }

  /** Replaces a method's behaviour; the implementation receives the request and may return or throw. */
  respond<M extends NetworkMethod>(method: M, impl: Impl<NetworkDriverApi, M>): this {
    this.engine.respond(method, impl as (arg: never) => unknown);
    return this;
  }
  /** Makes a method fail with `error` (anything: a PluginError, a plain Error, a string...). */
  fail(method: NetworkMethod, error: unknown): this {
    this.engine.respond(method, failing(error, SYNC_NETWORK_METHODS.has(method)));
    return this;
  }
  /** Back to the default behaviour, for one method or all. */
  reset(method?: NetworkMethod): this {
    this.engine.reset(method);
    return this;
  }
  get calls(): RecordedCall[] {
    return this.log.calls.filter((c) => c.api === 'network');
  }
  requestsOf<M extends NetworkMethod>(method: M): ArgOf<NetworkDriverApi, M>[] {
    return this.engine.requestsOf(method) as ArgOf<NetworkDriverApi, M>[];
  }

  getCapabilities(): ReturnType<NetworkDriverApi['getCapabilities']> {
    return this.engine.invoke('getCapabilities', undefined) as ReturnType<NetworkDriverApi['getCapabilities']>;
  }
  gwAllocCheck(req: Parameters<NetworkDriverApi['gwAllocCheck']>[0]): ReturnType<NetworkDriverApi['gwAllocCheck']> {
    return this.async('gwAllocCheck', req);
  }
  createNetwork(req: Parameters<NetworkDriverApi['createNetwork']>[0]): Promise<void> {
    return this.async('createNetwork', req);
  }
  deleteNetwork(req: Parameters<NetworkDriverApi['deleteNetwork']>[0]): Promise<void> {
    return this.async('deleteNetwork', req);
  }
  createEndpoint(
    req: Parameters<NetworkDriverApi['createEndpoint']>[0],
  ): ReturnType<NetworkDriverApi['createEndpoint']> {
    return this.async('createEndpoint', req);
  }
  endpointOperInfo(
    req: Parameters<NetworkDriverApi['endpointOperInfo']>[0],
  ): ReturnType<NetworkDriverApi['endpointOperInfo']> {
    return this.async('endpointOperInfo', req);
  }
  deleteEndpoint(req: Parameters<NetworkDriverApi['deleteEndpoint']>[0]): Promise<void> {
    return this.async('deleteEndpoint', req);
  }
  join(req: Parameters<NetworkDriverApi['join']>[0]): ReturnType<NetworkDriverApi['join']> {
    return this.async('join', req);
  }
  leave(req: Parameters<NetworkDriverApi['leave']>[0]): Promise<void> {
    return this.async('leave', req);
  }
  programExternalConnectivity(req: Parameters<NetworkDriverApi['programExternalConnectivity']>[0]): Promise<void> {
    return this.async('programExternalConnectivity', req);
  }
  revokeExternalConnectivity(req: Parameters<NetworkDriverApi['revokeExternalConnectivity']>[0]): Promise<void> {
    return this.async('revokeExternalConnectivity', req);
  }

  /** Async methods always settle as promises, even if a programmed impl throws synchronously. */
  private async async<T>(method: NetworkMethod, req: unknown): Promise<T> {
    return (await this.engine.invoke(method, req)) as T;
  }
}

export class FakeIpamDriver implements IpamDriverApi {
  private readonly engine: Programmable<IpamDriverApi>;
  private nextPool = 0;

  constructor(readonly log: CallLog = new CallLog()) {
    this.engine = new Programmable<IpamDriverApi>('ipam', log, {
      getCapabilities: () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
      getDefaultAddressSpaces: () => ({ LocalDefaultAddressSpace: 'CniLocal', GlobalDefaultAddressSpace: 'CniGlobal' }),
      requestPool: async (req) => {
        const pool = req.Pool || `10.231.${this.nextPool % 256}.0/24`;
        return { PoolID: `fake-pool-${this.nextPool++}`, Pool: pool, Data: {} };
      },
      releasePool: async () => undefined,
      requestAddress: async (req) => ({ Address: req.Address ? `${req.Address}/24` : '10.231.0.2/24', Data: {} }),
      releaseAddress: async () => undefined,
    });
  }

  respond<M extends IpamMethod>(method: M, impl: Impl<IpamDriverApi, M>): this {
    this.engine.respond(method, impl as (arg: never) => unknown);
    return this;
  }
  fail(method: IpamMethod, error: unknown): this {
    this.engine.respond(method, failing(error, SYNC_IPAM_METHODS.has(method)));
    return this;
  }
  reset(method?: IpamMethod): this {
    this.engine.reset(method);
    return this;
  }
  get calls(): RecordedCall[] {
    return this.log.calls.filter((c) => c.api === 'ipam');
  }
  requestsOf<M extends IpamMethod>(method: M): ArgOf<IpamDriverApi, M>[] {
    return this.engine.requestsOf(method) as ArgOf<IpamDriverApi, M>[];
  }

  getCapabilities(): ReturnType<IpamDriverApi['getCapabilities']> {
    return this.engine.invoke('getCapabilities', undefined) as ReturnType<IpamDriverApi['getCapabilities']>;
  }
  getDefaultAddressSpaces(): ReturnType<IpamDriverApi['getDefaultAddressSpaces']> {
    return this.engine.invoke('getDefaultAddressSpaces', undefined) as ReturnType<
      IpamDriverApi['getDefaultAddressSpaces']
    >;
  }
  requestPool(req: Parameters<IpamDriverApi['requestPool']>[0]): ReturnType<IpamDriverApi['requestPool']> {
    return this.async('requestPool', req);
  }
  releasePool(req: Parameters<IpamDriverApi['releasePool']>[0]): Promise<void> {
    return this.async('releasePool', req);
  }
  requestAddress(req: Parameters<IpamDriverApi['requestAddress']>[0]): ReturnType<IpamDriverApi['requestAddress']> {
    return this.async('requestAddress', req);
  }
  releaseAddress(req: Parameters<IpamDriverApi['releaseAddress']>[0]): Promise<void> {
    return this.async('releaseAddress', req);
  }

  private async async<T>(method: IpamMethod, req: unknown): Promise<T> {
    return (await this.engine.invoke(method, req)) as T;
  }
}

export interface FakeDrivers {
  network: FakeNetworkDriver;
  ipam: FakeIpamDriver;
  /** Both fakes write here, in call order. */
  log: CallLog;
}

export function createFakeDrivers(): FakeDrivers {
  const log = new CallLog();
  return { network: new FakeNetworkDriver(log), ipam: new FakeIpamDriver(log), log };
}

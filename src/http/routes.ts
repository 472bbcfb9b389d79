/** One route per libnetwork RPC: the schema its body must match and the driver method it calls. */
import type { z } from 'zod';
import {
  CreateEndpointRequest,
  CreateNetworkRequest,
  EndpointRequest,
  ExternalConnectivityRequest,
  JoinRequest,
  NetworkRequest,
  RPC,
  ReleaseAddressRequest,
  ReleasePoolRequest,
  RequestAddressRequest,
  RequestPoolRequest,
} from '../docker/api.js';
import type { ActivateResponse, IpamDriverApi, NetworkDriverApi } from '../docker/api.js';
import { PluginError } from '../errors.js';
import { describeIssues } from './body.js';
import { NotImplementedError } from './error-reply.js';

export const ACTIVATE_RESPONSE: ActivateResponse = { Implements: ['NetworkDriver', 'IpamDriver'] };

/** "/NetworkDriver.Join" -> "NetworkDriver.Join", the name users and logs see. */
export const rpcName = (path: string): string => path.slice(1);

/** What a route does with its validated body; the return value becomes the 200 JSON reply. */
type RpcCall<T> = (body: T) => unknown;

export interface RpcRoute {
  path: string;
  handle(rawBody: unknown): Promise<unknown>;
}

export function buildRoutes(network: NetworkDriverApi, ipam: IpamDriverApi): RpcRoute[] {
  const routes: RpcRoute[] = [];
  const add = <S extends z.ZodType>(path: string, schema: S, call: RpcCall<z.output<S>>): void => {
    const name = rpcName(path);
    routes.push({
      path,
      async handle(rawBody) {
        const parsed = schema.safeParse(rawBody);
        if (!parsed.success) throw new PluginError('INVALID_ARGUMENT', `${name}: ${describeIssues(parsed.error)}`);
        return call(parsed.data);
      },
    });
  };
  /** For RPCs whose body carries nothing we use; the body must still be a JSON object. */
  const addBodyless = (path: string, call: () => unknown): void => {
    routes.push({ path, handle: async () => call() });
  };

  addBodyless(RPC.activate, () => ACTIVATE_RESPONSE);

  addBodyless(RPC.network.getCapabilities, () => network.getCapabilities());
  add(RPC.network.createNetwork, CreateNetworkRequest, (req) => network.createNetwork(req));
  add(RPC.network.deleteNetwork, NetworkRequest, (req) => network.deleteNetwork(req));
  add(RPC.network.createEndpoint, CreateEndpointRequest, (req) => network.createEndpoint(req));
  add(RPC.network.endpointOperInfo, EndpointRequest, (req) => network.endpointOperInfo(req));
  add(RPC.network.deleteEndpoint, EndpointRequest, (req) => network.deleteEndpoint(req));
  add(RPC.network.join, JoinRequest, (req) => network.join(req));
  add(RPC.network.leave, EndpointRequest, (req) => network.leave(req));
  add(RPC.network.programExternalConnectivity, ExternalConnectivityRequest, (req) =>
    network.programExternalConnectivity(req),
  );
  add(RPC.network.revokeExternalConnectivity, ExternalConnectivityRequest, (req) =>
    network.revokeExternalConnectivity(req),
  );
  // Swarm-only calls. We report Scope "local", so Docker never sends them. Discover*
  // are pure notifications, so acknowledging them is harmless and truthful.
  // Allocate/Free would ask us to reserve resources cluster-wide, which a local
  // driver cannot do: a 404 ("not implemented") says exactly that, rather than
  // pretending success and leaving a swarm network without the allocation it expects.
  addBodyless(RPC.network.discoverNew, () => ({}));
  addBodyless(RPC.network.discoverDelete, () => ({}));
  for (const path of [RPC.network.allocateNetwork, RPC.network.freeNetwork]) {
    addBodyless(path, () => {
      throw new NotImplementedError(`${rpcName(path)}: not implemented (docker-cni is a local-scope driver)`);
    });
  }

  addBodyless(RPC.ipam.getCapabilities, () => ipam.getCapabilities());
  addBodyless(RPC.ipam.getDefaultAddressSpaces, () => ipam.getDefaultAddressSpaces());
  add(RPC.ipam.requestPool, RequestPoolRequest, (req) => ipam.requestPool(req));
  add(RPC.ipam.releasePool, ReleasePoolRequest, (req) => ipam.releasePool(req));
  add(RPC.ipam.requestAddress, RequestAddressRequest, (req) => ipam.requestAddress(req));
  add(RPC.ipam.releaseAddress, ReleaseAddressRequest, (req) => ipam.releaseAddress(req));
  return routes;
}

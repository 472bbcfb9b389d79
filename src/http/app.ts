/**
 * The HTTP face of the plugin: one POST route per libnetwork RPC, each of which
 * reads the body as JSON, validates it with the schema from docker/api.ts and
 * hands it to a driver. No driver logic lives here.
 *
 * Wire rules this layer enforces (libnetwork's remote-driver protocol):
 * - Docker sends no Content-Type and sometimes no body, so every body is read
 *   raw and parsed as JSON here; an empty body means `{}`.
 * - Every non-2xx reply is `{"Err": message}`; Docker shows Err verbatim.
 * - 404 means "method not implemented" to Docker, so it is reserved for routes
 *   we really do not implement and is never produced by a driver error.
 */
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import {
  CreateEndpointRequest,
  CreateNetworkRequest,
  EndpointRequest,
  ExternalConnectivityRequest,
  JoinRequest,
  MAX_BODY_BYTES,
  NetworkRequest,
  PLUGIN_CONTENT_TYPE,
  RPC,
  ReleaseAddressRequest,
  ReleasePoolRequest,
  RequestAddressRequest,
  RequestPoolRequest,
} from '../docker/api.js';
import type { ActivateResponse, IpamDriverApi, NetworkDriverApi } from '../docker/api.js';
import { PluginError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';

export interface AppDeps {
  network: NetworkDriverApi;
  ipam: IpamDriverApi;
  logger: Logger;
}

export const ACTIVATE_RESPONSE: ActivateResponse = { Implements: ['NetworkDriver', 'IpamDriver'] };

/**
 * HTTP status per error code. NOT_FOUND deliberately maps to 500: Docker reads
 * a 404 from an optional method (e.g. ProgramExternalConnectivity) as "not
 * implemented" and would silently carry on instead of reporting the failure.
 */
const STATUS_BY_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 500,
  CONFLICT: 409,
  EXHAUSTED: 409,
  CNI_FAILED: 500,
  HOST_FAILED: 500,
  STATE_FAILED: 500,
  TIMEOUT: 504,
  INTERNAL: 500,
};

/** Keeps a reply readable in `docker` output even if a message grows unbounded. */
const MAX_ERR_CHARS = 4096;

/** The only error that becomes a 404: unknown paths and the swarm-only RPCs we decline. */
class NotImplementedError extends Error {
  override readonly name = 'NotImplementedError';
}

/** "/NetworkDriver.Join" -> "NetworkDriver.Join", the name users and logs see. */
const rpcName = (path: string): string => path.slice(1);

/** What a route does with its validated body; the return value becomes the 200 JSON reply. */
type RpcCall<T> = (body: T) => unknown;

interface RpcRoute {
  path: string;
  handle(rawBody: unknown): Promise<unknown>;
}

export function createApp(deps: AppDeps): express.Express {
  const { network, ipam, logger } = deps;
  const app = express();
  // Docker's paths are exact; do not let "/plugin.activate/" alias a real route.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.set('x-powered-by', false);
  app.set('etag', false);

  app.use(logEachCall(logger));
  const replyWithError = errorReplier(logger);

  const readRawBody = express.raw({ type: () => true, limit: MAX_BODY_BYTES, inflate: false });

  for (const route of buildRoutes(network, ipam)) {
    const tagRpc: RequestHandler = (_req, res, next) => {
      // Set before the body is read so that body-read failures are reported under the RPC's name too.
      res.locals['rpc'] = rpcName(route.path);
      next();
    };
    app.post(route.path, tagRpc, readRawBody, async (req: Request, res: Response) => {
      try {
        const result = await route.handle(parseJsonBody(req.body));
        sendJson(res, 200, result ?? {});
      } catch (err) {
        // Handled here rather than by rejecting to express, which would turn a
        // thrown `undefined` into an anonymous "Rejected promise".
        replyWithError(err, req, res);
      }
    });
    app.all(route.path, (req: Request, res: Response) => {
      res.set('Allow', 'POST');
      sendJson(res, 405, { Err: `${rpcName(route.path)}: method ${req.method} not allowed, use POST` });
    });
  }

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new NotImplementedError(`${describePath(req.path)}: not implemented`));
  });

  // Body-read failures (413, 415, aborted uploads) and unknown paths arrive here.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => replyWithError(err, req, res));
  return app;
}

function buildRoutes(network: NetworkDriverApi, ipam: IpamDriverApi): RpcRoute[] {
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

/** The raw parser leaves `undefined` when there was no body at all and a Buffer otherwise. */
function parseJsonBody(raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  if (!Buffer.isBuffer(raw)) throw new PluginError('INTERNAL', 'request body was not read as bytes');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new PluginError('INVALID_ARGUMENT', 'invalid JSON body: not valid UTF-8');
  }
  if (/^[\t\n\r ]*$/.test(text)) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: expected an object, got ${jsonKind(value)}`);
  }
  if (exceedsDepth(value, MAX_JSON_DEPTH)) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value as Record<string, unknown>;
}

/**
 * Docker's bodies nest 4 levels at most (Options -> portmap -> entry -> field).
 * Refusing absurd depth here spares every recursive consumer downstream
 * (schema checks, JSON.stringify when state is persisted) a stack overflow.
 */
export const MAX_JSON_DEPTH = 64;

function exceedsDepth(root: object, limit: number): boolean {
  // Iterative, so that the check itself cannot overflow the stack.
  const pending: Array<[unknown, number]> = [[root, 1]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(node)) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
  return false;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** `invalid request: IPv4Data[0].Pool: Invalid input: expected string, received number` (first few issues). */
function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  const more = error.issues.length - shown.length;
  return oneLine(`invalid request: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`);
}

/** Keys in the path can come from the request (Options maps), so quote anything unusual. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(body)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else {
      const text = typeof segment === 'symbol' ? segment.toString() : segment;
      out += `[${JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text)}]`;
    }
  }
  return out;
}

function oneLine(message: string): string {
  const flat = message.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > MAX_ERR_CHARS ? `${flat.slice(0, MAX_ERR_CHARS)}...` : flat;
}

function describePath(path: string): string {
  const shown = path.length > 128 ? `${path.slice(0, 128)}...` : path;
  return JSON.stringify(shown).slice(1, -1);
}

interface ErrorReply {
  status: number;
  message: string;
  /** Whether the failure is ours (logged with stack) rather than the caller's or a driver's reported one. */
  unexpected: boolean;
}

/** The one place where anything thrown becomes an HTTP status and an Err message. */
export function toErrorReply(err: unknown, rpc: string | undefined): ErrorReply {
  const context = rpc ?? 'request';
  if (err instanceof PluginError) {
    return { status: STATUS_BY_CODE[err.code] ?? 500, message: err.message, unexpected: false };
  }
  if (err instanceof NotImplementedError) return { status: 404, message: err.message, unexpected: false };
  const bodyStatus = bodyReadStatus(err);
  if (bodyStatus !== undefined) {
    const message =
      bodyStatus === 413
        ? `${context}: request body too large (limit ${MAX_BODY_BYTES} bytes)`
        : `${context}: could not read request body: ${(err as Error).message}`;
    return { status: bodyStatus, message, unexpected: false };
  }
  if (err instanceof Error) {
    return { status: 500, message: `${context}: internal error: ${err.message}`, unexpected: true };
  }
  return { status: 500, message: `${context}: internal error: non-Error value thrown: ${safeString(err)}`, unexpected: true };
}

/** body-parser failures are http-errors carrying a 4xx status and a `type` such as "entity.too.large". */
function bodyReadStatus(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const { status, type } = err as Error & { status?: unknown; type?: unknown };
  if (typeof type !== 'string' || typeof status !== 'number') return undefined;
  return status >= 400 && status < 500 ? status : undefined;
}

function safeString(value: unknown): string {
  try {
    const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
    return text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function errorReplier(logger: Logger) {
  return (err: unknown, req: Request, res: Response): void => {
    const rpc = res.locals['rpc'] as string | undefined;
    const reply = toErrorReply(err, rpc);
    const message = oneLine(reply.message);
    res.locals['outcome'] = reply.unexpected ? 'crashed' : reply.status >= 500 ? 'failed' : 'rejected';
    if (reply.unexpected) {
      const stack = err instanceof Error ? err.stack : undefined;
      logger.error({ rpc, path: req.path, err: message, stack }, 'unexpected error in request handler');
    } else if (reply.status >= 500) {
      logger.warn({ rpc, status: reply.status, err: message }, 'driver call failed');
    }
    if (res.headersSent) {
      // Nothing sensible can follow a half-sent reply; drop the connection so the client sees a failure.
      req.socket.destroy();
      return;
    }
    sendJson(res, reply.status, { Err: message });
  };
}

function sendJson(res: Response, status: number, body: unknown): void {
  // Serialise before touching the response, so a driver value JSON cannot encode
  // (a BigInt, a cycle) still becomes a clean 500 through the error handler.
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  // A Buffer keeps express from appending "; charset=utf-8" to our media type.
  res.status(status).set('Content-Type', PLUGIN_CONTENT_TYPE).send(payload);
}

function logEachCall(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const status = res.statusCode;
      const outcome = (res.locals['outcome'] as string | undefined) ?? (status < 400 ? 'ok' : 'rejected');
      logger.debug(
        {
          rpc: (res.locals['rpc'] as string | undefined) ?? describePath(req.path),
          status,
          outcome,
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'plugin call',
      );
    });
    next();
  };
}

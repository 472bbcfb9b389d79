/** The one place where anything thrown becomes an HTTP status and an `{"Err": message}` reply. */
import type { Request, Response } from 'express';
import { MAX_BODY_BYTES, PLUGIN_CONTENT_TYPE } from '../docker/api.js';
import { PluginError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { truncate } from '../util/text.js';

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
export class NotImplementedError extends Error {
  override readonly name = 'NotImplementedError';
}

export function oneLine(message: string): string {
  const flat = message.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return truncate(flat, MAX_ERR_CHARS);
}

export function describePath(path: string): string {
  const shown = truncate(path, 128);
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
    return truncate(text, 200);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export function errorReplier(logger: Logger) {
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

export function sendJson(res: Response, status: number, body: unknown): void {
  // Serialise before touching the response, so a driver value JSON cannot encode
  // (a BigInt, a cycle) still becomes a clean 500 through the error handler.
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  // A Buffer keeps express from appending "; charset=utf-8" to our media type.
  res.status(status).set('Content-Type', PLUGIN_CONTENT_TYPE).send(payload);
}

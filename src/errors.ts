/**
 * Typed errors with a stable code. Each layer wraps with context
 * (`wrapError(err, "CreateEndpoint ep=abc")`) so a user-facing message reads
 * from the outside in, e.g. `CreateEndpoint ep=abc: bridge failed (ADD): ...`.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT' // bad request body, bad -o option, bad ID/name
  | 'NOT_FOUND' // unknown network/endpoint/pool/conflist/plugin binary
  | 'CONFLICT' // already exists, overlapping pool, port in use
  | 'EXHAUSTED' // no free address or pool
  | 'CNI_FAILED' // a CNI plugin returned an error
  | 'HOST_FAILED' // ip/iptables/netns operation failed
  | 'STATE_FAILED' // persisted state could not be read/written
  | 'TIMEOUT'
  | 'INTERNAL';

export class PluginError extends Error {
  override readonly name: string = 'PluginError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A CNI plugin error, keeping the spec's code, msg and details. */
export class CniPluginError extends PluginError {
  override readonly name = 'CniPluginError';
  constructor(
    readonly plugin: string,
    readonly verb: string,
    readonly cniCode: number,
    readonly cniMsg: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CNI_FAILED',
      `${plugin} failed (${verb}): ${cniMsg}${details ? `: ${details}` : ''} (CNI code ${cniCode})`,
      options,
    );
  }
}

/** Adds context to any error while preserving its code (non-PluginErrors become INTERNAL). */
export function wrapError(err: unknown, context: string): PluginError {
  if (err instanceof PluginError) {
    const wrapped = new PluginError(err.code, `${context}: ${err.message}`, { cause: err });
    return wrapped;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new PluginError('INTERNAL', `${context}: ${message}`, { cause: err });
}

/** Walks the cause chain to find the innermost error of a given class (e.g. the CniPluginError). */
export function findCause<T extends Error>(err: unknown, ctor: abstract new (...args: never[]) => T): T | undefined {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 20; depth++) {
    if (current instanceof ctor) return current;
    current = current.cause;
  }
  return undefined;
}

export const invalid = (message: string): PluginError => new PluginError('INVALID_ARGUMENT', message);
export const notFound = (message: string): PluginError => new PluginError('NOT_FOUND', message);

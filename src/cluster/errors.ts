/**
 * Errors of the cluster layer. Each carries a stable cluster code next to the
 * generic PluginError code, so callers (and Docker users reading `Err`) can
 * tell "etcd is unreachable" from "the pool is full" without parsing text.
 */
import { PluginError, type ErrorCode } from '../errors.js';

export type ClusterErrorCode =
  | 'ETCD_UNAVAILABLE' // no etcd quorum answered in time; nothing was changed
  | 'HOST_FENCED' // this host's lease may have expired: its blocks could be reclaimed, so it stops allocating
  | 'POOL_MISMATCH' // the pool exists cluster-wide with other settings (block size, gateway)
  | 'POOL_EXHAUSTED' // no free block left in the pool and no block of a departed host to reclaim
  | 'ADDRESS_TAKEN' // a requested address is in use or in another host's block
  | 'BAD_CONFIG'; // cluster settings are invalid

const GENERIC: Record<ClusterErrorCode, ErrorCode> = {
  ETCD_UNAVAILABLE: 'TIMEOUT',
  HOST_FENCED: 'TIMEOUT',
  POOL_MISMATCH: 'CONFLICT',
  POOL_EXHAUSTED: 'EXHAUSTED',
  ADDRESS_TAKEN: 'CONFLICT',
  BAD_CONFIG: 'INVALID_ARGUMENT',
};

export class ClusterError extends PluginError {
  override readonly name = 'ClusterError';
  constructor(
    readonly clusterCode: ClusterErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    // The code is in the text too: Docker shows only the message to the user.
    super(GENERIC[clusterCode], `${message} [${clusterCode}]`, options);
  }
}

/** The innermost ClusterError's code, if any, through wrapError's cause chain. */
export function clusterCodeOf(err: unknown): ClusterErrorCode | undefined {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 20; depth++) {
    if (current instanceof ClusterError) return current.clusterCode;
    current = current.cause;
  }
  return undefined;
}

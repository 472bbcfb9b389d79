/**
 * What docker-cni counts and times, behind an interface the drivers and the
 * HTTP layer receive through their deps; `noopMetrics` when metrics are off.
 * The Prometheus implementation is in prom-metrics.ts, loaded only when a
 * metrics listener is configured.
 */

export type CallOutcome = 'ok' | 'rejected' | 'error';

export interface Metrics {
  /** One libnetwork RPC answered (e.g. NetworkDriver.CreateEndpoint). */
  rpcCall(rpc: string, outcome: string, seconds: number): void;
  /** One CNI plugin process run to its end. */
  cniExec(plugin: string, command: string, outcome: CallOutcome, seconds: number): void;
  /** One host program run (ip, iptables-restore, ...). */
  hostSpawn(program: string, outcome: CallOutcome): void;
  /** One command handed to a long-lived host process (the staging netns's `ip -batch`) instead of a spawn. */
  batchCommand(program: string, outcome: CallOutcome): void;
  /** One garbage-collection action of a reconciliation pass. */
  gcAction(kind: string, result: 'removed' | 'failed' | 'would-remove'): void;
  /** One failure worth counting on its own, by where it happened and its stable code. */
  error(source: string, code: string): void;
}

export const noopMetrics: Metrics = {
  rpcCall: () => undefined,
  cniExec: () => undefined,
  hostSpawn: () => undefined,
  batchCommand: () => undefined,
  gcAction: () => undefined,
  error: () => undefined,
};

/** Sizes read when Prometheus scrapes, so nothing on the request path keeps them. */
export interface MetricsGauges {
  networks: () => Promise<number> | number;
  endpoints: () => Promise<number> | number;
  stagingNamespaces: () => Promise<number> | number;
}

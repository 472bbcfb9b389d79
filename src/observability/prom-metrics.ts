/**
 * The Prometheus implementation of Metrics. Only this room knows prom-client,
 * which (with @opentelemetry/api) costs the process several MB; the wiring
 * imports it only when metrics are switched on.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics, MetricsGauges } from './metrics.js';

const PREFIX = 'docker_cni_';
/** Seconds; CNI chains take tens of ms, a timed-out plugin 20 s. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface PromMetrics {
  metrics: Metrics;
  registry: Registry;
}

export function createPromMetrics(gauges: MetricsGauges): PromMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const rpcCalls = new Counter({ name: `${PREFIX}rpc_calls_total`, help: 'Plugin API calls by RPC and outcome', labelNames: ['rpc', 'outcome'], registers: [registry] });
  const rpcSeconds = new Histogram({ name: `${PREFIX}rpc_duration_seconds`, help: 'Plugin API call latency by RPC', labelNames: ['rpc'], buckets: BUCKETS, registers: [registry] });
  const cniExecs = new Counter({ name: `${PREFIX}cni_exec_total`, help: 'CNI plugin runs by plugin, command and outcome', labelNames: ['plugin', 'command', 'outcome'], registers: [registry] });
  const cniSeconds = new Histogram({ name: `${PREFIX}cni_exec_duration_seconds`, help: 'CNI plugin run time by plugin and command', labelNames: ['plugin', 'command'], buckets: BUCKETS, registers: [registry] });
  const spawns = new Counter({ name: `${PREFIX}spawns_total`, help: 'Processes started, by program (CNI plugins and host tools)', labelNames: ['program', 'outcome'], registers: [registry] });
  const batchCommands = new Counter({ name: `${PREFIX}batch_commands_total`, help: 'Commands run by a long-lived host process instead of a spawn, by program', labelNames: ['program', 'outcome'], registers: [registry] });
  const gcActions = new Counter({ name: `${PREFIX}gc_actions_total`, help: 'Garbage-collection actions by kind and result', labelNames: ['kind', 'result'], registers: [registry] });
  const errors = new Counter({ name: `${PREFIX}errors_total`, help: 'Failures by source and code', labelNames: ['source', 'code'], registers: [registry] });
  const gauge = (name: string, help: string, read: () => Promise<number> | number): void => {
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers: [registry],
      async collect() {
        this.set(await read());
      },
    });
  };
  gauge('networks', 'Networks docker-cni has recorded', gauges.networks);
  gauge('endpoints', 'Endpoints docker-cni has recorded', gauges.endpoints);
  gauge('staging_pool_size', 'Staging network namespaces that exist (idle and leased)', gauges.stagingNamespaces);

  const metrics: Metrics = {
    rpcCall(rpc, outcome, seconds) {
      rpcCalls.inc({ rpc, outcome });
      rpcSeconds.observe({ rpc }, seconds);
    },
    cniExec(plugin, command, outcome, seconds) {
      cniExecs.inc({ plugin, command, outcome });
      cniSeconds.observe({ plugin, command }, seconds);
      spawns.inc({ program: plugin, outcome });
    },
    hostSpawn(program, outcome) {
      spawns.inc({ program, outcome });
    },
    batchCommand(program, outcome) {
      batchCommands.inc({ program, outcome });
    },
    gcAction(kind, result) {
      gcActions.inc({ kind, result });
    },
    error(source, code) {
      errors.inc({ source, code });
    },
  };
  return { metrics, registry };
}

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PluginError } from '../../../src/errors.js';
import { instrumentCommandRunner, instrumentExecutor, instrumentNetnsCommands, recordGcReport } from '../../../src/observability/instrument.js';
import { parseMetricsListen } from '../../../src/observability/listener.js';
import { createPromMetrics } from '../../../src/observability/prom-metrics.js';
import { parsePrometheus } from '../../helpers/prometheus.js';

async function scrape(registry: { metrics(): Promise<string> }): Promise<Map<string, number>> {
  return parsePrometheus(await registry.metrics());
}

describe('metrics', () => {
  test('RPC calls count by RPC and outcome, and time into a histogram per RPC', async () => {
    const { metrics, registry } = createPromMetrics({ networks: () => 2, endpoints: async () => 3, stagingNamespaces: () => 4 });
    metrics.rpcCall('NetworkDriver.CreateEndpoint', 'ok', 0.02);
    metrics.rpcCall('NetworkDriver.CreateEndpoint', 'ok', 0.2);
    metrics.rpcCall('NetworkDriver.CreateEndpoint', 'error', 0.01);
    const m = await scrape(registry);
    assert.equal(m.get('docker_cni_rpc_calls_total{rpc="NetworkDriver.CreateEndpoint",outcome="ok"}'), 2);
    assert.equal(m.get('docker_cni_rpc_calls_total{rpc="NetworkDriver.CreateEndpoint",outcome="error"}'), 1);
    assert.equal(m.get('docker_cni_rpc_duration_seconds_count{rpc="NetworkDriver.CreateEndpoint"}'), 3);
    assert.equal(m.get('docker_cni_rpc_duration_seconds_bucket{le="0.025",rpc="NetworkDriver.CreateEndpoint"}'), 2);
    assert.equal(m.get('docker_cni_networks'), 2);
    assert.equal(m.get('docker_cni_endpoints'), 3);
    assert.equal(m.get('docker_cni_staging_pool_size'), 4);
  });

  test('the decorators time each plugin run and count spawns, batched commands and failures', async () => {
    const { metrics, registry } = createPromMetrics({ networks: () => 0, endpoints: () => 0, stagingNamespaces: () => 0 });
    const executor = instrumentExecutor(
      {
        execPlugin: async (path) => {
          if (path.endsWith('/portmap')) throw new PluginError('TIMEOUT', 'portmap timed out');
          return Buffer.from('{}');
        },
        findInPath: async (type) => `/opt/cni/bin/${type}`,
      },
      metrics,
    );
    await executor.execPlugin('/opt/cni/bin/bridge', Buffer.from('{}'), { CNI_COMMAND: 'ADD' }, 1000);
    await assert.rejects(executor.execPlugin('/opt/cni/bin/portmap', Buffer.from('{}'), { CNI_COMMAND: 'ADD' }, 1000), /timed out/);
    const runner = instrumentCommandRunner(async () => '', metrics);
    await runner('/usr/sbin/ip', ['link']);
    const fail = async (_netns: string, args: readonly string[]): Promise<void> => {
      if (args[0] === 'bad') throw new PluginError('HOST_FAILED', 'no');
    };
    const batch = instrumentNetnsCommands({ run: fail, runOnHost: (args) => fail('', args) }, metrics);
    await batch.run('ns', ['link', 'set']);
    await batch.runOnHost(['link', 'del']);
    await assert.rejects(batch.run('ns', ['bad']), /no/);
    const m = await scrape(registry);
    assert.equal(m.get('docker_cni_cni_exec_total{plugin="bridge",command="ADD",outcome="ok"}'), 1);
    assert.equal(m.get('docker_cni_cni_exec_total{plugin="portmap",command="ADD",outcome="error"}'), 1);
    assert.equal(m.get('docker_cni_cni_exec_duration_seconds_count{plugin="bridge",command="ADD"}'), 1);
    assert.equal(m.get('docker_cni_spawns_total{program="bridge",outcome="ok"}'), 1);
    assert.equal(m.get('docker_cni_spawns_total{program="ip",outcome="ok"}'), 1, 'batched commands are no spawns');
    assert.equal(m.get('docker_cni_batch_commands_total{program="ip",outcome="ok"}'), 2);
    assert.equal(m.get('docker_cni_batch_commands_total{program="ip",outcome="error"}'), 1);
    assert.equal(m.get('docker_cni_errors_total{source="cni",code="TIMEOUT"}'), 1);
  });

  test('GC actions count by kind and result', async () => {
    const { metrics, registry } = createPromMetrics({ networks: () => 0, endpoints: () => 0, stagingNamespaces: () => 0 });
    recordGcReport({ dryRun: false, dockerReachable: true, actions: [
      { kind: 'link', id: 'dc0123456789abc', reason: 'x' },
      { kind: 'link', id: 'dc0123456789abd', reason: 'x', error: 'busy' },
    ] }, metrics);
    recordGcReport({ dryRun: true, dockerReachable: true, actions: [{ kind: 'pool', id: 'p', reason: 'x' }] }, metrics);
    const m = await scrape(registry);
    assert.equal(m.get('docker_cni_gc_actions_total{kind="link",result="removed"}'), 1);
    assert.equal(m.get('docker_cni_gc_actions_total{kind="link",result="failed"}'), 1);
    assert.equal(m.get('docker_cni_gc_actions_total{kind="pool",result="would-remove"}'), 1);
  });
});

describe('metrics listener setting', () => {
  test('off, unix sockets and loopback ports are accepted', () => {
    assert.equal(parseMetricsListen(''), undefined);
    assert.deepEqual(parseMetricsListen('unix:/run/docker-cni/metrics.sock'), { kind: 'unix', path: '/run/docker-cni/metrics.sock' });
    assert.deepEqual(parseMetricsListen('/run/m.sock'), { kind: 'unix', path: '/run/m.sock' });
    assert.deepEqual(parseMetricsListen('127.0.0.1:9464'), { kind: 'tcp', host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseMetricsListen('[::1]:9464'), { kind: 'tcp', host: '::1', port: 9464 });
    assert.deepEqual(parseMetricsListen('localhost:1'), { kind: 'tcp', host: 'localhost', port: 1 });
  });

  test('outside addresses, relative paths and bad ports are refused', () => {
    for (const raw of ['0.0.0.0:9464', '10.0.0.1:9464', '[::]:9464', 'example:9464', 'unix:relative.sock', '127.0.0.1:0', '127.0.0.1:70000', '9464']) {
      assert.throws(() => parseMetricsListen(raw), /metrics listener/, raw);
    }
  });
});

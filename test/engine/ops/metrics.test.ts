/**
 * Metrics of a real plugin: one container started and stopped moves each
 * RPC counter and latency histogram, each CNI plugin's exec counter and
 * histogram, and the endpoint gauge by exactly what that lifecycle costs.
 * A child plugin serves them on a unix socket; the managed plugin (managed
 * tier) on a loopback port set with `docker plugin set`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, engineCase, engineSkipReason, freeSubnet, randomHex, setupEngineSuite } from '../../helpers/engine.js';
import { waitFor } from '../../helpers/common.js';
import { delta, parsePrometheus } from '../../helpers/prometheus.js';

const skip = await engineSkipReason();
const MANAGED = process.env.DOCKER_CNI_TEST_MANAGED === '1';
const METRICS_SOCKET = join(tmpdir(), `docker-cni-metrics-${randomHex(6)}.sock`);

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

type Target = { socketPath: string } | { host: string; port: number };

function get(target: Target, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path, method: 'GET', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no reply`)));
    req.on('error', reject);
    req.end();
  });
}

describe('Prometheus metrics', { skip }, () => {
  let target: Target = { socketPath: METRICS_SOCKET };
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_METRICS_LISTEN: `unix:${METRICS_SOCKET}` } });

  if (MANAGED) {
    // The tier's plugin: serve metrics on a loopback port for this file only.
    before(async () => {
      const port = await freeLoopbackPort();
      target = { host: '127.0.0.1', port };
      await plugin().stop();
      await docker(['plugin', 'set', plugin().driver, `DOCKER_CNI_METRICS_LISTEN=127.0.0.1:${port}`]);
      await plugin().start();
    });
    // Whichever of this and the harness's own after hook runs first, the
    // plugin ends up without the setting and as enabled as it was.
    after(async () => {
      const driver = plugin().driver;
      const enabled = (await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', driver])) === 'true';
      if (enabled) await plugin().stop();
      await docker(['plugin', 'set', driver, 'DOCKER_CNI_METRICS_LISTEN=']);
      if (enabled) await plugin().start();
    });
  }

  test('/healthz answers ok and /metrics is Prometheus text', async () => {
    const health = await get(target, '/healthz');
    assert.equal(health.status, 200, health.body);
    assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
    const metrics = await get(target, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^# TYPE docker_cni_rpc_calls_total counter$/m);
    assert.equal((await get(target, '/nothing')).status, 404);
  });

  test('a container start and stop moves the counters and histograms by one call each', async () => {
    await engineCase(plugin(), async (scope) => {
      const net = await scope.createNetwork({ subnet: await freeSubnet() });
      const before = parsePrometheus((await get(target, '/metrics')).body);
      const container = await scope.runContainer({ network: net.name });
      const running = parsePrometheus((await get(target, '/metrics')).body);
      await docker(['rm', '-f', container]);
      // DeleteEndpoint answers once the teardown is journaled; the chain's DEL finishes just after.
      const afterStop = await waitFor(
        async () => {
          const now = parsePrometheus((await get(target, '/metrics')).body);
          const delDone = delta(running, now, 'docker_cni_cni_exec_duration_seconds_count{plugin="bridge",command="DEL"}') >= 1;
          return delDone && delta(before, now, 'docker_cni_endpoints') === 0 ? now : undefined;
        },
        { timeoutMs: 15_000, what: 'the background teardown (bridge DEL, endpoint record gone)' },
      );

      const rpc = (name: string) => `docker_cni_rpc_calls_total{rpc="${name}",outcome="ok"}`;
      const rpcCount = (name: string) => `docker_cni_rpc_duration_seconds_count{rpc="${name}"}`;
      for (const name of ['IpamDriver.RequestAddress', 'NetworkDriver.CreateEndpoint', 'NetworkDriver.Join']) {
        assert.equal(delta(before, running, rpc(name)), 1, `${name} while running`);
        assert.equal(delta(before, running, rpcCount(name)), 1, `${name} histogram`);
      }
      for (const name of ['NetworkDriver.Leave', 'NetworkDriver.DeleteEndpoint', 'IpamDriver.ReleaseAddress']) {
        assert.equal(delta(before, running, rpc(name)), 0, `${name} not yet`);
        assert.equal(delta(running, afterStop, rpc(name)), 1, `${name} at stop`);
        assert.equal(delta(running, afterStop, rpcCount(name)), 1, `${name} histogram`);
      }
      const exec = (plugin: string, command: string) => `docker_cni_cni_exec_total{plugin="${plugin}",command="${command}",outcome="ok"}`;
      const execCount = (plugin: string, command: string) => `docker_cni_cni_exec_duration_seconds_count{plugin="${plugin}",command="${command}"}`;
      // The cni IPAM reserves and releases in host-local's files in-process, so host-local never runs;
      // bridge runs the chain; portmap is skipped without ports.
      assert.equal(delta(before, running, exec('host-local', 'ADD')), 0);
      assert.equal(delta(before, running, exec('bridge', 'ADD')), 1);
      assert.equal(delta(before, running, execCount('bridge', 'ADD')), 1);
      assert.equal(delta(running, afterStop, exec('bridge', 'DEL')), 1);
      assert.equal(delta(running, afterStop, execCount('bridge', 'DEL')), 1);
      assert.equal(delta(running, afterStop, exec('host-local', 'DEL')), 0);
      assert.equal(delta(before, afterStop, 'docker_cni_spawns_total{program="bridge",outcome="ok"}'), 2);
      // The link move out of the staging netns, and the host link's delete at stop, go through long-lived
      // ip -batch processes: no spawn each.
      const batched = 'docker_cni_batch_commands_total{program="ip",outcome="ok"}';
      assert.equal(delta(before, running, batched), 1, 'the move');
      assert.equal(delta(running, afterStop, batched), 1, 'the delete');
      assert.equal(delta(before, running, 'docker_cni_endpoints'), 1);
      assert.equal(delta(before, afterStop, 'docker_cni_endpoints'), 0);
      assert.equal(running.get('docker_cni_networks'), afterStop.get('docker_cni_networks'));
      assert.ok((afterStop.get('docker_cni_staging_pool_size') ?? 0) >= 1, 'the staging pool is kept warm');
    });
  });
});

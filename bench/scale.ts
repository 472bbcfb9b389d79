/**
 * The plugin's own cost without dockerd: CreateEndpoint+DeleteEndpoint through
 * the real HTTP app (createApp) and NetworkDriver with state on disk, a
 * recording fake CNI and fake links/staging, at 10, 100 and 1,000 existing
 * endpoints; then the startup (init) time with 1,000 persisted endpoints.
 * No root needed.  node --import tsx bench/scale.ts [cycles]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request, type Server } from 'node:http';
import { createApp } from '../src/http/app.js';
import { IpamDriver } from '../src/ipam/ipam-driver.js';
import { POOL_CODEC, type PoolRecord } from '../src/ipam/pool-record.js';
import { silentLogger } from '../src/log.js';
import { NetworkDriver } from '../src/network/network-driver.js';
import { ENDPOINT_CODEC, NETWORK_CODEC, type EndpointRecord, type NetworkRecord } from '../src/network/records.js';
import { RecordStore } from '../src/state/record-store.js';
import { FakeCni, FakeFirewall, FakeLinks, FakeStaging, endpointRequest, fakeProbe, hexId, networkRequest } from '../test/unit/network/driver-harness.js';
import { fmt, median } from './stats.js';

const cycles = Math.min(Math.max(Number(process.argv[2] ?? 200) || 200, 10), 2000);

function driverOn(stateDir: string): NetworkDriver {
  return new NetworkDriver({
    networks: new RecordStore<NetworkRecord>(stateDir, 'networks', true, NETWORK_CODEC),
    endpoints: new RecordStore<EndpointRecord>(stateDir, 'endpoints', false, ENDPOINT_CODEC),
    cni: new FakeCni(),
    loadConfList: () => Promise.reject(new Error('unused')),
    locatePlugin: (type) => Promise.resolve(`/bin/${type}`),
    staging: new FakeStaging(),
    links: new FakeLinks(),
    firewall: new FakeFirewall(),
    probePort: fakeProbe(),
    logger: silentLogger,
    backgroundTeardown: true,
    backgroundSetup: true,
  });
}

/** One RPC over the plugin's unix socket, as dockerd sends it. */
function rpc(socketPath: string, agent: Agent, path: string, body: unknown): Promise<void> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, agent, method: 'POST', path, headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: HTTP ${String(res.statusCode)}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const addressOf = (i: number): string => `10.${100 + Math.floor(i / 65_000)}.${Math.floor(i / 250) % 250}.${(i % 250) + 2}/8`;

export async function scaleBench(): Promise<{ perSize: Record<number, number>; startupMs: number; startupRssMb: number }> {
  const root = await mkdtemp(join(tmpdir(), 'dcni-bench-scale-'));
  try {
    const driver = driverOn(root);
    await driver.init();
    const ipam = new IpamDriver({
      pools: new RecordStore<PoolRecord>(root, 'pools', true, POOL_CODEC),
      hostLocalDataDir: join(root, 'hl'),
      defaultPoolsV4: [],
      defaultPoolsV6: [],
      hostRoutes: () => Promise.resolve([]),
      logger: silentLogger,
    });
    const app = createApp({ network: driver, ipam, logger: silentLogger });
    const socketPath = join(root, 'plugin.sock');
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(socketPath, () => resolve(s));
    });
    const agent = new Agent({ keepAlive: true });
    const net = hexId();
    await driver.createNetwork(networkRequest(net, { v4: [{ pool: '10.0.0.0/8', gateway: '10.0.0.1/8' }] }));
    const perSize: Record<number, number> = {};
    let made = 0;
    // The first size is run twice: the first round only warms the JIT and the file system.
    for (const size of [10, 10, 100, 1000]) {
      while (made < size) await driver.createEndpoint(endpointRequest(net, hexId(), { address: addressOf(made++) }));
      const times: number[] = [];
      for (let i = 0; i < cycles; i++) {
        const ep = hexId();
        const t = performance.now();
        await rpc(socketPath, agent, '/NetworkDriver.CreateEndpoint', endpointRequest(net, ep, { address: addressOf(5000 + i) }));
        await rpc(socketPath, agent, '/NetworkDriver.Join', { NetworkID: net, EndpointID: ep, SandboxKey: '/x', Options: {} });
        await rpc(socketPath, agent, '/NetworkDriver.Leave', { NetworkID: net, EndpointID: ep });
        await rpc(socketPath, agent, '/NetworkDriver.DeleteEndpoint', { NetworkID: net, EndpointID: ep });
        times.push(performance.now() - t);
        await driver.drain();
      }
      perSize[size] = median(times);
    }
    await driver.drain();
    agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const before = process.memoryUsage().rss;
    const t = performance.now();
    const restarted = driverOn(root);
    await restarted.init();
    const startupMs = performance.now() - t;
    return { perSize, startupMs, startupRssMb: (process.memoryUsage().rss - before) / 1048576 };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await scaleBench();
  for (const [size, ms] of Object.entries(r.perSize)) console.log(`endpoint life through the API at ${size} endpoints: median ${fmt(ms)} ms`);
  console.log(`ratio 1000/10: ${(r.perSize[1000]! / r.perSize[10]!).toFixed(3)}`);
  console.log(`startup (NetworkDriver.init) with 1000 persisted endpoints: ${fmt(r.startupMs)} ms`);
}

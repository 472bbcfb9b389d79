/**
 * The plugin's own cost without dockerd: CreateEndpoint+DeleteEndpoint through
 * the real HTTP app (createApp) and NetworkDriver, a recording fake CNI and
 * fake links/staging, at 10, 100 and 1,000 existing endpoints; then the
 * startup (init) time with 1,000 persisted endpoints. Network records are on
 * disk and endpoint records on the run dir, as the plugin keeps them: a tmpfs
 * (the usual /run, and what `doctor` asks for; mounting it needs root) or,
 * with `disk`, this machine's ext4, where a write into a directory of more than
 * a block of names costs several times one into a small directory.
 *   node --import tsx bench/scale.ts [cycles] [tmpfs|disk]
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
import { mountTmpfs, unmountTmpfs } from './tmpfs.js';

const cycles = Math.min(Math.max(Number(process.argv[2] ?? 200) || 200, 10), 2000);

/** Where the endpoint records go: the run dir on a tmpfs, or on this machine's disk. */
export type EndpointRecordsOn = 'tmpfs' | 'disk';

function driverOn(stateDir: string, runDir: string): NetworkDriver {
  return new NetworkDriver({
    networks: new RecordStore<NetworkRecord>(stateDir, 'networks', true, NETWORK_CODEC),
    endpoints: new RecordStore<EndpointRecord>(runDir, 'endpoints', false, ENDPOINT_CODEC),
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

/** One plugin (driver, IPAM, HTTP app on its own socket) with `size` endpoints on one network. */
interface Plugin {
  driver: NetworkDriver;
  net: string;
  socketPath: string;
  agent: Agent;
  server: Server;
}

async function pluginWith(root: string, runDir: string, size: number): Promise<Plugin> {
  const driver = driverOn(root, runDir);
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
  const net = hexId();
  await driver.createNetwork(networkRequest(net, { v4: [{ pool: '10.0.0.0/8', gateway: '10.0.0.1/8' }] }));
  for (let made = 0; made < size; made++) await driver.createEndpoint(endpointRequest(net, hexId(), { address: addressOf(made) }));
  await driver.drain();
  return { driver, net, socketPath, agent: new Agent({ keepAlive: true }), server };
}

/** CreateEndpoint, Join, Leave, DeleteEndpoint over the socket, as dockerd sends them; ms. */
async function endpointLife(p: Plugin, address: string): Promise<number> {
  const ep = hexId();
  const t = performance.now();
  await rpc(p.socketPath, p.agent, '/NetworkDriver.CreateEndpoint', endpointRequest(p.net, ep, { address }));
  await rpc(p.socketPath, p.agent, '/NetworkDriver.Join', { NetworkID: p.net, EndpointID: ep, SandboxKey: '/x', Options: {} });
  await rpc(p.socketPath, p.agent, '/NetworkDriver.Leave', { NetworkID: p.net, EndpointID: ep });
  await rpc(p.socketPath, p.agent, '/NetworkDriver.DeleteEndpoint', { NetworkID: p.net, EndpointID: ep });
  const ms = performance.now() - t;
  await p.driver.drain();
  return ms;
}

/**
 * The sizes are measured side by side (one plugin each, their cycles
 * interleaved), so a change in the machine's load shows in all of them
 * alike rather than in whichever size ran at the time.
 */
export async function scaleBench(endpointsOn: EndpointRecordsOn = 'tmpfs'): Promise<{ perSize: Record<number, number>; startupMs: number; startupRssMb: number }> {
  const sizes = [10, 100, 1000];
  const roots = await Promise.all(sizes.map(() => mkdtemp(join(tmpdir(), 'dcni-bench-scale-'))));
  let tmpfs: string | undefined;
  try {
    if (endpointsOn === 'tmpfs') tmpfs = await mountTmpfs();
    const runDirs = roots.map((root, n) => join(tmpfs ?? root, `run-${n}`));
    const plugins: Plugin[] = [];
    for (const [n, size] of sizes.entries()) plugins.push(await pluginWith(roots[n]!, runDirs[n]!, size));
    const times = sizes.map((): number[] => []);
    const warmUp = Math.min(20, cycles);
    for (let i = 0; i < warmUp + cycles; i++) {
      for (const [n, p] of plugins.entries()) {
        const ms = await endpointLife(p, addressOf(5000 + i));
        if (i >= warmUp) times[n]!.push(ms);
      }
    }
    const perSize: Record<number, number> = {};
    for (const [n, size] of sizes.entries()) perSize[size] = median(times[n]!);
    for (const p of plugins) {
      p.agent.destroy();
      await new Promise<void>((resolve) => p.server.close(() => resolve()));
    }
    const before = process.memoryUsage().rss;
    const t = performance.now();
    await driverOn(roots[sizes.length - 1]!, runDirs[sizes.length - 1]!).init();
    const startupMs = performance.now() - t;
    return { perSize, startupMs, startupRssMb: (process.memoryUsage().rss - before) / 1048576 };
  } finally {
    await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
    if (tmpfs) await unmountTmpfs(tmpfs);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const endpointsOn = process.argv[3] === 'disk' ? 'disk' : 'tmpfs';
  const r = await scaleBench(endpointsOn);
  console.log(`endpoint records on ${endpointsOn === 'tmpfs' ? 'a tmpfs run dir' : 'the disk'}`);
  for (const [size, ms] of Object.entries(r.perSize)) console.log(`endpoint life through the API at ${size} endpoints: median ${fmt(ms)} ms`);
  console.log(`ratio 1000/10: ${(r.perSize[1000]! / r.perSize[10]!).toFixed(3)}`);
  console.log(`startup (NetworkDriver.init) with 1000 persisted endpoints: ${fmt(r.startupMs)} ms`);
}

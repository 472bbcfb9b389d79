/**
 * Cross-host cost on the simulated 3-host cluster (test/cluster/sim): ping RTT
 * between containers on host1 and host2, and `docker run --rm … true` time,
 * on a docker-cni spanning network (routed and L2) against Docker's overlay,
 * all in the same run on the same hosts.
 *
 * Run alone, as root, under the engine lock:
 *   flock /tmp/docker-cni-engine.lock node --import tsx bench/cluster-bench.ts [runs]
 * Bounded: at most `runs` (default 10, max 50) containers and 20 pings per network.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { dk, HOSTS, REPO, SIM_DIR, simDown, simUp, TEST_IMAGE, waitFor } from '../test/cluster/sim.js';

const run = promisify(execFile);
const runs = Math.min(Math.max(Number(process.argv[2] ?? 10) || 10, 3), 50);
const PLUGIN = 'dcni-cluster:latest';
const PLUGIN_DIR = `${SIM_DIR}-plugin`;

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function rttMs(net: string): Promise<number> {
  const a = `${net}-a`;
  const b = `${net}-b`;
  await dk(1, ['run', '-d', '--name', a, '--network', net, TEST_IMAGE, 'sleep', '300']);
  await dk(2, ['run', '-d', '--name', b, '--network', net, TEST_IMAGE, 'sleep', '300']);
  try {
    const ip = await dk(2, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, b]);
    await waitFor(`${net} reachable`, () => dk(1, ['exec', a, 'ping', '-c', '1', '-W', '1', ip]).then(() => true, () => false));
    const out = await dk(1, ['exec', a, 'ping', '-c', '20', '-i', '0.2', ip]);
    const avg = /= [\d.]+\/([\d.]+)\//.exec(out)?.[1];
    return Number(avg);
  } finally {
    await dk(1, ['rm', '-f', a]).catch(() => undefined);
    await dk(2, ['rm', '-f', b]).catch(() => undefined);
  }
}

async function runMs(net: string): Promise<number> {
  const start = performance.now();
  await dk(2, ['run', '--rm', '--network', net, TEST_IMAGE, 'true']);
  return performance.now() - start;
}

await rm(PLUGIN_DIR, { recursive: true, force: true });
await run(join(REPO, 'plugin', 'build'), ['--base', 'docker-cni/base:bookworm', '--no-create', '--out', PLUGIN_DIR], {
  env: { ...process.env, DOCKER: '/usr/bin/docker' },
  maxBuffer: 64 << 20,
});
try {
  await simUp({ pluginDir: PLUGIN_DIR, pluginName: PLUGIN });
  for (const i of HOSTS) {
    const dir = join(SIM_DIR, `host${i}`, 'cni-conf');
    await mkdir(dir, { recursive: true });
    const plugin = { type: 'macvlan', master: 'eth0', mode: 'bridge', ipam: { type: 'host-local', ranges: [[{ subnet: '10.233.21.0/24' }]] } };
    await writeFile(join(dir, 'benchl2.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'benchl2', plugins: [plugin] }));
  }
  // Swarm drops a local-scope driver's IPAM settings: they come from a config-only network on every node.
  const spanning = async (name: string, subnet: string, opt: string): Promise<void> => {
    for (const i of HOSTS) {
      await dk(i, ['network', 'create', '--config-only', '--ipam-driver', PLUGIN, '--ipam-opt', 'cni.cluster=true', '--subnet', subnet, '-o', opt, `${name}-cfg`]);
    }
    await dk(1, ['network', 'create', '-d', PLUGIN, '--scope', 'swarm', '--attachable', '--config-from', `${name}-cfg`, name]);
  };
  await spanning('b-routed', '10.233.20.0/24', 'cni.cluster.mode=routed');
  await spanning('b-l2', '10.233.21.0/24', 'cni.network=benchl2');
  await dk(1, ['network', 'create', '-d', 'overlay', '--attachable', '--subnet', '10.233.22.0/24', 'b-overlay']);
  const nets = ['b-routed', 'b-l2', 'b-overlay'];
  const results: Record<string, { rtt: number; run: number[] }> = {};
  for (const net of nets) results[net] = { rtt: await rttMs(net), run: [] };
  for (const net of nets) await runMs(net); // warm caches
  for (let i = 0; i < runs; i++) for (const net of nets) results[net]!.run.push(await runMs(net));
  console.log(`runs per network: ${runs}`);
  console.log('network     ping RTT avg (ms)   docker run median (ms)   vs overlay (RTT, run)');
  const base = results['b-overlay']!;
  for (const net of nets) {
    const r = results[net]!;
    const ratio = `${(r.rtt / base.rtt).toFixed(2)}x, ${(median(r.run) / median(base.run)).toFixed(2)}x`;
    console.log(`${net.padEnd(12)}${r.rtt.toFixed(3).padStart(12)}${median(r.run).toFixed(0).padStart(22)}${ratio.padStart(24)}`);
  }
} finally {
  console.log(await simDown());
  await rm(PLUGIN_DIR, { recursive: true, force: true });
}

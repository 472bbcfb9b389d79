/**
 * Container start+stop cost on a docker-cni network versus Docker's own bridge
 * driver, measured in the same run on the same daemon:
 *   `docker run --rm --network NET <busybox> true`, alternating networks.
 * Also reports the plugin's own CreateEndpoint / DeleteEndpoint times from its log.
 *
 * Run (root, dockerd running, after `npm run build`):  node --import tsx bench/docker-run.ts [runs]
 * Bounded: at most `runs` (default 20, max 200) containers per network.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { docker, ensureTestImage, freeSubnet, startPlugin, TEST_IMAGE, uniqueName } from '../test/helpers/engine.js';

const runs = Math.min(Math.max(Number(process.argv[2] ?? 20) || 20, 3), 200);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const p90 = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)] ?? NaN;

async function timeRun(network: string): Promise<number> {
  const start = performance.now();
  await docker(['run', '--rm', '--network', network, TEST_IMAGE, 'true']);
  return performance.now() - start;
}

await ensureTestImage();
const plugin = await startPlugin();
const cniNet = uniqueName('bench-cni');
const cniDockerIpamNet = uniqueName('bench-cni-dipam');
const bridgeNet = uniqueName('bench-bridge');
try {
  await docker(['network', 'create', '-d', plugin.driver, '--ipam-driver', plugin.driver, '--subnet', await freeSubnet(), cniNet]);
  await docker(['network', 'create', '-d', plugin.driver, '--subnet', await freeSubnet(), cniDockerIpamNet]);
  await docker(['network', 'create', '-d', 'bridge', '--subnet', await freeSubnet(), bridgeNet]);
  for (const net of [cniNet, cniDockerIpamNet, bridgeNet, cniNet, cniDockerIpamNet, bridgeNet]) await timeRun(net); // warm caches
  const times: Record<string, number[]> = { cni: [], cniDockerIpam: [], bridge: [] };
  for (let i = 0; i < runs; i++) {
    times.cni!.push(await timeRun(cniNet));
    times.cniDockerIpam!.push(await timeRun(cniDockerIpamNet));
    times.bridge!.push(await timeRun(bridgeNet));
  }
  const rpc: Record<string, number[]> = {};
  if (plugin.logFile) {
    for (const line of readFileSync(plugin.logFile, 'utf8').split('\n')) {
      const m = /"rpc":"NetworkDriver\.(CreateEndpoint|DeleteEndpoint)".*"ms":([0-9.]+)/.exec(line);
      if (m) (rpc[m[1]!] ??= []).push(Number(m[2]));
    }
  }
  const cni = median(times.cni!);
  const cniDockerIpam = median(times.cniDockerIpam!);
  const bridge = median(times.bridge!);
  console.log(`docker run --rm true, ${runs} runs each, interleaved (median / p90 ms)`);
  console.log(`  docker bridge driver             : ${bridge.toFixed(0)} / ${p90(times.bridge!).toFixed(0)}`);
  console.log(`  docker-cni, cni IPAM (host-local) : ${cni.toFixed(0)} / ${p90(times.cni!).toFixed(0)}   ratio ${(cni / bridge).toFixed(3)}`);
  console.log(`  docker-cni, Docker's IPAM         : ${cniDockerIpam.toFixed(0)} / ${p90(times.cniDockerIpam!).toFixed(0)}   ratio ${(cniDockerIpam / bridge).toFixed(3)}`);
  for (const [name, values] of Object.entries(rpc)) {
    console.log(`  plugin ${name}: median ${median(values).toFixed(1)} ms over ${values.length} calls`);
  }
} finally {
  await docker(['network', 'rm', cniNet]).catch(() => undefined);
  await docker(['network', 'rm', cniDockerIpamNet]).catch(() => undefined);
  await docker(['network', 'rm', bridgeNet]).catch(() => undefined);
  await plugin.dispose();
}

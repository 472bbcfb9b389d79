/**
 * `npm run bench`: the whole performance picture in one command (root, dockerd running).
 *  1. `docker run --rm` on none, Docker's bridge, docker-cni (Docker IPAM) and docker-cni (cni IPAM),
 *     interleaved, n each (default 30), median and p90, ratios to the bridge of the same run;
 *  2. 50 `docker run -d` at once and their `docker rm -f` at once, bridge vs docker-cni, with the
 *     plugin's peak RSS sampled during the bursts: `rounds` rounds (default 3) in a rotating order, with
 *     medians and ratios to the bridge, after the plugin's first burst, which grows its staging pool and is
 *     a row of its own;
 *  3. per-call plugin time split into CNI exec and our own overhead, from the plugin's debug log;
 *  4. the plugin API without dockerd at 10/100/1,000 endpoints and startup with 1,000 (bench/scale.ts);
 *  5. the kernel's netns moves per container start and stop, by process (bench/netns-moves.ts, needs perf);
 *  6. the samples, kept per engine in bench/samples.json, plotted to bench/docker-run.png (bench/plot.ts).
 * The plugin's run dir (its endpoint records) is a tmpfs the bench mounts, as /run is on systemd hosts; on a
 * host whose /run is on disk (this CI machine's is ext4) the default would measure a disk the users' hosts lack.
 * The per-call split is taken from the sequential runs only: in a burst of 50 on a few CPUs every call
 * mostly waits for a CPU, which says nothing about the plugin's own cost.
 * Bounded: n <= 200, burst <= 50, rounds <= 5, every docker call has the harness timeout.
 *   node --import tsx bench/run.ts [n] [burst] [rounds]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { docker, ensureTestImage, freeSubnet, removeNetwork, startPlugin, TEST_IMAGE, uniqueName } from '../test/helpers/engine.js';
import { cpuTimesOf } from './cpu-times.js';
import { scaleBench } from './scale.js';
import { plotSamples, type EngineSamples } from './plot.js';
import { fmt, median, p90 } from './stats.js';
import { countNetnsMoves, perfAvailable } from './netns-moves.js';
import { ownTimeOf } from './plugin-log.js';
import { mountTmpfs, unmountTmpfs } from './tmpfs.js';

const n = Math.min(Math.max(Number(process.argv[2] ?? 30) || 30, 3), 200);
const burst = Math.min(Math.max(Number(process.argv[3] ?? 50) || 50, 2), 50);
const rounds = Math.min(Math.max(Number(process.argv[4] ?? 3) || 3, 1), 5);

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function rssMb(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The living children of a process, from every thread's /proc/<pid>/task/<tid>/children. */
function livingChildren(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
}

/**
 * CPU ms a process used itself, and through its children (CNI plugins, ip): the reaped ones, which /proc adds to
 * the parent at reaping, plus the living ones, such as the long-lived `ip -batch` workers.
 */
function cpuMs(pid: number | undefined): { self: number; children: number } {
  if (!pid) return { self: NaN, children: NaN };
  try {
    const own = cpuTimesOf(pid);
    let living = 0;
    for (const child of livingChildren(pid)) {
      try {
        const times = cpuTimesOf(child);
        living += times.self + times.reaped;
      } catch {
        // reaped since the listing: its CPU is in the parent's reaped time now
      }
    }
    return { self: own.self, children: own.reaped + living };
  } catch {
    return { self: NaN, children: NaN };
  }
}
const dockerdPid = (): number | undefined => Number(readFileSync('/var/run/docker.pid', 'utf8').trim()) || undefined;

await ensureTestImage();
const engine = await docker(['version', '--format', '{{.Server.Version}}']);
const cniPlugins = process.env.CNI_PATH ?? '/opt/cni/bin:/usr/lib/cni';
console.log(`# dockerd ${engine}, CNI plugins from ${cniPlugins}, n=${n}, burst=${burst}, rounds=${rounds}\n`);
const samples: EngineSamples = { engine: `dockerd ${engine}`, cniPlugins, date: new Date().toISOString(), dockerRun: {}, burst: { size: burst, start: {}, remove: {} } };
const runDir = await mountTmpfs();
const plugin = await startPlugin({ runDir }).catch(async (err: unknown) => {
  await unmountTmpfs(runDir);
  throw err;
});
const pid = plugin.child?.pid;
const nets = { none: 'none', bridge: uniqueName('bench-bridge'), cniDockerIpam: uniqueName('bench-cni-dipam'), cniIpam: uniqueName('bench-cni') };
const made: string[] = [];
const containers: string[] = [];
try {
  await docker(['network', 'create', '-d', 'bridge', '--subnet', await freeSubnet(), nets.bridge]);
  made.push(nets.bridge);
  await docker(['network', 'create', '-d', plugin.driver, '--subnet', await freeSubnet(), nets.cniDockerIpam]);
  made.push(nets.cniDockerIpam);
  await docker(['network', 'create', '-d', plugin.driver, '--ipam-driver', plugin.driver, '--subnet', await freeSubnet(), nets.cniIpam]);
  made.push(nets.cniIpam);
  const run = (net: string): Promise<number> => timed(() => docker(['run', '--rm', '--network', net, TEST_IMAGE, 'true']));
  for (const net of Object.values(nets)) await run(net); // warm caches
  const times: Record<string, number[]> = { none: [], bridge: [], cniDockerIpam: [], cniIpam: [] };
  for (let i = 0; i < n; i++) {
    for (const [key, net] of Object.entries(nets)) times[key]!.push(await run(net));
  }
  samples.dockerRun = times;
  /** Where the plugin's log stood when the bursts began: the split below reads only what comes before. */
  const sequentialLogBytes = plugin.logFile ? statSync(plugin.logFile).size : 0;
  const bridge = median(times.bridge!);
  console.log(`## docker run --rm ${TEST_IMAGE} true: n=${n} each, interleaved (ms)`);
  console.log('| network | median | p90 | ratio to bridge |\n|---|---|---|---|');
  for (const [key, values] of Object.entries(times)) console.log(`| ${key} | ${fmt(median(values))} | ${fmt(p90(values))} | ${(median(values) / bridge).toFixed(3)} |`);

  console.log('\n## kernel netns moves per container (one `docker run -d`, then its `docker rm -f`), by process');
  console.log('Each move waits in rcu_barrier() with the rtnl lock held, so moves serialise host-wide.');
  console.log('| network | start | remove |\n|---|---|---|');
  const movesNets = (await perfAvailable()) ? ([['bridge', nets.bridge], ['cniDockerIpam', nets.cniDockerIpam], ['cniIpam', nets.cniIpam]] as const) : [];
  if (movesNets.length === 0) console.log('(skipped: no perf on this machine)');
  for (const [key, net] of movesNets) {
    const name = uniqueName('bench-moves');
    containers.push(name);
    const start = await countNetnsMoves(() => docker(['run', '-d', '--name', name, '--network', net, TEST_IMAGE, 'sleep', '60']));
    const remove = await countNetnsMoves(() => docker(['rm', '-f', name]));
    containers.length = 0;
    const show = (moves: Record<string, number>): string => Object.entries(moves).map(([comm, count]) => `${comm} ${count}`).join(', ') || 'none';
    console.log(`| ${key} | ${show(start.byProcess)} | ${show(remove.byProcess)} |`);
  }

  console.log(`\n## ${burst} containers at once (docker run -d, then docker rm -f), ms`);
  console.log('| network | start all | remove all | CPU ms per container: dockerd | plugin | its children (CNI plugins, ip) |\n|---|---|---|---|---|---|');
  let peak = rssMb(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 25);
  // The plugin's first burst also grows its staging netns pool (and their ip workers) from 2 to the burst's size,
  // once per plugin life: it is reported as its own row, and each IPAM is then measured on the grown pool. One
  // burst per variant moved by 10-25% from run to run, so each round rotates the order and the medians count.
  const variants = [
    ['bridge', nets.bridge],
    ['cniDockerIpam', nets.cniDockerIpam],
    ['cniIpam', nets.cniIpam],
  ] as const;
  const bursts = [
    ['firstBurstCniIpam', nets.cniIpam] as const,
    ...Array.from({ length: rounds }, (_, round) => [...variants.slice(round % 3), ...variants.slice(0, round % 3)]).flat(),
  ];
  const cpuPerContainer: Record<string, { dockerd: number[]; plugin: number[]; children: number[] }> = {};
  for (const [key, net] of bursts) {
    const names = Array.from({ length: burst }, () => uniqueName('bench-burst'));
    containers.push(...names);
    const [dockerdBefore, pluginBefore] = [cpuMs(dockerdPid()), cpuMs(pid)];
    const start = await timed(() => Promise.all(names.map((name) => docker(['run', '-d', '--name', name, '--network', net, TEST_IMAGE, 'sleep', '60']))));
    const remove = await timed(() => Promise.all(names.map((name) => docker(['rm', '-f', name]))));
    containers.length = 0;
    (samples.burst!.start[key] ??= []).push(start);
    (samples.burst!.remove[key] ??= []).push(remove);
    const [dockerdAfter, pluginAfter] = [cpuMs(dockerdPid()), cpuMs(pid)];
    const cpu = (cpuPerContainer[key] ??= { dockerd: [], plugin: [], children: [] });
    cpu.dockerd.push((dockerdAfter.self - dockerdBefore.self) / burst);
    cpu.plugin.push((pluginAfter.self - pluginBefore.self) / burst);
    cpu.children.push((pluginAfter.children - pluginBefore.children) / burst);
    console.log(`| ${key} | ${fmt(start)} | ${fmt(remove)} | ${fmt(cpu.dockerd.at(-1)!)} | ${fmt(cpu.plugin.at(-1)!)} | ${fmt(cpu.children.at(-1)!)} |`);
  }
  clearInterval(sampler);
  const bridgeStart = median(samples.burst!.start.bridge!);
  const bridgeRemove = median(samples.burst!.remove.bridge!);
  console.log(`\n## the same, median per variant over ${rounds} round(s), ratios to the bridge's median`);
  console.log('| network | start all | ratio | remove all | ratio | CPU ms per container: dockerd / plugin / its children |\n|---|---|---|---|---|---|');
  for (const key of Object.keys(cpuPerContainer)) {
    const [start, remove, cpu] = [median(samples.burst!.start[key]!), median(samples.burst!.remove[key]!), cpuPerContainer[key]!];
    console.log(
      `| ${key} | ${fmt(start)} | ${(start / bridgeStart).toFixed(3)} | ${fmt(remove)} | ${(remove / bridgeRemove).toFixed(3)} | ${fmt(median(cpu.dockerd))} / ${fmt(median(cpu.plugin))} / ${fmt(median(cpu.children))} |`,
    );
  }
  console.log(`\nplugin RSS: ${fmt(peak)} MB peak during the bursts; ${fmt(rssMb(pid))} MB after`);

  if (plugin.logFile) {
    const own = ownTimeOf(readFileSync(plugin.logFile).subarray(0, sequentialLogBytes).toString('utf8'));
    console.log('\n## plugin time per call (median ms, from its log, sequential runs only)');
    for (const [name, call] of Object.entries(own.calls)) console.log(`- ${name}: ${fmt(call.median)} over ${call.count} calls`);
    console.log(
      `- CreateEndpoint split: CNI ADD ${fmt(own.cniAdd)}, link move ${fmt(own.move)}, own ${fmt(own.createOwn)}` +
        (own.background ? ' (the chain runs after the reply; Join waits for what is left of it)' : ''),
    );
    console.log(`- own overhead per container life (CreateEndpoint own + DeleteEndpoint answer): ${fmt(own.lifeOwn)}`);
    console.log(
      `- the background teardown's own bookkeeping, which Docker does not wait for: ${fmt(own.teardownOwn)}` +
        ` (with it, ${fmt(own.lifeOwn + own.teardownOwn)} per container life)`,
    );
  }
} finally {
  for (const name of containers) await docker(['rm', '-f', name]).catch(() => undefined);
  // The containers are normally gone already; a network that will not go is a leftover the reader must hear of.
  for (const net of made) {
    // removeNetwork names Docker 20.10's lost endpoint count when that is why, and repairs it where allowed.
    await removeNetwork(net).catch((err: unknown) => console.error(`bench: could not remove network ${net}, remove it by hand: ${(err as Error).message}`));
  }
  await plugin.dispose();
  await unmountTmpfs(runDir);
}

// The run dir where the plugin expects it (a tmpfs), then on this machine's disk, where doctor warns.
for (const endpointsOn of ['tmpfs', 'disk'] as const) {
  const scale = await scaleBench(endpointsOn);
  console.log(`\n## plugin API without dockerd (fake CNI, network records on disk, endpoint records on ${endpointsOn === 'tmpfs' ? 'a tmpfs run dir' : 'the disk'})`);
  for (const [size, ms] of Object.entries(scale.perSize)) console.log(`- endpoint life at ${size} endpoints: ${fmt(ms)} ms median`);
  console.log(`- ratio 1000/10: ${(scale.perSize[1000]! / scale.perSize[10]!).toFixed(3)}`);
  console.log(`- startup with 1000 persisted endpoints: ${fmt(scale.startupMs)} ms`);
}

// One entry per engine: a run on another engine adds to the file, a rerun replaces its own entry.
const benchDir = dirname(fileURLToPath(import.meta.url));
const samplesFile = join(benchDir, 'samples.json');
const earlier = await readFile(samplesFile, 'utf8').then((text) => JSON.parse(text) as EngineSamples[], () => []);
const all = [...earlier.filter((entry) => entry.engine !== samples.engine), samples].sort((a, b) => a.engine.localeCompare(b.engine));
await writeFile(samplesFile, `${JSON.stringify(all, null, 1)}\n`);
const png = join(benchDir, 'docker-run.png');
await plotSamples(all, png);
console.log(`\nsamples: ${samplesFile} (${all.map((entry) => entry.engine).join(', ')}); plot: ${png}`);

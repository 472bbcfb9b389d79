/**
 * Where the endpoint records are kept, compared within one run (issue 14): two plugins, identical but for the run
 * dir, one on a tmpfs (as /run is on systemd hosts) and one on disk (/var/tmp, the file system that held them in
 * <stateDir>/endpoints before). Each gets a network with Docker's IPAM; `docker run --rm` alternates between them
 * (order flipped every round), n each. Prints, per plugin, the docker run median and the plugin's own time per
 * container life from its log: the journal writes are the only difference. Root, dockerd running.
 *   node --import tsx bench/journal-ab.ts [n]
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { isOnTmpfs } from '../src/util/dir.js';
import { docker, ensureTestImage, freeSubnet, startPlugin, TEST_IMAGE, uniqueName, type PluginHandle } from '../test/helpers/engine.js';
import { ownTimeOf } from './plugin-log.js';
import { fmt, median, p90 } from './stats.js';
import { mountTmpfs, unmountTmpfs } from './tmpfs.js';

const n = Math.min(Math.max(Number(process.argv[2] ?? 30) || 30, 3), 200);

interface Variant {
  name: string;
  runDir: string;
  plugin?: PluginHandle;
  network?: string;
  logStart: number;
  times: number[];
}

await ensureTestImage();
const engine = await docker(['version', '--format', '{{.Server.Version}}']);
console.log(`# dockerd ${engine}, n=${n} per variant, Docker's IPAM, run dir on tmpfs vs on disk\n`);
const diskRunDir = await mkdtemp('/var/tmp/dcni-bench-disk-run-');
if ((await isOnTmpfs(diskRunDir)) !== false) throw new Error(`${diskRunDir} is on a tmpfs here (or cannot be told): no disk variant to compare`);
const variants: Variant[] = [
  { name: 'tmpfs', runDir: await mountTmpfs(), logStart: 0, times: [] },
  { name: 'disk', runDir: diskRunDir, logStart: 0, times: [] },
];
try {
  for (const v of variants) {
    v.plugin = await startPlugin({ runDir: v.runDir });
    v.network = uniqueName(`bench-ab-${v.name}`);
    await docker(['network', 'create', '-d', v.plugin.driver, '--subnet', await freeSubnet(), v.network]);
  }
  const run = async (v: Variant): Promise<number> => {
    const start = performance.now();
    await docker(['run', '--rm', '--network', v.network!, TEST_IMAGE, 'true']);
    return performance.now() - start;
  };
  for (const v of variants) await run(v); // warm caches
  for (const v of variants) v.logStart = v.plugin?.logFile ? statSync(v.plugin.logFile).size : 0;
  for (let i = 0; i < n; i++) {
    const order = i % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) v.times.push(await run(v));
  }
  console.log('| run dir | docker run median (p90) ms | CreateEndpoint | DeleteEndpoint | own per container life |\n|---|---|---|---|---|');
  for (const v of variants) {
    const own = ownTimeOf(v.plugin?.logFile ? readFileSync(v.plugin.logFile).subarray(v.logStart).toString('utf8') : '');
    const call = (name: string): string => fmt(own.calls[`NetworkDriver.${name}`]?.median ?? NaN);
    console.log(`| ${v.name} | ${fmt(median(v.times))} (${fmt(p90(v.times))}) | ${call('CreateEndpoint')} | ${call('DeleteEndpoint')} | ${fmt(own.lifeOwn)} |`);
  }
  console.log(`\ndocker run ratio, tmpfs / disk: ${(median(variants[0]!.times) / median(variants[1]!.times)).toFixed(3)}`);
} finally {
  for (const v of variants) {
    if (v.network) await docker(['network', 'rm', v.network]).catch((err: unknown) => console.error(`bench: could not remove network ${v.network}: ${(err as Error).message}`));
    await v.plugin?.dispose();
  }
  await unmountTmpfs(variants[0]!.runDir);
  await rm(diskRunDir, { recursive: true, force: true });
}

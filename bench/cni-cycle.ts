/*
 * CNI runtime overhead: N bridge + host-local ADD+DEL cycles through
 * CniRuntime vs. the same plugin binary run by hand with execa (same stdin,
 * same env, same netns), interleaved in one run.
 *
 *   node --import tsx bench/cni-cycle.ts [N]        (default 30, at most 200; needs root)
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CniRuntime } from '../src/cni/runtime.js';
import type { NetConfList, RuntimeConf } from '../src/cni/types.js';

const BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
const requested = Number(process.argv[2] ?? process.env.CNI_BENCH_CYCLES ?? 30);
const cycles = Math.min(200, Math.max(1, Number.isInteger(requested) ? requested : 30));

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const fmt = (ms: number): string => ms.toFixed(2).padStart(8);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('cni-cycle: needs root (creates a netns and a bridge); skipped');
    return;
  }
  const bridgeBinary = (await Promise.all(BIN_DIRS.map(async (d) => ((await execa('test', ['-x', `${d}/bridge`], { reject: false })).exitCode === 0 ? d : undefined)))).find(Boolean);
  if (!bridgeBinary) {
    console.error('cni-cycle: CNI bridge plugin not found; skipped');
    return;
  }
  const suffix = randomBytes(3).toString('hex');
  const netns = `cnibench-${suffix}`;
  const netnsPath = `/run/netns/${netns}`;
  const bridge = `cnibn${suffix}`;
  const work = await mkdtemp(join(tmpdir(), 'cni-bench-'));
  const subnet = `10.232.${240 + (parseInt(suffix.slice(0, 2), 16) % 10)}.0/24`;
  const list: NetConfList = {
    cniVersion: '1.0.0',
    name: `cnibench-${suffix}`,
    plugins: [{ type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', dataDir: join(work, 'host-local'), ranges: [[{ subnet }]] } }],
  };
  const plugin = list.plugins[0] as NetConfList['plugins'][number];
  const runtime = new CniRuntime({ binDirs: BIN_DIRS, cacheDir: join(work, 'cache') });
  const bridgePath = `${bridgeBinary}/bridge`;

  const rawRun = async (verb: 'ADD' | 'DEL', containerId: string, prevResult?: unknown): Promise<string> => {
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prevResult) conf.prevResult = prevResult;
    const { stdout } = await execa(bridgePath, [], {
      input: JSON.stringify(conf),
      extendEnv: false,
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: verb,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netnsPath,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: '',
        CNI_PATH: BIN_DIRS.join(':'),
      },
    });
    return stdout;
  };

  const lib = { add: [] as number[], del: [] as number[], cycle: [] as number[] };
  const raw = { add: [] as number[], del: [] as number[], cycle: [] as number[] };
  try {
    await execa('ip', ['netns', 'add', netns]);
    const warmups = 2;
    for (let i = 0; i < cycles + warmups; i++) {
      const record = i >= warmups;
      // Alternate which side goes first so drift hits both equally.
      const order = i % 2 === 0 ? ['lib', 'raw'] : ['raw', 'lib'];
      for (const side of order) {
        const containerId = `bench-${suffix}-${side}-${i}`;
        if (side === 'lib') {
          const rt: RuntimeConf = { containerId, netns: netnsPath, ifName: 'eth0' };
          const t0 = performance.now();
          await runtime.addNetworkList(list, rt);
          const t1 = performance.now();
          await runtime.delNetworkList(list, rt);
          const t2 = performance.now();
          if (record) {
            lib.add.push(t1 - t0);
            lib.del.push(t2 - t1);
            lib.cycle.push(t2 - t0);
          }
        } else {
          const t0 = performance.now();
          const result = JSON.parse(await rawRun('ADD', containerId)) as unknown;
          const t1 = performance.now();
          await rawRun('DEL', containerId, result);
          const t2 = performance.now();
          if (record) {
            raw.add.push(t1 - t0);
            raw.del.push(t2 - t1);
            raw.cycle.push(t2 - t0);
          }
        }
      }
    }
  } finally {
    await execa('ip', ['netns', 'del', netns], { reject: false });
    await execa('ip', ['link', 'del', bridge], { reject: false });
    await rm(work, { recursive: true, force: true });
  }

  console.log(`bridge+host-local ADD+DEL, ${cycles} cycles each (medians, ms)`);
  console.log('              ADD      DEL    cycle');
  console.log(`library  ${fmt(median(lib.add))} ${fmt(median(lib.del))} ${fmt(median(lib.cycle))}`);
  console.log(`by hand  ${fmt(median(raw.add))} ${fmt(median(raw.del))} ${fmt(median(raw.cycle))}`);
  const ratio = median(lib.cycle) / median(raw.cycle);
  console.log(`ratio library/by-hand (cycle): ${ratio.toFixed(3)}  (overhead ${((ratio - 1) * 100).toFixed(1)}%)`);
}

await main();

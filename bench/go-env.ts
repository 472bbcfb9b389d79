/**
 * What the Go runtime's own settings cost a CNI plugin run: N bridge + static ADD+DEL cycles, run by hand with
 * the plain env and with GOMAXPROCS=1 and/or GOGC=off (bridge passes its env on to static), interleaved, with
 * the CPU the plugins used (children's utime+stime, reaped) and the wall time per cycle.
 * Root; makes one netns and one bridge of its own, in 10.232.251.0/24, and removes them.
 *   node --import tsx bench/go-env.ts [N]        (default 40, at most 200)
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { cpuTimesOf } from './cpu-times.js';
import { fmt, median } from './stats.js';

const cycles = Math.min(Math.max(Number(process.argv[2] ?? 40) || 40, 1), 200);
const PLUGIN_DIR = process.env.CNI_PATH?.split(':')[0] ?? '/usr/lib/cni';
const suffix = randomBytes(3).toString('hex');
const netns = `goenv-${suffix}`;
const bridge = `goenv${suffix}`;
const SUBNET = '10.232.251';

const conf = (host: number): string =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: netns,
    type: 'bridge',
    bridge,
    isGateway: true,
    hairpinMode: true,
    ipam: { type: 'static', addresses: [{ address: `${SUBNET}.${host}/24`, gateway: `${SUBNET}.1` }] },
  });

/** CPU ms of this process's reaped children: the plugins it ran. */
const reapedChildrenCpuMs = (): number => cpuTimesOf('self').reaped;

function runBridge(verb: 'ADD' | 'DEL', containerId: string, host: number, extraEnv: Record<string, string>): Promise<void> {
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: verb, CNI_CONTAINERID: containerId, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: 'eth0', CNI_PATH: PLUGIN_DIR, ...extraEnv };
  return new Promise((resolve, reject) => {
    const child = spawn(`${PLUGIN_DIR}/bridge`, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bridge ${verb} exited ${code}: ${output}`))));
    child.stdin.end(conf(host));
  });
}

const variants: Record<string, Record<string, string>> = { plain: {}, 'GOMAXPROCS=1': { GOMAXPROCS: '1' }, 'GOGC=off': { GOGC: 'off' }, both: { GOMAXPROCS: '1', GOGC: 'off' } };
const results = Object.fromEntries(Object.keys(variants).map((name) => [name, { cpuMs: 0, wallMs: [] as number[] }]));
execFileSync('ip', ['netns', 'add', netns]);
try {
  await runBridge('ADD', 'warmup', 2, {});
  await runBridge('DEL', 'warmup', 2, {});
  for (let i = 0; i < cycles; i++) {
    for (const [name, env] of Object.entries(variants)) {
      const [cpuBefore, start] = [reapedChildrenCpuMs(), performance.now()];
      const host = 10 + (i % 200);
      const cycleName = name.replace(/[^A-Za-z0-9]/g, '');
      await runBridge('ADD', `c${i}-${cycleName}`, host, env);
      await runBridge('DEL', `c${i}-${cycleName}`, host, env);
      results[name]!.wallMs.push(performance.now() - start);
      results[name]!.cpuMs += reapedChildrenCpuMs() - cpuBefore;
    }
  }
} finally {
  execFileSync('ip', ['netns', 'del', netns]);
  try {
    execFileSync('ip', ['link', 'del', bridge]);
  } catch {
    // never made
  }
}
console.log(`bridge + static ADD+DEL from ${PLUGIN_DIR}, ${cycles} cycles per variant, interleaved`);
console.log('| env | plugin CPU per cycle (ms) | wall median per cycle (ms) |\n|---|---|---|');
for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${fmt(r.cpuMs / cycles)} | ${fmt(median(r.wallMs))} |`);

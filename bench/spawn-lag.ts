/**
 * What a spawn costs the event loop, started from the event loop's thread (as the plugin does) against from a
 * worker thread (issue 14: in a burst of 50 container starts, a CPU profile of the plugin had its event loop inside
 * ChildProcess.spawn for 6.4 s of 22 s busy; libuv forks on Linux and waits on the calling thread until the child
 * has exec'd). Rounds of `count` runs of a CNI plugin binary (`bridge` with no config: it starts and fails at
 * once), 10 at a time, from a process grown to about the plugin's RSS, each way in turn; a 1 ms timer measures how
 * late the event loop gets to it. The worker thread was tried in the plugin and not kept: bench/RESULTS.md.
 * Starts nothing but those processes. No root needed.
 *   node --import tsx bench/spawn-lag.ts [count] [rounds]
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { spawnCapture } from '../src/util/spawn-capture.js';
import { fmt, median, p90 } from './stats.js';

type Run = (file: string) => Promise<unknown>;

/** A worker thread that starts each program it is sent and answers when it has ended. */
class SpawningThread {
  private readonly worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
parentPort.on('message', ({ id, file }) => {
  const child = spawn(file, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout.resume();
  child.stderr.resume();
  child.stdin.on('error', () => undefined);
  child.stdin.end();
  child.on('close', (code) => parentPort.postMessage({ id, code }));
});`,
    { eval: true },
  );
  private nextId = 0;
  private readonly waiting = new Map<number, () => void>();

  constructor() {
    this.worker.on('message', ({ id }: { id: number }) => {
      this.waiting.get(id)?.();
      this.waiting.delete(id);
    });
  }

  readonly run: Run = (file) =>
    new Promise<void>((resolve) => {
      const id = ++this.nextId;
      this.waiting.set(id, resolve);
      this.worker.postMessage({ id, file });
    });

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

const count = Math.min(Math.max(Number(process.argv[2] ?? 200) || 200, 10), 1000);
const rounds = Math.min(Math.max(Number(process.argv[3] ?? 3) || 3, 1), 10);
const CONCURRENCY = 10;
const program = ['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'].find((path) => existsSync(path)) ?? 'true';

// The plugin runs at 70-85 MB RSS, and a fork copies the page tables of all of it: this grows the bench to about that (tsx included).
const ballast = Array.from({ length: 100 }, (_, i) => Buffer.alloc(100_000, i));
const objects = Array.from({ length: 50_000 }, (_, i) => ({ i, name: `object-${i}` }));

async function measure(run: Run): Promise<{ perSpawn: number; lags: number[] }> {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(now - last - 1);
    last = now;
  }, 1);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) await run(program);
    }),
  );
  const elapsed = performance.now() - started;
  clearInterval(timer);
  return { perSpawn: elapsed / count, lags };
}

const thread = new SpawningThread();
await thread.run('true'); // its start is paid once per process, not per spawn
const fromLoop: Run = (file) => spawnCapture(file, [], { timeoutMs: 10_000 });
const results: Record<'calling' | 'thread', { perSpawn: number[]; lagP50: number[]; lagP90: number[]; lagMax: number[] }> = {
  calling: { perSpawn: [], lagP50: [], lagP90: [], lagMax: [] },
  thread: { perSpawn: [], lagP50: [], lagP90: [], lagMax: [] },
};
for (let round = 0; round < rounds; round++) {
  for (const [how, run] of [['calling', fromLoop], ['thread', thread.run]] as const) {
    const { perSpawn, lags } = await measure(run);
    results[how].perSpawn.push(perSpawn);
    results[how].lagP50.push(median(lags));
    results[how].lagP90.push(p90(lags));
    results[how].lagMax.push(Math.max(...lags));
  }
}
await thread.close();
const rss = process.memoryUsage().rss / 1e6;
console.log(`# ${count} runs of ${program}, ${CONCURRENCY} at a time, x ${rounds} rounds, from a ${fmt(rss)} MB process (medians of the rounds)`);
console.log('| spawned from | ms per run | event loop late by, p50 | p90 | max |\n|---|---|---|---|---|');
for (const [how, r] of Object.entries(results)) {
  const label = how === 'calling' ? 'the event loop\'s thread (spawnCapture, as the plugin)' : 'a worker thread';
  console.log(`| ${label} | ${fmt(median(r.perSpawn))} | ${fmt(median(r.lagP50))} | ${fmt(median(r.lagP90))} | ${fmt(median(r.lagMax))} |`);
}
void ballast.length;
void objects.length;

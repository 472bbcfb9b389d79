/**
 * What one link move out of a staging netns costs, and how much of it is the `ip` spawn rather than the kernel
 * (issue 14, lever 1: a long-lived `ip -batch` worker instead of one `ip -n` per move). Rounds of `count` veth
 * pairs made in a private netns, then moved into the plugin's netns back to back: once by one `ip -n` spawn each,
 * as the plugin does (spawnCapture, its executor), once by one `ip -n … -batch -` process for all of them.
 * Makes nothing but links in its own netns, and removes all of it. Root.
 *   node --import tsx bench/move-cost.ts [count] [rounds]
 */
import { spawnCapture } from '../src/util/spawn-capture.js';
import { fmt, median } from './stats.js';

const count = Math.min(Math.max(Number(process.argv[2] ?? 20) || 20, 2), 100);
const rounds = Math.min(Math.max(Number(process.argv[3] ?? 3) || 3, 1), 10);
const netns = `dcni-bench-move-${process.pid}`;
const inside = (i: number): string => `bmv${i}`;
const moved = (i: number): string => `bmh${process.pid % 100_000}x${i}`;

async function ip(args: string[], input?: string): Promise<void> {
  const r = await spawnCapture('ip', args, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.toString().trim() || `exit ${String(r.exitCode)}`}`);
}

/** count veth pairs in the private netns, one batch; the moved ends are deleted after each variant. */
const makePairs = (): Promise<void> =>
  ip(['-n', netns, '-batch', '-'], Array.from({ length: count }, (_, i) => `link add ${inside(i)} type veth peer name ${inside(i)}p\n`).join(''));
const deleteMoved = (): Promise<void> => ip(['-batch', '-'], Array.from({ length: count }, (_, i) => `link del ${moved(i)}\n`).join(''));
const moveLine = (i: number): string => `link set dev ${inside(i)} netns ${process.pid} name ${moved(i)}`;

const perMove: Record<'spawned' | 'batched', number[]> = { spawned: [], batched: [] };
await ip(['netns', 'add', netns]);
try {
  for (let round = 0; round < rounds; round++) {
    await makePairs();
    let start = performance.now();
    for (let i = 0; i < count; i++) await ip(['-n', netns, ...moveLine(i).split(' ')]);
    perMove.spawned.push((performance.now() - start) / count);
    await deleteMoved();
    await makePairs();
    start = performance.now();
    await ip(['-n', netns, '-batch', '-'], Array.from({ length: count }, (_, i) => `${moveLine(i)}\n`).join(''));
    perMove.batched.push((performance.now() - start) / count);
    await deleteMoved();
  }
} finally {
  // After a failure part way, some moved ends may be left in our netns; -force goes past the ones that are not.
  await ip(['-force', '-batch', '-'], Array.from({ length: count }, (_, i) => `link del ${moved(i)}\n`).join('')).catch(() => undefined);
  await ip(['netns', 'del', netns]).catch((err: unknown) => console.error(`cleanup: ${(err as Error).message}`));
}
const spawned = median(perMove.spawned);
const batched = median(perMove.batched);
console.log(`# one link move out of a netns, ${count} back to back x ${rounds} rounds, median of the rounds' means (ms)`);
console.log('| how | per move | rounds |\n|---|---|---|');
console.log(`| one \`ip -n\` spawn per move (the plugin today) | ${fmt(spawned)} | ${perMove.spawned.map(fmt).join(', ')} |`);
console.log(`| one \`ip -n -batch\` process for all | ${fmt(batched)} | ${perMove.batched.map(fmt).join(', ')} |`);
console.log(`spawn and netns switch per move: ${fmt(spawned - batched)} ms; the kernel's move: ${fmt(batched)} ms`);

/**
 * Counts the kernel's network-namespace moves (`__dev_change_net_namespace`) while `work` runs, by the
 * process that made them, with how long each waited in its `rcu_barrier()`. A move holds the rtnl lock
 * through that wait, so moves are the one cost of a container start no plugin can overlap or batch.
 * Uses `perf` (scheduler tracepoints with kernel stacks); without it the count is skipped.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface NetnsMoves {
  /** Moves per process name, e.g. `{ ip: 1, dockerd: 1 }`. */
  byProcess: Record<string, number>;
  /** Each move's wait in rcu_barrier(), ms. */
  barrierMs: number[];
}

export async function perfAvailable(): Promise<boolean> {
  try {
    await execFileAsync('perf', ['--version']);
    return true;
  } catch {
    return false;
  }
}

interface TraceEvent {
  comm: string;
  time: number;
  name: string;
  fields: string;
  stack: string;
}

function parseEvents(script: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const block of script.split(/\n\s*\n/)) {
    const [head = '', ...stack] = block.trim().split('\n');
    const m = /^(.+?)\s+\d+\s+\[\d+\]\s+([0-9.]+):\s+([\w:]+):\s*(.*)$/.exec(head.trim());
    if (m) events.push({ comm: m[1]!.trim(), time: Number(m[2]), name: m[3]!, fields: m[4]!, stack: stack.join('\n') });
  }
  return events;
}

/** Runs `work` with system-wide scheduler tracing and returns the moves seen, or undefined without perf. */
export async function countNetnsMoves(work: () => Promise<unknown>): Promise<NetnsMoves | undefined> {
  if (!(await perfAvailable())) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'bench-moves-'));
  const data = join(dir, 'perf.data');
  try {
    const perf = spawn('perf', ['record', '-q', '-a', '-g', '-e', 'sched:sched_switch', '-e', 'sched:sched_wakeup', '-o', data], { stdio: 'ignore' });
    const exited = new Promise((resolve) => perf.on('close', resolve));
    // perf needs a moment to attach to every CPU before the work starts.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      await work();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      perf.kill('SIGINT');
      await exited;
    }
    const { stdout } = await execFileAsync('perf', ['script', '-i', data], { maxBuffer: 512 * 1024 * 1024 });
    const events = parseEvents(stdout);
    const byProcess: Record<string, number> = {};
    const barrierMs: number[] = [];
    events.forEach((event, index) => {
      if (event.name !== 'sched:sched_switch' || !/rcu_barrier/.test(event.stack) || !/__dev_change_net_namespace/.test(event.stack)) return;
      byProcess[event.comm] = (byProcess[event.comm] ?? 0) + 1;
      const pid = /prev_pid=(\d+)/.exec(event.fields)?.[1];
      const wakeup = events.slice(index + 1).find((e) => e.name === 'sched:sched_wakeup' && new RegExp(`\\bpid=${pid}\\b`).test(e.fields));
      if (wakeup) barrierMs.push((wakeup.time - event.time) * 1000);
    });
    return { byProcess, barrierMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Counts the kernel's network-namespace moves (`__dev_change_net_namespace`) while `work` runs, by the
 * process that made them: each one sleeps in `rcu_barrier()` with the rtnl lock held, so moves are the one
 * cost of a container start no plugin can overlap or batch. (What one costs is the plugin's `move` phase.)
 * Uses `perf` (the sched_switch tracepoint with kernel stacks). Check perfAvailable first.
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
  name: string;
  stack: string;
}

function parseEvents(script: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const block of script.split(/\n\s*\n/)) {
    const [head = '', ...stack] = block.trim().split('\n');
    const m = /^(.+?)\s+\d+\s+\[\d+\]\s+([0-9.]+):\s+([\w:]+):\s*(.*)$/.exec(head.trim());
    if (m) events.push({ comm: m[1]!.trim(), name: m[3]!, stack: stack.join('\n') });
  }
  return events;
}

/** Runs `work` with system-wide scheduler tracing and returns the moves seen (check perfAvailable first). */
export async function countNetnsMoves(work: () => Promise<unknown>): Promise<NetnsMoves> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-moves-'));
  const data = join(dir, 'perf.data');
  try {
    const perf = spawn('perf', ['record', '-q', '-a', '-g', '-e', 'sched:sched_switch', '-o', data], { stdio: 'ignore' });
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
    for (const event of events) {
      if (event.name !== 'sched:sched_switch' || !/rcu_barrier/.test(event.stack) || !/__dev_change_net_namespace/.test(event.stack)) continue;
      byProcess[event.comm] = (byProcess[event.comm] ?? 0) + 1;
    }
    return { byProcess };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Reading processes back from /proc: whether they live, how they were
 * started, and which of docker-cni's staging namespaces outlived theirs.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { sleep } from './common.js';

/** A command line to start a process again exactly as it had been started. */
export interface CommandLine {
  exe: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

export function readlinkOrUndefined(path: string): string | undefined {
  try {
    // " (deleted)" is appended when the binary was replaced (an upgrade) after the start.
    return readlinkSync(path).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

/** How a running process was started, read back from /proc. */
export function commandLineOf(pid: number): CommandLine {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.length > 0);
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return {
    exe: readlinkOrUndefined(`/proc/${pid}/exe`) ?? argv[0] ?? 'dockerd',
    argv,
    cwd: readlinkOrUndefined(`/proc/${pid}/cwd`) ?? '/',
    env,
  };
}

/** The value of `--flag X` or `--flag=X` in argv. */
export function flagValue(argv: readonly string[], ...names: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    for (const name of names) {
      if (arg === name) return argv[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

/** True while the process exists (a zombie included). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function isZombie(pid: number): boolean {
  try {
    return /\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Exists and has not exited: a zombie has exited, only its parent's wait is missing. */
export const pidAlive = (pid: number): boolean => pidExists(pid) && !isZombie(pid);

/** PIDs of every process whose /proc/<pid>/comm is `comm`. */
export function pidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch {
      // process gone
    }
  }
  return pids;
}

/** SIGTERM (graceful), then SIGKILL if the process has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, exit: Promise<void> | undefined, graceMs = 10_000): Promise<void> {
  child.kill('SIGTERM');
  const exited = await Promise.race([exit?.then(() => true), sleep(graceMs).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await exit;
  }
}

/** docker-cni's staging namespaces are named dcni-stage-<pid of the plugin process>-<n> (src/host/staging-netns.ts). */
const STAGING_NETNS = /^dcni-stage-(\d+)-\d+$/;

/** The plugin process a staging namespace belongs to, or undefined when the name is not a staging namespace's. */
export function stagingNetnsOwner(name: string): number | undefined {
  const pid = Number(STAGING_NETNS.exec(name)?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Staging namespaces whose creating process is gone: a restart or a graceful stop must have removed them. */
export function orphanStagingNetns(): string[] {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  return names.filter((name) => {
    const pid = stagingNetnsOwner(name);
    return pid !== undefined && !pidExists(pid);
  });
}

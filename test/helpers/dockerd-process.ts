/**
 * Starting a dockerd again from a command line read back from /proc, and the
 * containerd shims a dockerd leaves behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { flagValue, pidAlive, pidsNamed, readlinkOrUndefined, type CommandLine } from './processes.js';

export const HOST_DOCKER_SOCKET = '/var/run/docker.sock';
export const HOST_DOCKER_PIDFILE = '/var/run/docker.pid';

/**
 * The dockerd serving `socket`: the process its pidfile names when alive, else
 * the dockerd in /proc whose -H names the socket (or, for the host's default
 * socket, that has no -H).
 */
export function dockerdPid(socket: string, pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) return pid;
  } catch {
    // no pidfile
  }
  for (const pid of pidsNamed('dockerd')) {
    try {
      const host = flagValue(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'), '-H', '--host');
      if (host === `unix://${socket}` || (host === undefined && socket === HOST_DOCKER_SOCKET)) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

/** The file a process writes its stdout to, when that is a regular file (not a pipe, tty or /dev/null). */
export function outputFileOf(pid: number): string | undefined {
  const target = readlinkOrUndefined(`/proc/${pid}/fd/1`);
  return target?.startsWith('/') && !target.startsWith('/dev/') ? target : undefined;
}

/** The binary the host's dockerd runs, else the Debian path. */
export function hostDockerdBinary(): string {
  const pid = dockerdPid(HOST_DOCKER_SOCKET, HOST_DOCKER_PIDFILE);
  return (pid !== undefined ? readlinkOrUndefined(`/proc/${pid}/exe`) : undefined) ?? '/usr/sbin/dockerd';
}

/**
 * Starts a dockerd command line again, detached into a session of its own
 * (setsid, via spawn's `detached`) and appending to `logFile`. This process
 * stays its parent, so a killed daemon is reaped here and not left a zombie.
 * dockerd refuses to start while its pidfile names a process that exists, and
 * waits forever for "its" containerd while containerd's pidfile does; a zombie
 * counts as existing, and on a host whose PID 1 does not reap orphans the
 * containerd of a killed dockerd stays one. So both stale pidfiles go first.
 */
export function spawnDaemon(cmd: CommandLine, logFile: string, pidFile = flagValue(cmd.argv, '-p', '--pidfile') ?? HOST_DOCKER_PIDFILE): ChildProcess {
  const execRoot = flagValue(cmd.argv, '--exec-root') ?? '/var/run/docker';
  for (const file of [pidFile, join(execRoot, 'containerd', 'containerd.pid')]) {
    let pid: number;
    try {
      pid = Number(readFileSync(file, 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) rmSync(file, { force: true });
  }
  const logFd = openSync(logFile, 'a');
  const child = spawn(cmd.exe, cmd.argv.slice(1), {
    argv0: cmd.argv[0] ?? cmd.exe,
    cwd: cmd.cwd,
    env: cmd.env,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  child.unref();
  child.once('error', () => undefined);
  return child;
}

export interface Shim {
  pid: number;
  /** The container ID the shim serves (its -id argument). */
  containerId: string;
}

/** containerd shims whose command line names `marker` (e.g. a daemon's exec-root). */
export function shimsOf(marker: string): Shim[] {
  const shims: Shim[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!(argv[0] ?? '').includes('containerd-shim') || !argv.some((arg) => arg.includes(marker))) continue;
    shims.push({ pid: Number(entry), containerId: argv[argv.indexOf('-id') + 1] ?? '' });
  }
  return shims;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills the containerd shims (and the container processes under them) whose command line names `marker`. */
export async function killShimsOf(marker: string, only?: ReadonlySet<number>): Promise<void> {
  const shims = shimsOf(marker)
    .map((shim) => shim.pid)
    .filter((pid) => !only || only.has(pid));
  for (const shim of shims) {
    const children = await execa('pgrep', ['-P', String(shim)], { reject: false });
    for (const child of String(children.stdout).split('\n').filter(Boolean)) killQuietly(Number(child));
    killQuietly(shim);
  }
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

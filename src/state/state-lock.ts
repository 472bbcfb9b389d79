/**
 * One docker-cni process per state dir. A restarted instance must not load
 * records while the old one is still finishing in-flight calls (it would miss
 * what they write, and the old one's socket close would unlink the new one's
 * socket), so it waits for the lock, then loads, then listens.
 *
 * Node has no flock(2); the lock is a file created with O_EXCL holding the
 * owner's PID and that process's start time (field 22 of /proc/<pid>/stat).
 * The pair survives PID reuse and PID namespaces (a managed plugin is PID 1-ish
 * in every incarnation): a lock whose owner is gone, or whose PID now belongs
 * to another process, is stale and taken over.
 */
import { readFile, rename, unlink, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import type { Logger } from '../log.js';

export const STATE_LOCK_FILE = '.lock';
const POLL_MS = 50;

export interface StateLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Owner {
  pid: number;
  start: string;
}

export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19]; // field 22 overall
  } catch {
    return undefined;
  }
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'pid' in parsed && 'start' in parsed) {
      const { pid, start } = parsed;
      if (typeof pid === 'number' && typeof start === 'string') return { pid, start };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  }
  // Unreadable or half-written by a process killed mid-write: nobody can own it.
  return { pid: 0, start: '' };
}

async function ownerAlive(owner: Owner): Promise<boolean> {
  if (owner.pid <= 0 || owner.pid === process.pid) return false;
  return (await processStartTime(owner.pid)) === owner.start;
}

/**
 * Waits up to waitMs for the lock on stateDir. Throws CONFLICT naming the
 * holder when it stays held: a second live instance on one state dir is a
 * configuration error, not something to wait out forever.
 */
export async function acquireStateLock(stateDir: string, logger: Logger, waitMs = 60_000): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, STATE_LOCK_FILE);
  const me: Owner = { pid: process.pid, start: (await processStartTime(process.pid)) ?? '' };
  const deadline = Date.now() + waitMs;
  let announced = false;
  for (;;) {
    try {
      await writeFile(path, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PluginError('STATE_FAILED', `cannot create ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const owner = await readOwner(path);
    if (owner && !(await ownerAlive(owner))) {
      // Take over through a rename so two waiters cannot both delete and both create.
      const aside = `${path}.stale.${process.pid}`;
      await rename(path, aside).then(() => unlink(aside), () => undefined);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new PluginError('CONFLICT', `${stateDir} is locked by docker-cni pid ${owner?.pid ?? '?'} (${path})`);
    }
    if (!announced) {
      logger.info({ lock: path, holder: owner?.pid }, 'waiting for the previous instance to finish');
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return {
    path,
    release: async () => {
      const owner = await readOwner(path);
      if (owner?.pid === me.pid && owner.start === me.start) await unlink(path).catch(() => undefined);
    },
  };
}

/**
 * Locks each distinct dir in the order given (every instance passes them in the same order, so two never wait on
 * each other). If one stays held, the ones already taken are given back before the CONFLICT is thrown.
 */
export async function acquireStateLocks(dirs: readonly string[], logger: Logger, waitMs = 60_000): Promise<StateLock> {
  const held: StateLock[] = [];
  const releaseAll = async (): Promise<void> => {
    for (const lock of [...held].reverse()) await lock.release();
  };
  try {
    for (const dir of new Set(dirs)) held.push(await acquireStateLock(dir, logger, waitMs));
  } catch (err) {
    await releaseAll();
    throw err;
  }
  return { path: held.map((lock) => lock.path).join(', '), release: releaseAll };
}

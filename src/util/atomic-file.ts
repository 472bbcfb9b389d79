import { closeSync, fchmodSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInDir, createInDirSync, namesIn } from './dir.js';

/** Directories made for state files: private to root. */
const STATE_DIR_MODE = 0o700;

export interface AtomicWriteOptions {
  /** File mode; state is private to root by default. */
  mode?: number;
  /** fsync before the rename (survives power loss, costs a few ms). */
  fsync?: boolean;
}

let writeCounter = 0;
/** `<target>.<digits>`: unique per write in this process, and what removeWriteLeftovers recognises. */
const tempNameOf = (path: string): string => `${path}.${process.pid}${String(++writeCounter % 1e9).padStart(9, '0')}`;

/**
 * Writes a file via temp + rename, so readers never see a half-written file.
 * Written here rather than with write-file-atomic: that library registers
 * signal handlers and does realpath, stat, chown and chmod on every write,
 * which was a fifth of the plugin's CPU per endpoint life (bench/RESULTS.md).
 * The parent directory is made only when the first open finds it missing.
 */
export async function writeFileAtomically(path: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = tempNameOf(path);
  const mode = options.mode ?? 0o600;
  if (!(options.fsync ?? true)) {
    writeWithoutSync(path, temp, data, mode);
    return;
  }
  const file = await createInDir(dirname(path), STATE_DIR_MODE, () => open(temp, 'wx', mode));
  let isOpen = true;
  try {
    // Explicitly, because open's mode is cut by the umask.
    await file.chmod(mode);
    await file.writeFile(data);
    if (options.fsync ?? true) await file.sync();
    isOpen = false;
    await file.close();
    await rename(temp, path);
  } catch (err) {
    if (isOpen) await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Without fsync a write is a few quick calls on a small local file, made synchronously: endpoint records are
 * written on Docker's serialised CreateEndpoint path, and in a burst of container starts the async calls
 * queued behind the busy libuv threadpool for milliseconds each (bench/RESULTS.md).
 */
function writeWithoutSync(path: string, temp: string, data: string | Buffer, mode: number): void {
  let fd: number | undefined;
  try {
    fd = createInDirSync(dirname(path), STATE_DIR_MODE, () => openSync(temp, 'wx', mode));
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomically(path: string, value: unknown, options: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomically(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

/** Reads and parses JSON; returns undefined if the file does not exist. Corrupt JSON throws. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** rm -f: removing something already gone is success. */
export async function removeIfExists(path: string): Promise<void> {
  await rm(path, { force: true });
}

/**
 * Removes the temp files writeFileAtomically leaves next to a target when the
 * process dies mid-write (`<target>.<number>`), for targets `isTarget` names.
 * Only before anything writes to `dir`: an in-flight write's temp file looks
 * the same. Returns the names removed.
 */
export async function removeWriteLeftovers(dir: string, isTarget: (name: string) => boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await namesIn(dir)) {
    const target = /^(.+)\.\d+$/.exec(name)?.[1];
    if (target === undefined || !isTarget(target)) continue;
    await removeIfExists(join(dir, name));
    removed.push(name);
  }
  return removed;
}

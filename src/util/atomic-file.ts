import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { namesIn } from './dir.js';

export interface AtomicWriteOptions {
  /** File mode; state is private to root by default. */
  mode?: number;
  /** fsync before the rename (survives power loss, costs a few ms). */
  fsync?: boolean;
}

/** Writes a file via temp + rename, so readers never see a half-written file. */
export async function writeFileAtomically(path: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, data, { mode: options.mode ?? 0o600, fsync: options.fsync ?? true });
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
 * Removes the temp files write-file-atomic leaves next to a target when the
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

import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

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

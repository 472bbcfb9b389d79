import { mkdirSync } from 'node:fs';
import { mkdir, readdir, statfs } from 'node:fs/promises';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Runs `create` (a file create in `dir`); when the directory is missing it is
 * made (with `mode`) and the create runs once more. Cheaper on the hot path
 * than a mkdir before every create: the directory exists nearly always.
 */
export function createInDirSync<T>(dir: string, mode: number, create: () => T): T {
  try {
    return create();
  } catch (err) {
    if (!isMissing(err)) throw err;
    mkdirSync(dir, { recursive: true, mode });
    return create();
  }
}

/** createInDirSync for an asynchronous create. */
export async function createInDir<T>(dir: string, mode: number, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (err) {
    if (!isMissing(err)) throw err;
    await mkdir(dir, { recursive: true, mode });
    return create();
  }
}

/** The names in a directory; none when the directory does not exist (yet, or any more). */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** tmpfs's f_type (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

/** Whether `path` is on a tmpfs; undefined when it cannot be told (the path is missing or unreadable). */
export async function isOnTmpfs(path: string): Promise<boolean | undefined> {
  return statfs(path).then(
    (stats) => stats.type === TMPFS_MAGIC,
    () => undefined,
  );
}

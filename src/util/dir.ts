import { readdir } from 'node:fs/promises';

/** The names in a directory; none when the directory does not exist (yet, or any more). */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

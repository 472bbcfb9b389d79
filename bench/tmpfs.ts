/** A private tmpfs for a bench plugin's run dir, as /run is on systemd hosts (this CI machine's /run is on disk). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export async function mountTmpfs(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dcni-bench-run-'));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', dir]);
  return dir;
}

export async function unmountTmpfs(dir: string): Promise<void> {
  await execa('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
}

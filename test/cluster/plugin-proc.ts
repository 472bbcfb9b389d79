/**
 * The managed plugin's process on one simulated host, found through that
 * host's own containerd (plugins run as tasks in its "plugins.moby"
 * namespace, task id = plugin id), so a signal can never reach the plugin of
 * another host or of the main machine.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_STAGING_PREFIX, isStagingNetnsOf } from '../../src/names.js';
import { dk, SIM_DIR } from './sim.js';
import { PLUGIN } from './span.js';

const run = promisify(execFile);

/** PID of host i's running plugin task (its entrypoint execs node), or undefined. */
export async function pluginPid(i: number): Promise<number | undefined> {
  const id = await dk(i, ['plugin', 'inspect', '-f', '{{.Id}}', PLUGIN]);
  const socket = join(SIM_DIR, `host${i}`, 'exec', 'containerd', 'containerd.sock');
  const { stdout } = await run('ctr', ['--address', socket, '--namespace', 'plugins.moby', 'task', 'ls'], { timeout: 30_000 });
  for (const line of stdout.split('\n')) {
    const [task, pid, status] = line.trim().split(/\s+/);
    if (task !== id || status !== 'RUNNING') continue;
    const n = Number(pid);
    const cmdline = await readFile(`/proc/${n}/cmdline`, 'utf8').catch(() => '');
    if (Number.isInteger(n) && n > 1 && cmdline.includes('dist/cli/main.js')) return n;
  }
  return undefined;
}

/**
 * Links left in the staging netns of host i's plugin (under /run/netns of its
 * own mount namespace). The plugin keeps idle staging namespaces for reuse, so
 * they may exist; one holding anything but `lo` is a half-made attachment.
 */
export async function stagingLinks(i: number): Promise<string[]> {
  const pid = await pluginPid(i);
  if (pid === undefined) throw new Error(`host${i}: plugin not running`);
  const dir = `/proc/${pid}/root/run/netns`;
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => isStagingNetnsOf(DEFAULT_STAGING_PREFIX, n));
  const found: string[] = [];
  for (const name of names) {
    const { stdout } = await run('nsenter', [`--net=${dir}/${name}`, 'ip', '-br', 'link'], { timeout: 30_000 });
    for (const line of stdout.split('\n')) {
      const link = line.split(/\s+/)[0] ?? '';
      if (link !== '' && link !== 'lo') found.push(`${name}: ${link}`);
    }
  }
  return found;
}

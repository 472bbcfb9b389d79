import type { Command } from 'commander';
import { formatStatus, readStatus } from '../confsync/status.js';
import type { Settings } from '../settings.js';

/** `docker-cni sync status`: what the serving plugin's conf-dir sync last did, and why a network waits. */
export function registerSyncCommand(program: Command, getSettings: () => Settings): void {
  const sync = program.command('sync').description('the conf-dir sync: each conflist becomes a Docker network');
  sync
    .command('status')
    .description('per conflist: ready, created, waiting (and why), skipped, invalid')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const settings = getSettings();
      const status = await readStatus(settings.stateDir);
      if (opts.json) process.stdout.write(`${JSON.stringify(status ?? null, null, 2)}\n`);
      else process.stdout.write(formatStatus(status));
      if (!settings.confSync) process.stderr.write('note: the conf-dir sync is off in these settings (DOCKER_CNI_CONF_SYNC=false)\n');
    });
}

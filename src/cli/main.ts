#!/usr/bin/env node
/**
 * docker-cni command line: `serve` runs the plugin; the other commands inspect
 * and repair state on a host (they never run inside a plugin request).
 */
import { Command, Option } from 'commander';
import { createLogger } from '../log.js';
import { loadSettings, SETTINGS_ENV, type Settings } from '../settings.js';
import { startPlugin } from '../wiring.js';
import { registerCniCommand } from './cni-command.js';
import { registerDoctor } from './doctor/command.js';
import { registerInventoryCommands } from './inventory-commands.js';
import { registerStateCommands } from './state-commands.js';
import { registerVersion } from './version.js';
import { registerWaitReady } from './wait-ready.js';
import { registerSyncCommand } from './sync-command.js';

/** Flags shared by every command, one per setting; each also has an environment variable. */
const SETTING_FLAGS: Array<[keyof Settings, string, string]> = [
  ['socketPath', '--socket <path>', 'plugin socket; its basename is the driver name'],
  ['stateDir', '--state-dir <dir>', "docker-cni's records of networks and pools"],
  ['runDir', '--run-dir <dir>', "docker-cni's endpoint records (on a tmpfs: they go with the links at a reboot)"],
  ['confDir', '--conf-dir <dir>', 'CNI conf dir with user conflists'],
  ['binDirs', '--cni-path <dirs>', 'colon-separated CNI plugin search path'],
  ['cacheDir', '--cache-dir <dir>', 'libcni cache dir (results/ inside)'],
  ['hostLocalDataDir', '--host-local-dir <dir>', "host-local's data dir"],
  ['defaultPoolsV4', '--default-pools-v4 <list>', 'automatic IPv4 pools, e.g. 10.231.0.0/16/24'],
  ['defaultPoolsV6', '--default-pools-v6 <list>', 'automatic IPv6 pools, e.g. fd7d:c11d:4e7::/48/64'],
  ['pluginTimeoutMs', '--plugin-timeout-ms <ms>', 'per CNI plugin call'],
  ['logLevel', '--log-level <level>', 'trace|debug|info|warn|error'],
  ['reconcileIntervalMs', '--reconcile-interval-ms <ms>', 'background reconciliation period (0: startup only)'],
  ['stagingPrefix', '--staging-prefix <name>', 'name prefix of the staging netns under /run/netns'],
  ['metricsListen', '--metrics-listen <addr>', 'serve /metrics and /healthz on unix:/path or 127.0.0.1:<port> (off by default)'],
  ['dockerSocket', '--docker-socket <path>', 'Docker API, for reconciliation, the conf-dir sync and the CLI only'],
  ['confSync', '--conf-sync <bool>', 'make each conflist of the conf dir a Docker network of the same name (true|false)'],
  ['driverName', '--driver-name <name>', "Docker's name for this driver (default: the socket's basename)"],
];

const program = new Command('docker-cni')
  .description('Docker network and IPAM plugin that runs CNI plugins')
  .showHelpAfterError();

for (const [key, flags, description] of SETTING_FLAGS) {
  program.addOption(new Option(flags, `${description} (env ${SETTINGS_ENV[key]})`));
}

function settingsFromFlags(): Settings {
  const opts = program.opts<Record<string, string | undefined>>();
  const overrides: Partial<Record<keyof Settings, string>> = {};
  for (const [key, flags] of SETTING_FLAGS) {
    const flagName = flags.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    const value = opts[flagName];
    if (value !== undefined) overrides[key] = value;
  }
  return loadSettings(process.env, overrides);
}

program
  .command('serve')
  .description('serve the Docker plugin socket in the foreground')
  .action(async () => {
    const settings = settingsFromFlags();
    const logger = createLogger(settings.logLevel);
    const running = await startPlugin(settings, logger);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void running.close().finally(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

registerVersion(program);
registerCniCommand(program, settingsFromFlags);
registerStateCommands(program, settingsFromFlags);
registerInventoryCommands(program, settingsFromFlags);
registerDoctor(program, settingsFromFlags);
registerWaitReady(program, settingsFromFlags);
registerSyncCommand(program, settingsFromFlags);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`docker-cni: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

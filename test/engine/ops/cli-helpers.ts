/** Runs `docker-cni <command>` against the plugin under test (its state, conf and cache dirs, its socket). */
import { execa } from 'execa';
import { PLUGIN_ENTRY, stateFlags, type PluginHandle } from '../../helpers/engine.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function cli(plugin: PluginHandle, args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const dirs = plugin.dirs;
  const flags = [
    ...stateFlags(dirs),
    ...(dirs.confDir ? ['--conf-dir', dirs.confDir] : []),
    ...(plugin.socketPath ? ['--socket', plugin.socketPath] : []),
  ];
  // No TTY here, so no colours either: plain text to match.
  const r = await execa(process.execPath, [PLUGIN_ENTRY, ...flags, ...args], { reject: false, timeout: 120_000, env: { NO_COLOR: '1', ...env } });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function cliJson<T>(plugin: PluginHandle, args: readonly string[]): Promise<T> {
  const r = await cli(plugin, [...args, '--json']);
  if (r.exitCode !== 0) throw new Error(`docker-cni ${args.join(' ')} --json exited ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

import { spawnCapture } from '../util/spawn-capture.js';
import { PluginError } from '../errors.js';

export interface CommandOptions {
  /** Written to the program's stdin (e.g. an iptables-restore script). */
  input?: string;
  timeoutMs?: number;
}

/**
 * Runs a host program (ip, iptables-restore, ...) with an argument array and no
 * shell. A non-zero exit becomes a HOST_FAILED error carrying the command and stderr.
 */
export type CommandRunner = (file: string, args: readonly string[], options?: CommandOptions) => Promise<string>;

export const runCommand: CommandRunner = async (file, args, options = {}) => {
  const result = await spawnCapture(file, args, {
    ...(options.input !== undefined ? { input: options.input } : {}),
    timeoutMs: options.timeoutMs ?? 15_000,
  });
  const stdout = result.stdout.toString('utf8');
  if (result.exitCode !== 0 || result.timedOut || result.spawnError) {
    const why = result.timedOut
      ? 'timed out'
      : (result.stderr.toString('utf8') || stdout || result.spawnError?.message || `exit code ${String(result.exitCode)}`).trim();
    throw new PluginError('HOST_FAILED', `${file} ${args.join(' ')}: ${why}`);
  }
  return stdout;
};

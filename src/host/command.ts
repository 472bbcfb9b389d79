import { execa } from 'execa';
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
  const result = await execa(file, args, {
    input: options.input,
    timeout: options.timeoutMs ?? 15_000,
    killSignal: 'SIGKILL',
    reject: false,
    stripFinalNewline: false,
    encoding: 'utf8',
  });
  if (result.exitCode !== 0 || result.timedOut || result.failed) {
    const why = result.timedOut
      ? 'timed out'
      : (result.stderr || result.stdout || result.shortMessage || `exit code ${String(result.exitCode)}`).trim();
    throw new PluginError('HOST_FAILED', `${file} ${args.join(' ')}: ${why}`);
  }
  return result.stdout;
};

/**
 * Decorators that feed Metrics from the outside of the CNI executor, the
 * host command runner and the reconciler, so those keep no metrics code.
 * The composition root (wiring.ts) applies them.
 */
import { basename } from 'node:path';
import type { PluginExecutor } from '../cni/exec.js';
import { PluginError } from '../errors.js';
import type { CommandRunner } from '../host/command.js';
import type { NetnsCommands } from '../host/netns-ip-worker.js';
import type { GcReport } from '../reconcile/reconciler.js';
import type { Metrics } from './metrics.js';

const errorCode = (err: unknown): string => (err instanceof PluginError ? err.code : 'INTERNAL');

export function instrumentExecutor(inner: PluginExecutor, metrics: Metrics): PluginExecutor {
  return {
    async execPlugin(pluginPath, stdin, env, timeoutMs) {
      const plugin = basename(pluginPath);
      const command = env.CNI_COMMAND ?? 'unknown';
      const started = performance.now();
      try {
        const out = await inner.execPlugin(pluginPath, stdin, env, timeoutMs);
        metrics.cniExec(plugin, command, 'ok', (performance.now() - started) / 1000);
        return out;
      } catch (err) {
        metrics.cniExec(plugin, command, 'error', (performance.now() - started) / 1000);
        metrics.error('cni', errorCode(err));
        throw err;
      }
    },
    findInPath: (pluginType, dirs) => inner.findInPath(pluginType, dirs),
  };
}

export function instrumentCommandRunner(inner: CommandRunner, metrics: Metrics): CommandRunner {
  return async (file, args, options) => {
    try {
      const out = await inner(file, args, options);
      metrics.hostSpawn(basename(file), 'ok');
      return out;
    } catch (err) {
      metrics.hostSpawn(basename(file), 'error');
      throw err;
    }
  };
}

/** Counts the commands of the long-lived `ip -batch` processes, which no spawn counts. */
export function instrumentNetnsCommands(inner: NetnsCommands, metrics: Metrics): NetnsCommands {
  const counted = async (command: Promise<void>): Promise<void> => {
    try {
      await command;
      metrics.batchCommand('ip', 'ok');
    } catch (err) {
      metrics.batchCommand('ip', 'error');
      throw err;
    }
  };
  return {
    run: (netns, args) => counted(inner.run(netns, args)),
    runOnHost: (args) => counted(inner.runOnHost(args)),
  };
}

/** Counts each action of a finished pass. */
export function recordGcReport(report: GcReport, metrics: Metrics): void {
  for (const action of report.actions) {
    metrics.gcAction(action.kind, report.dryRun ? 'would-remove' : action.error ? 'failed' : 'removed');
    if (action.error && !report.dryRun) metrics.error('gc', action.kind);
  }
}

/**
 * `docker-cni cni add|del|check <network> <netns-path>`: runs a network from
 * the CNI conf dir against a namespace, like cnitool, through the same
 * runtime the plugin uses. Handy to try a conflist before `docker network create`.
 */
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfListByName } from '../cni/conf.js';
import { CniRuntime } from '../cni/runtime.js';
import type { RuntimeConf } from '../cni/types.js';
import { CniPluginError, findCause, invalid } from '../errors.js';
import { destination, pino } from 'pino';
import type { Settings } from '../settings.js';

interface CniCommandOptions {
  ifname: string;
  containerId?: string;
  args?: string;
  capabilityArgs?: string;
}

type Verb = 'add' | 'del' | 'check';

/** "K=V;K=V" into ordered pairs; a value may itself hold '='. */
export function parseCniArgs(text: string | undefined): Array<[string, string]> {
  if (!text) return [];
  return text
    .split(';')
    .filter((part) => part !== '')
    .map((part) => {
      const at = part.indexOf('=');
      if (at <= 0) throw invalid(`--args: "${part}" is not K=V`);
      return [part.slice(0, at), part.slice(at + 1)] as [string, string];
    });
}

export function parseCapabilityArgs(text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(`--capability-args: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('--capability-args must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Like cnitool: without --container-id, one derived from the netns path, stable across add and del. */
export function defaultContainerId(netnsPath: string): string {
  return `cnitool-${createHash('sha512').update(netnsPath).digest('hex').slice(0, 20)}`;
}

/** A CNI runtime for one CLI verb: stdout carries the result JSON, so warnings (e.g. a failed rollback) go to stderr. */
function cliRuntime(settings: Settings): CniRuntime {
  return new CniRuntime({
    binDirs: settings.binDirs,
    cacheDir: settings.cacheDir,
    timeoutMs: settings.pluginTimeoutMs,
    logger: pino({ level: settings.logLevel === 'info' ? 'warn' : settings.logLevel, base: { name: 'docker-cni' } }, destination(2)),
  });
}

async function runVerb(verb: Verb, network: string, netnsPath: string, opts: CniCommandOptions, settings: Settings): Promise<void> {
  const runtime = cliRuntime(settings);
  const list = await loadConfListByName(settings.confDir, network);
  const rt: RuntimeConf = {
    containerId: opts.containerId ?? defaultContainerId(netnsPath),
    netns: netnsPath,
    ifName: opts.ifname,
    args: parseCniArgs(opts.args),
    capabilityArgs: parseCapabilityArgs(opts.capabilityArgs),
  };
  if (verb === 'add') {
    const result = await runtime.addNetworkList(list, rt);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (verb === 'del') {
    await runtime.delNetworkList(list, rt);
  } else {
    await runtime.checkNetworkList(list, rt);
  }
}

/**
 * STATUS (spec 1.1.0) of every plugin of a conflist that speaks it: "ready",
 * or the plugin's error (e.g. code 50, not available). Plugins that speak only
 * older versions are not asked.
 */
async function runStatus(network: string, settings: Settings): Promise<void> {
  const runtime = cliRuntime(settings);
  const list = await loadConfListByName(settings.confDir, network);
  await runtime.getStatusNetworkList(list);
  process.stdout.write(`${list.name}: ready\n`);
}

export function registerCniCommand(program: Command, getSettings: () => Settings): void {
  const cni = program.command('cni').description('run a CNI network from the conf dir against a network namespace (like cnitool)');
  cni
    .command('status <network>')
    .description('STATUS of the plugins of the named network that speak CNI spec 1.1.0 (exit 1 when one is not ready)')
    .action(async (network: string) => {
      try {
        await runStatus(network, getSettings());
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const cniError = findCause(err, CniPluginError);
        const code = cniError && !message.includes('CNI code') ? ` [CNI code ${cniError.cniCode}]` : '';
        process.stderr.write(`docker-cni cni status: ${network}: not ready: ${message}${code}\n`);
        process.exitCode = 1;
      }
    });
  for (const verb of ['add', 'del', 'check'] as const) {
    cni
      .command(`${verb} <network> <netns-path>`)
      .description(`${verb.toUpperCase()} the named network for the namespace at <netns-path>`)
      .option('--ifname <name>', 'interface name inside the namespace', 'eth0')
      .option('--container-id <id>', 'container ID (default: derived from the netns path)')
      .option('--args <K=V;K=V>', 'CNI_ARGS')
      .option('--capability-args <json>', 'capability arguments, e.g. {"portMappings":[...]}')
      .action(async (network: string, netnsPath: string, opts: CniCommandOptions) => {
        try {
          await runVerb(verb, network, netnsPath, opts, getSettings());
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const cniError = findCause(err, CniPluginError);
          const code = cniError ? ` [CNI code ${cniError.cniCode}]` : '';
          process.stderr.write(`docker-cni cni ${verb}: ${message}${cniError && !message.includes('CNI code') ? code : ''}\n`);
          process.exitCode = 1;
        }
      });
  }
}

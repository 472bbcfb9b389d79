/**
 * How a plugin binary is run (libcni's Exec): config on stdin, result on
 * stdout, exit status 0 for success, a `{code, msg, details}` error body
 * otherwise. Tests swap in their own PluginExecutor.
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ExecaError, execa } from 'execa';
import { CniPluginError, PluginError } from '../errors.js';
import { CNI_ERROR } from './types.js';
import { validatePluginType } from './validate.js';
import { isRecord } from '../util/is-record.js';
import { truncate } from '../util/text.js';

export interface PluginExecutor {
  /** Resolves with stdout bytes on exit 0. On failure rejects with CniPluginError decoded from stdout JSON,
   *  else stderr JSON, else a CniPluginError code 999 carrying the (truncated) raw output. Timeout kills the
   *  plugin (SIGKILL after timeout) and rejects with PluginError('TIMEOUT', ...). */
  execPlugin(pluginPath: string, stdin: Buffer, env: Record<string, string>, timeoutMs: number): Promise<Buffer>;
  /** First `<dir>/<type>` that is an executable file; NOT_FOUND PluginError listing the dirs otherwise. type is validated (no '/', no '..'). */
  findInPath(pluginType: string, dirs: string[]): Promise<string>;
}

/** Plugins that shell out (portmap and firewall run iptables) need a PATH; nothing else of ours leaks in. */
export const DEFAULT_PLUGIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const RAW_OUTPUT_LIMIT = 1024;
const MAX_PLUGIN_OUTPUT = 16 * 1024 * 1024;

/** Reads a spec error body out of plugin output, if it holds one. */
export function decodeErrorBody(output: Buffer | string): { code: number; msg: string; details?: string } | undefined {
  const text = output.toString().trim();
  if (!text.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || typeof parsed.code !== 'number') return undefined;
  const body: { code: number; msg: string; details?: string } = {
    code: parsed.code,
    msg: typeof parsed.msg === 'string' ? parsed.msg : '',
  };
  if (typeof parsed.details === 'string' && parsed.details !== '') body.details = parsed.details;
  return body;
}

/** Turns a failed run into the CniPluginError the SPEC's error protocol describes. */
export function pluginFailure(
  plugin: string,
  verb: string,
  stdout: Buffer,
  stderr: Buffer,
  howItEnded: string,
): CniPluginError {
  const body = decodeErrorBody(stdout) ?? decodeErrorBody(stderr);
  if (body) return new CniPluginError(plugin, verb, body.code, body.msg, body.details);
  const raw = [stderr.toString().trim(), stdout.toString().trim()].filter(Boolean).join('\n');
  return new CniPluginError(plugin, verb, CNI_ERROR.internal, `plugin ${howItEnded} without a CNI error body`, raw ? truncate(raw, RAW_OUTPUT_LIMIT, { countRest: true }) : undefined);
}

const toBuffer = (value: unknown): Buffer =>
  value instanceof Uint8Array ? Buffer.from(value) : Buffer.from(typeof value === 'string' ? value : '');

/**
 * As libcni does, a plugin inherits the runtime's environment (PATH for
 * iptables, XTABLES_LOCKFILE, proxies for dhcp…), with every CNI_* variable
 * replaced by the explicit ones of this call so nothing stale leaks in.
 */
export function pluginEnvironment(cniEnv: Record<string, string>, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(parent)) {
    if (value !== undefined && !key.startsWith('CNI_')) env[key] = value;
  }
  env.PATH ||= DEFAULT_PLUGIN_PATH;
  return { ...env, ...cniEnv };
}

export class ExecaPluginExecutor implements PluginExecutor {
  async execPlugin(pluginPath: string, stdin: Buffer, env: Record<string, string>, timeoutMs: number): Promise<Buffer> {
    const plugin = basename(pluginPath);
    const verb = env.CNI_COMMAND ?? '?';
    try {
      const result = await execa(pluginPath, [], {
        // Text in and out: plugins speak JSON, and execa's buffer encoding measured ~0.6 ms slower per run.
        input: stdin.toString('utf8'),
        env: pluginEnvironment(env),
        extendEnv: false,
        timeout: timeoutMs > 0 ? timeoutMs : undefined,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_PLUGIN_OUTPUT,
      });
      return toBuffer(result.stdout);
    } catch (err) {
      if (!(err instanceof ExecaError)) throw err;
      if (err.timedOut) {
        throw new PluginError('TIMEOUT', `${plugin} (${verb}) timed out after ${timeoutMs} ms and was killed`, { cause: err });
      }
      if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'ENOEXEC') {
        throw new PluginError('NOT_FOUND', `cannot run plugin ${pluginPath}: ${err.code}`, { cause: err });
      }
      if (err.exitCode === undefined && err.signal === undefined) {
        throw new PluginError('INTERNAL', `cannot run plugin ${pluginPath}: ${err.shortMessage}`, { cause: err });
      }
      const ended = err.signal ? `was killed by ${err.signal}` : `exited with status ${err.exitCode}`;
      throw pluginFailure(plugin, verb, toBuffer(err.stdout), toBuffer(err.stderr), ended);
    }
  }

  async findInPath(pluginType: string, dirs: string[]): Promise<string> {
    validatePluginType(pluginType);
    for (const dir of dirs) {
      if (!dir) continue;
      const candidate = join(dir, pluginType);
      try {
        const info = await stat(candidate);
        if (info.isFile() && (info.mode & 0o111) !== 0) return candidate;
      } catch {
        // Not in this dir: keep looking.
      }
    }
    throw new PluginError('NOT_FOUND', `CNI plugin "${pluginType}" not found in [${dirs.join(', ')}]`);
  }
}

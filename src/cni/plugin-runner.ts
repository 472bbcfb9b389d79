/**
 * Finds and runs plugin binaries for the runtime. Plugin paths are resolved
 * once and remembered for PATH_CACHE_TTL_MS (re-resolved at once if the
 * binary vanished), so the hot path does not search the bin dirs per call.
 */
import { CniPluginError, PluginError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PluginExecutor } from './exec.js';
import type { CniVerb, RuntimeConf } from './types.js';
import { validatePluginType } from './validate.js';

const PATH_CACHE_TTL_MS = 10_000;

type ResolvedPath = { path: string; expiresAt: number };

export class PluginRunner {
  readonly cniPath: string;
  private readonly resolvedPaths = new Map<string, ResolvedPath>();

  constructor(
    private readonly binDirs: readonly string[],
    private readonly exec: PluginExecutor,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.cniPath = binDirs.join(':');
  }

  /** The CNI_* environment of a verb that concerns one attachment. */
  attachmentEnv(verb: CniVerb, rt: RuntimeConf, args: ReadonlyArray<readonly [string, string]>): Record<string, string> {
    return {
      CNI_COMMAND: verb,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: args.map(([key, value]) => `${key}=${value}`).join(';'),
      CNI_PATH: this.cniPath,
    };
  }

  async resolve(pluginType: string): Promise<string> {
    validatePluginType(pluginType);
    const cached = this.resolvedPaths.get(pluginType);
    if (cached && cached.expiresAt > Date.now()) return cached.path;
    const path = await this.exec.findInPath(pluginType, [...this.binDirs]);
    this.resolvedPaths.set(pluginType, { path, expiresAt: Date.now() + PATH_CACHE_TTL_MS });
    return path;
  }

  /** Runs a resolved binary as is, without the vanished-binary retry (VERSION queries). */
  runAt(path: string, stdin: Buffer, env: Record<string, string>): Promise<Buffer> {
    return this.exec.execPlugin(path, stdin, env, this.timeoutMs);
  }

  /** Runs one plugin; a binary that vanished since it was resolved is looked up again once. */
  async runPlugin(pluginType: string, verb: CniVerb, stdin: Buffer, env: Record<string, string>): Promise<Buffer> {
    const started = performance.now();
    let path = await this.resolve(pluginType);
    try {
      let stdout: Buffer;
      try {
        stdout = await this.exec.execPlugin(path, stdin, env, this.timeoutMs);
      } catch (err) {
        if (!(err instanceof PluginError) || err.code !== 'NOT_FOUND' || err instanceof CniPluginError) throw err;
        this.resolvedPaths.delete(pluginType);
        path = await this.resolve(pluginType);
        stdout = await this.exec.execPlugin(path, stdin, env, this.timeoutMs);
      }
      this.logger.debug({ plugin: pluginType, verb, ms: Math.round(performance.now() - started) }, 'CNI plugin done');
      return stdout;
    } catch (err) {
      this.logger.debug({ plugin: pluginType, verb, err: (err as Error).message }, 'CNI plugin failed');
      throw err;
    }
  }
}

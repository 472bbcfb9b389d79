/**
 * The CNI runtime (libcni's CNIConfig): runs network config lists against a
 * container's network namespace and keeps libcni's result cache.
 *
 * Hot path choices (ADD/DEL run on every container start and stop):
 *  - Plugin paths are resolved once and remembered for PATH_CACHE_TTL_MS
 *    (re-resolved at once if the binary vanished).
 *  - VERSION is never run before ADD/DEL/CHECK of a list whose version is
 *    1.0.0 or lower: every plugin release since 2021 speaks those, libcni
 *    does not ask either, and a plugin that does not rejects the config with
 *    CNI code 1 by itself. Only a list asking for a version above 1.0.0 (spec
 *    1.1, which many installed plugins - Debian's 1.1.1 included - lack) is
 *    negotiated: the highest of its `cniVersions`/`cniVersion` every plugin of
 *    the chain lists. VERSION answers are cached per binary path + mtime, so a
 *    binary is asked once. GC and STATUS use the same cache.
 *
 * Deliberate differences from libcni, for a driver whose teardown errors are
 * only logged by Docker:
 *  - DEL runs every plugin of the chain even if one fails (libcni stops at the
 *    first error); the first error is then thrown and the cache entry kept, so
 *    a retry replays the same config.
 *  - DEL replays the cached config, CNI_ARGS and capability args (as container
 *    runtimes built on libcni do), and a failed ADD is rolled back with a DEL
 *    of the whole chain.
 *  - ADD refuses (CONFLICT) when a cache entry for the attachment exists:
 *    ADD twice without DEL corrupts IPAM state and loses the DEL config.
 *  - Operations on one attachment (network, container, ifname) are serialised.
 */
import { stat } from 'node:fs/promises';
import { CniPluginError, PluginError, invalid, notFound } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { isRecord } from '../util/is-record.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { truncate } from '../util/text.js';
import {
  cacheFilePath,
  listCacheEntries,
  readCacheEntry,
  removeCacheEntry,
  writeCacheEntry,
} from './cache.js';
import { confListBytes, confListFromBytes } from './conf.js';
import { ExecaPluginExecutor, type PluginExecutor } from './exec.js';
import {
  CNI_ERROR,
  type CachedAttachment,
  type CniResult,
  type CniVerb,
  type GcAttachment,
  type NetConfList,
  type PluginConf,
  type RuntimeConf,
} from './types.js';
import {
  validateCniArgs,
  validateContainerId,
  validateIfName,
  validateNetnsPath,
  validateNetworkName,
  validatePluginType,
} from './validate.js';
import {
  INTERNAL_RESULT_VERSION,
  LATEST_VERSION,
  compareVersions,
  convertResult,
  isKnownVersion,
  negotiateVersion,
  normalizeResult,
  versionAtLeast,
} from './version.js';

export interface CniRuntimeOptions {
  binDirs: string[];
  cacheDir: string;
  exec?: PluginExecutor;
  timeoutMs?: number;
  logger?: Logger;
}

export interface PluginVersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

export interface DelOptions {
  /** Which network's cache entry to replay when `list` is not given. */
  networkName?: string;
}

export const DEFAULT_PLUGIN_TIMEOUT_MS = 20_000;
const PATH_CACHE_TTL_MS = 10_000;
/** Versions up to this one are used as configured, without asking plugins (see the module comment). */
const TRUSTED_VERSION = '1.0.0';
const SPEC_1_1 = '1.1.0';

type ResolvedPath = { path: string; expiresAt: number };

export class CniRuntime {
  private readonly binDirs: string[];
  private readonly cacheDir: string;
  private readonly exec: PluginExecutor;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly cniPath: string;
  private readonly resolvedPaths = new Map<string, ResolvedPath>();
  private readonly versionInfos = new Map<string, Promise<PluginVersionInfo>>();
  private readonly attachmentLocks = new KeyedLock();

  constructor(opts: CniRuntimeOptions) {
    if (!Array.isArray(opts.binDirs) || opts.binDirs.length === 0) throw invalid('CNI runtime needs at least one plugin dir');
    if (!opts.cacheDir) throw invalid('CNI runtime needs a cache dir');
    this.binDirs = [...opts.binDirs];
    this.cacheDir = opts.cacheDir;
    this.exec = opts.exec ?? new ExecaPluginExecutor();
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
    this.logger = opts.logger ?? silentLogger;
    this.cniPath = this.binDirs.join(':');
  }

  // ---------------------------------------------------------------- ADD

  async addNetworkList(list: NetConfList, rt: RuntimeConf): Promise<CniResult> {
    validateList(list);
    validateRuntimeConf(rt, true);
    return this.attachmentLocks.withLock(lockKey(list.name, rt), () => this.addLocked(list, rt));
  }

  private async addLocked(list: NetConfList, rt: RuntimeConf): Promise<CniResult> {
    if (await this.readEntryQuietly(list.name, rt.containerId, rt.ifName)) {
      throw new PluginError(
        'CONFLICT',
        `network ${list.name} is already attached to container ${rt.containerId} as ${rt.ifName}; DEL it first`,
      );
    }
    const version = await this.effectiveVersion(list);
    const args = rt.args ?? [];
    const capabilityArgs = rt.capabilityArgs ?? {};
    let prevResult: CniResult | undefined;
    try {
      for (const plugin of list.plugins) {
        const stdin = buildPluginConfig(list.name, plugin, version, prevResult, capabilityArgs);
        const stdout = await this.runPlugin(plugin.type, 'ADD', stdin, this.attachmentEnv('ADD', rt, args));
        prevResult = parseResult(plugin.type, 'ADD', stdout, version);
      }
      if (!prevResult) throw new PluginError('INTERNAL', `network ${list.name}: the chain produced no result`);
      await writeCacheEntry(this.cacheDir, {
        kind: 'cniCacheV1',
        containerId: rt.containerId,
        config: confListBytes(list).toString('base64'),
        ifName: rt.ifName,
        networkName: list.name,
        netns: rt.netns,
        cniArgs: args,
        capabilityArgs,
        result: convertResult(prevResult, INTERNAL_RESULT_VERSION, version),
      });
      return prevResult;
    } catch (err) {
      const rollbackErrors = await this.delChain(list, version, rt, args, capabilityArgs, prevResult);
      if (rollbackErrors.length > 0) {
        this.logger.warn(
          { network: list.name, containerId: rt.containerId, errors: rollbackErrors.map((e) => e.message) },
          'rollback DEL after failed ADD did not complete',
        );
      }
      throw err;
    }
  }

  // ---------------------------------------------------------------- DEL

  async delNetworkList(list: NetConfList | undefined, rt: RuntimeConf, opts: DelOptions = {}): Promise<void> {
    if (list) validateList(list);
    validateRuntimeConf(rt, false);
    let networkName = list?.name ?? opts.networkName;
    if (networkName === undefined) {
      const matches = await listCacheEntries(this.cacheDir, { containerId: rt.containerId, ifName: rt.ifName });
      const names = [...new Set(matches.map((entry) => entry.networkName))];
      if (names.length === 0) return;
      if (names.length > 1) {
        throw invalid(`container ${rt.containerId} ${rt.ifName} is cached on several networks (${names.join(', ')}); name one`);
      }
      networkName = names[0] as string;
    }
    validateNetworkName(networkName);
    const name = networkName;
    await this.attachmentLocks.withLock(lockKey(name, rt), () => this.delLocked(name, list, rt));
  }

  private async delLocked(networkName: string, givenList: NetConfList | undefined, rt: RuntimeConf): Promise<void> {
    let entry: CachedAttachment | undefined;
    let cacheUnreadable = false;
    try {
      entry = await readCacheEntry(this.cacheDir, networkName, rt.containerId, rt.ifName);
    } catch (err) {
      cacheUnreadable = true;
      this.logger.warn({ err, network: networkName, containerId: rt.containerId }, 'unreadable CNI cache entry; using the given config');
    }
    let list = givenList;
    if (entry) {
      try {
        list = confListFromBytes(Buffer.from(entry.config, 'base64'));
      } catch (err) {
        cacheUnreadable = true;
        this.logger.warn({ err, network: networkName, containerId: rt.containerId }, 'cached CNI config unreadable; using the given config');
      }
    }
    if (!list) {
      if (cacheUnreadable) {
        throw new PluginError('STATE_FAILED', `cannot DEL ${networkName}/${rt.containerId}/${rt.ifName}: cache entry unreadable and no config given`);
      }
      return; // Nothing known about this attachment: already gone.
    }
    const version = await this.effectiveVersion(list);
    const args = entry ? (entry.cniArgs ?? []) : (rt.args ?? []);
    const capabilityArgs = entry ? (entry.capabilityArgs ?? {}) : (rt.capabilityArgs ?? {});
    const errors = await this.delChain(list, version, rt, args, capabilityArgs, entry?.result);
    if (errors.length > 0) {
      const [first, ...rest] = errors as [Error, ...Error[]];
      if (rest.length > 0) this.logger.warn({ errors: rest.map((e) => e.message) }, 'further DEL errors');
      throw first;
    }
    await removeCacheEntry(this.cacheDir, networkName, rt.containerId, rt.ifName);
  }

  /** DEL of every plugin in reverse order; returns the errors instead of stopping at the first. */
  private async delChain(
    list: NetConfList,
    version: string,
    rt: RuntimeConf,
    args: Array<[string, string]>,
    capabilityArgs: Record<string, unknown>,
    prevResult: CniResult | undefined,
  ): Promise<Error[]> {
    // prevResult on DEL arrived with spec 0.4.0.
    const delPrevResult = versionAtLeast(version, '0.4.0') ? prevResult : undefined;
    const env = this.attachmentEnv('DEL', rt, args);
    const errors: Error[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.runPlugin(plugin.type, 'DEL', buildPluginConfig(list.name, plugin, version, delPrevResult, capabilityArgs), env);
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return errors;
  }

  // ---------------------------------------------------------------- CHECK

  async checkNetworkList(list: NetConfList, rt: RuntimeConf): Promise<void> {
    validateList(list);
    validateRuntimeConf(rt, true);
    await this.attachmentLocks.withLock(lockKey(list.name, rt), async () => {
      const version = await this.effectiveVersion(list);
      if (!versionAtLeast(version, '0.4.0')) {
        throw invalid(`network ${list.name}: configuration version "${version}" does not support the CHECK command`);
      }
      if (list.disableCheck) return;
      const entry = await readCacheEntry(this.cacheDir, list.name, rt.containerId, rt.ifName);
      if (!entry?.result) {
        throw notFound(`network ${list.name}: no cached result for container ${rt.containerId} ${rt.ifName}`);
      }
      const args = rt.args ?? entry.cniArgs ?? [];
      const capabilityArgs = rt.capabilityArgs ?? entry.capabilityArgs ?? {};
      const env = this.attachmentEnv('CHECK', rt, args);
      for (const plugin of list.plugins) {
        await this.runPlugin(plugin.type, 'CHECK', buildPluginConfig(list.name, plugin, version, entry.result, capabilityArgs), env);
      }
    });
  }

  // ---------------------------------------------------------------- GC / STATUS

  async gcNetworkList(list: NetConfList, valid: GcAttachment[]): Promise<void> {
    validateList(list);
    const keep = new Set<string>();
    for (const attachment of valid) {
      validateContainerId(attachment.containerId);
      validateIfName(attachment.ifName);
      keep.add(`${attachment.containerId}\0${attachment.ifName}`);
    }
    const errors: Error[] = [];
    const entries = await listCacheEntries(this.cacheDir, { networkName: list.name }, (path, err) =>
      this.logger.warn({ path, err: err.message }, 'skipping unreadable CNI cache entry during GC'),
    );
    for (const entry of entries) {
      if (keep.has(`${entry.containerId}\0${entry.ifName}`)) continue;
      const rt: RuntimeConf = { containerId: entry.containerId, ifName: entry.ifName, netns: entry.netns ?? '' };
      try {
        await this.attachmentLocks.withLock(lockKey(list.name, rt), () => this.delLocked(list.name, list, rt));
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (!list.disableGC) {
      const validAttachments = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifName }));
      for (const { plugin, version } of await this.pluginsSpeaking(list, SPEC_1_1)) {
        // libcni sends the list under both names: an early spec draft called it cni.dev/attachments.
        const stdin = pluginJson({
          ...plugin,
          name: list.name,
          cniVersion: version,
          'cni.dev/valid-attachments': validAttachments,
          'cni.dev/attachments': validAttachments,
        });
        try {
          await this.runPlugin(plugin.type, 'GC', stdin, { CNI_COMMAND: 'GC', CNI_PATH: this.cniPath });
        } catch (err) {
          errors.push(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
    if (errors.length > 0) {
      const [first, ...rest] = errors as [Error, ...Error[]];
      if (rest.length > 0) this.logger.warn({ errors: rest.map((e) => e.message) }, 'further GC errors');
      throw first;
    }
  }

  async getStatusNetworkList(list: NetConfList): Promise<void> {
    validateList(list);
    for (const { plugin, version } of await this.pluginsSpeaking(list, SPEC_1_1)) {
      const stdin = pluginJson({ ...plugin, name: list.name, cniVersion: version });
      await this.runPlugin(plugin.type, 'STATUS', stdin, { CNI_COMMAND: 'STATUS', CNI_PATH: this.cniPath });
    }
  }

  /**
   * Plugins of the list that can be spoken to at `minimum` or above, each with
   * the highest version the list declares and the plugin supports. Lists that
   * declare nothing that high cost no VERSION call.
   */
  private async pluginsSpeaking(list: NetConfList, minimum: string): Promise<Array<{ plugin: PluginConf; version: string }>> {
    const candidates = declaredVersions(list).filter((v) => versionAtLeast(v, minimum));
    if (candidates.length === 0) return [];
    const speaking: Array<{ plugin: PluginConf; version: string }> = [];
    for (const plugin of list.plugins) {
      let info: PluginVersionInfo;
      try {
        info = await this.getVersionInfo(plugin.type);
      } catch (err) {
        this.logger.warn({ plugin: plugin.type, err: (err as Error).message }, 'cannot ask plugin for its versions; skipping it');
        continue;
      }
      const version = negotiateVersion(candidates, [info.supportedVersions]);
      if (version) speaking.push({ plugin, version });
    }
    return speaking;
  }

  // ---------------------------------------------------------------- cache queries

  async getCachedAttachment(networkName: string, containerId: string, ifName: string): Promise<CachedAttachment | undefined> {
    return readCacheEntry(this.cacheDir, networkName, containerId, ifName);
  }

  async listCachedAttachments(networkName?: string): Promise<CachedAttachment[]> {
    if (networkName !== undefined) validateNetworkName(networkName);
    return listCacheEntries(this.cacheDir, networkName === undefined ? {} : { networkName }, (path, err) =>
      this.logger.warn({ path, err: err.message }, 'skipping unreadable CNI cache entry'),
    );
  }

  // ---------------------------------------------------------------- VERSION

  async getVersionInfo(pluginType: string): Promise<PluginVersionInfo> {
    const path = await this.resolve(pluginType);
    let identity = 'unknown';
    try {
      const info = await stat(path);
      identity = `${info.mtimeMs}:${info.size}:${info.ino}`;
    } catch {
      // An executor that does not run files from disk (tests): the path alone identifies the plugin.
    }
    const key = `${path}\0${identity}`;
    let pending = this.versionInfos.get(key);
    if (!pending) {
      pending = this.askVersion(pluginType, path);
      this.versionInfos.set(key, pending);
      pending.catch(() => this.versionInfos.delete(key));
    }
    return pending;
  }

  private async askVersion(pluginType: string, path: string): Promise<PluginVersionInfo> {
    const stdin = Buffer.from(JSON.stringify({ cniVersion: LATEST_VERSION }));
    const stdout = await this.exec.execPlugin(path, stdin, { CNI_COMMAND: 'VERSION', CNI_PATH: this.cniPath }, this.timeoutMs);
    let raw: unknown;
    try {
      raw = JSON.parse(stdout.toString('utf8'));
    } catch {
      throw new CniPluginError(pluginType, 'VERSION', CNI_ERROR.decodeFailure, 'cannot decode VERSION output', truncated(stdout));
    }
    const body = isRecord(raw) ? raw : {};
    const cniVersion = typeof body.cniVersion === 'string' && body.cniVersion !== '' ? body.cniVersion : '0.1.0';
    // Plugins from before VERSION listed their versions answer like a 0.1.0 plugin.
    if (cniVersion === '0.1.0' && !Array.isArray(body.supportedVersions)) return { cniVersion, supportedVersions: ['0.1.0'] };
    const supported = body.supportedVersions;
    if (!Array.isArray(supported) || supported.length === 0 || !supported.every((v) => typeof v === 'string')) {
      throw new CniPluginError(pluginType, 'VERSION', CNI_ERROR.decodeFailure, 'VERSION output lists no supported versions', truncated(stdout));
    }
    return { cniVersion, supportedVersions: supported as string[] };
  }

  /** The version to speak to the whole chain (see the module comment). */
  private async effectiveVersion(list: NetConfList): Promise<string> {
    if (!isKnownVersion(list.cniVersion)) throw invalid(`network ${list.name}: unsupported cniVersion "${list.cniVersion}"`);
    if (compareVersions(list.cniVersion, TRUSTED_VERSION) <= 0) return list.cniVersion;
    const candidates = declaredVersions(list);
    const infos = await Promise.all(list.plugins.map((plugin) => this.getVersionInfo(plugin.type)));
    const chosen = negotiateVersion(candidates, infos.map((info) => info.supportedVersions));
    if (chosen) return chosen;
    const index = infos.findIndex((info) => !candidates.some((v) => info.supportedVersions.includes(v)));
    const culprit = list.plugins[index >= 0 ? index : 0] as PluginConf;
    const supported = (infos[index >= 0 ? index : 0] as PluginVersionInfo).supportedVersions;
    throw new CniPluginError(
      culprit.type,
      'VERSION',
      CNI_ERROR.incompatibleVersion,
      'incompatible CNI versions',
      `network ${list.name} wants [${candidates.join(', ')}], plugin supports [${supported.join(', ')}]`,
    );
  }

  // ---------------------------------------------------------------- standalone IPAM

  /** Run one IPAM plugin standalone (e.g. host-local) for ADD or DEL. No result cache. netconf = {cniVersion,name,ipam:{type,...}}. */
  async execIpam(
    verb: 'ADD' | 'DEL',
    netconf: Record<string, unknown> & { cniVersion: string; name: string; ipam: { type: string } },
    rt: RuntimeConf,
  ): Promise<CniResult | undefined> {
    validateNetworkName(netconf.name);
    if (!isKnownVersion(netconf.cniVersion)) throw invalid(`network ${netconf.name}: unsupported cniVersion "${netconf.cniVersion}"`);
    validatePluginType(netconf.ipam?.type);
    validateRuntimeConf(rt, false);
    const type = netconf.ipam.type;
    return this.attachmentLocks.withLock(`ipam\0${lockKey(netconf.name, rt)}`, async () => {
      const stdout = await this.runPlugin(type, verb, pluginJson(netconf), this.attachmentEnv(verb, rt, rt.args ?? []));
      return verb === 'ADD' ? parseResult(type, verb, stdout, netconf.cniVersion) : undefined;
    });
  }

  // ---------------------------------------------------------------- plumbing

  private attachmentEnv(verb: CniVerb, rt: RuntimeConf, args: ReadonlyArray<readonly [string, string]>): Record<string, string> {
    return {
      CNI_COMMAND: verb,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: args.map(([key, value]) => `${key}=${value}`).join(';'),
      CNI_PATH: this.cniPath,
    };
  }

  private async resolve(pluginType: string): Promise<string> {
    validatePluginType(pluginType);
    const cached = this.resolvedPaths.get(pluginType);
    if (cached && cached.expiresAt > Date.now()) return cached.path;
    const path = await this.exec.findInPath(pluginType, this.binDirs);
    this.resolvedPaths.set(pluginType, { path, expiresAt: Date.now() + PATH_CACHE_TTL_MS });
    return path;
  }

  /** Runs one plugin; a binary that vanished since it was resolved is looked up again once. */
  private async runPlugin(pluginType: string, verb: CniVerb, stdin: Buffer, env: Record<string, string>): Promise<Buffer> {
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

  /** For tests and diagnostics: where the cache entry of an attachment lives. */
  cachePath(networkName: string, containerId: string, ifName: string): string {
    return cacheFilePath(this.cacheDir, networkName, containerId, ifName);
  }

  private async readEntryQuietly(networkName: string, containerId: string, ifName: string): Promise<boolean> {
    try {
      return (await readCacheEntry(this.cacheDir, networkName, containerId, ifName)) !== undefined;
    } catch {
      return true; // Unreadable, but present: still an attachment we must not ADD over.
    }
  }
}

const lockKey = (networkName: string, rt: RuntimeConf): string => `${networkName}\0${rt.containerId}\0${rt.ifName}`;

const truncated = (bytes: Buffer): string => truncate(bytes.toString('utf8'), 512);

/** cniVersion plus any spec-1.1 cniVersions this runtime knows. */
function declaredVersions(list: NetConfList): string[] {
  return [...new Set([list.cniVersion, ...(list.cniVersions ?? [])])].filter(isKnownVersion);
}

function validateList(list: NetConfList): void {
  if (!isRecord(list)) throw invalid('network config list missing');
  validateNetworkName(list.name);
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw invalid(`network ${list.name}: no plugins`);
  for (const plugin of list.plugins) validatePluginType(plugin?.type);
}

function validateRuntimeConf(rt: RuntimeConf, netnsRequired: boolean): void {
  if (!isRecord(rt)) throw invalid('runtime config missing');
  validateContainerId(rt.containerId);
  validateIfName(rt.ifName);
  validateNetnsPath(rt.netns ?? '', netnsRequired);
  if (rt.args) validateCniArgs(rt.args);
  if (rt.capabilityArgs !== undefined && !isRecord(rt.capabilityArgs)) throw invalid('capabilityArgs must be an object');
}

function pluginJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/**
 * One plugin's stdin: its own config plus the injected network name and
 * version, `runtimeConfig` holding only the capabilities it declares true, and
 * the previous result converted to the list's version.
 */
export function buildPluginConfig(
  networkName: string,
  plugin: PluginConf,
  version: string,
  prevResult: CniResult | undefined,
  capabilityArgs: Record<string, unknown>,
): Buffer {
  const conf: Record<string, unknown> = { ...plugin, name: networkName, cniVersion: version };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, declared] of Object.entries(plugin.capabilities ?? {})) {
    if (declared === true && capabilityArgs[capability] !== undefined) runtimeConfig[capability] = capabilityArgs[capability];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult) conf.prevResult = convertResult(prevResult, INTERNAL_RESULT_VERSION, version);
  return pluginJson(conf);
}

function parseResult(pluginType: string, verb: CniVerb, stdout: Buffer, version: string): CniResult {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout.toString('utf8'));
  } catch {
    throw new CniPluginError(pluginType, verb, CNI_ERROR.decodeFailure, 'cannot decode the plugin result', truncated(stdout));
  }
  try {
    return normalizeResult(raw, version);
  } catch (err) {
    throw new CniPluginError(pluginType, verb, CNI_ERROR.decodeFailure, `invalid plugin result: ${(err as Error).message}`, truncated(stdout));
  }
}

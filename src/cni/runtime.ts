/**
 * The CNI runtime (libcni's CNIConfig): runs network config lists against a
 * container's network namespace and keeps libcni's result cache.
 *
 * Which spec version a chain is spoken to is decided in negotiation.ts;
 * finding and running the binaries is plugin-runner.ts.
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
import { PluginError, invalid, notFound } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { cacheFilePath, listCacheEntries, readCacheEntry, removeCacheEntry, writeCacheEntry } from './cache.js';
import { confListBytes, confListFromBytes } from './conf.js';
import { ExecaPluginExecutor, type PluginExecutor } from './exec.js';
import { VersionNegotiator, type PluginVersionInfo } from './negotiation.js';
import { buildPluginConfig, parseResult, pluginJson } from './plugin-io.js';
import { PluginRunner } from './plugin-runner.js';
import type { CachedAttachment, CniResult, GcAttachment, NetConfList, RuntimeConf } from './types.js';
import { validateContainerId, validateIfName, validateList, validateNetworkName, validatePluginType, validateRuntimeConf } from './validate.js';
import { INTERNAL_RESULT_VERSION, convertResult, isKnownVersion, versionAtLeast } from './version.js';

export type { PluginVersionInfo } from './negotiation.js';
export { buildPluginConfig } from './plugin-io.js';

export interface CniRuntimeOptions {
  binDirs: string[];
  cacheDir: string;
  exec?: PluginExecutor;
  timeoutMs?: number;
  logger?: Logger;
}

export interface DelOptions {
  /** Which network's cache entry to replay when `list` is not given. */
  networkName?: string;
}

export const DEFAULT_PLUGIN_TIMEOUT_MS = 20_000;
const SPEC_1_1 = '1.1.0';

export class CniRuntime {
  private readonly cacheDir: string;
  private readonly logger: Logger;
  private readonly plugins: PluginRunner;
  private readonly versions: VersionNegotiator;
  private readonly attachmentLocks = new KeyedLock();

  constructor(opts: CniRuntimeOptions) {
    if (!Array.isArray(opts.binDirs) || opts.binDirs.length === 0) throw invalid('CNI runtime needs at least one plugin dir');
    if (!opts.cacheDir) throw invalid('CNI runtime needs a cache dir');
    this.cacheDir = opts.cacheDir;
    this.logger = opts.logger ?? silentLogger;
    const exec: PluginExecutor = opts.exec ?? new ExecaPluginExecutor();
    this.plugins = new PluginRunner([...opts.binDirs], exec, opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS, this.logger);
    this.versions = new VersionNegotiator(this.plugins, this.logger);
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
    const version = await this.versions.effectiveVersion(list);
    const args = rt.args ?? [];
    const capabilityArgs = rt.capabilityArgs ?? {};
    let prevResult: CniResult | undefined;
    try {
      for (const plugin of list.plugins) {
        const stdin = buildPluginConfig(list.name, plugin, version, prevResult, capabilityArgs);
        const stdout = await this.plugins.runPlugin(plugin.type, 'ADD', stdin, this.plugins.attachmentEnv('ADD', rt, args));
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
      const [only, ...others] = names;
      if (only === undefined) return;
      if (others.length > 0) {
        throw invalid(`container ${rt.containerId} ${rt.ifName} is cached on several networks (${names.join(', ')}); name one`);
      }
      networkName = only;
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
    const version = await this.versions.effectiveVersion(list);
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
    const env = this.plugins.attachmentEnv('DEL', rt, args);
    const errors: Error[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.plugins.runPlugin(plugin.type, 'DEL', buildPluginConfig(list.name, plugin, version, delPrevResult, capabilityArgs), env);
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
      const version = await this.versions.effectiveVersion(list);
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
      const env = this.plugins.attachmentEnv('CHECK', rt, args);
      for (const plugin of list.plugins) {
        await this.plugins.runPlugin(plugin.type, 'CHECK', buildPluginConfig(list.name, plugin, version, entry.result, capabilityArgs), env);
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
      for (const { plugin, version } of await this.versions.pluginsSpeaking(list, SPEC_1_1)) {
        // libcni sends the list under both names: an early spec draft called it cni.dev/attachments.
        const stdin = pluginJson({
          ...plugin,
          name: list.name,
          cniVersion: version,
          'cni.dev/valid-attachments': validAttachments,
          'cni.dev/attachments': validAttachments,
        });
        try {
          await this.plugins.runPlugin(plugin.type, 'GC', stdin, { CNI_COMMAND: 'GC', CNI_PATH: this.plugins.cniPath });
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
    for (const { plugin, version } of await this.versions.pluginsSpeaking(list, SPEC_1_1)) {
      const stdin = pluginJson({ ...plugin, name: list.name, cniVersion: version });
      await this.plugins.runPlugin(plugin.type, 'STATUS', stdin, { CNI_COMMAND: 'STATUS', CNI_PATH: this.plugins.cniPath });
    }
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

  getVersionInfo(pluginType: string): Promise<PluginVersionInfo> {
    return this.versions.getVersionInfo(pluginType);
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
      const stdout = await this.plugins.runPlugin(type, verb, pluginJson(netconf), this.plugins.attachmentEnv(verb, rt, rt.args ?? []));
      return verb === 'ADD' ? parseResult(type, verb, stdout, netconf.cniVersion) : undefined;
    });
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



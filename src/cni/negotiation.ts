/**
 * Which spec version to speak to a chain.
 *
 * VERSION is never run before ADD/DEL/CHECK of a list whose version is 1.0.0
 * or lower: every plugin release since 2021 speaks those, libcni does not ask
 * either, and a plugin that does not rejects the config with CNI code 1 by
 * itself. Only a list asking for a version above 1.0.0 (spec 1.1, which many
 * installed plugins - Debian's 1.1.1 included - lack) is negotiated: the
 * highest of its `cniVersions`/`cniVersion` every plugin of the chain lists.
 * VERSION answers are cached per binary path + mtime, so a binary is asked
 * once. GC and STATUS use the same cache.
 */
import { stat } from 'node:fs/promises';
import { CniPluginError, invalid } from '../errors.js';
import type { Logger } from '../log.js';
import { isRecord } from '../util/is-record.js';
import type { PluginRunner } from './plugin-runner.js';
import { truncated } from './plugin-io.js';
import { CNI_ERROR, type NetConfList, type PluginConf } from './types.js';
import { LATEST_VERSION, compareVersions, isKnownVersion, negotiateVersion, versionAtLeast } from './version.js';

export interface PluginVersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

/** Versions up to this one are used as configured, without asking plugins (see the module comment). */
const TRUSTED_VERSION = '1.0.0';

export class VersionNegotiator {
  private readonly versionInfos = new Map<string, Promise<PluginVersionInfo>>();

  constructor(
    private readonly runner: PluginRunner,
    private readonly logger: Logger,
  ) {}

  async getVersionInfo(pluginType: string): Promise<PluginVersionInfo> {
    const path = await this.runner.resolve(pluginType);
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
    const stdout = await this.runner.runAt(path, stdin, { CNI_COMMAND: 'VERSION', CNI_PATH: this.runner.cniPath });
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
    return { cniVersion, supportedVersions: supported };
  }

  /** The version to speak to the whole chain (see the module comment). */
  async effectiveVersion(list: NetConfList): Promise<string> {
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

  /**
   * Plugins of the list that can be spoken to at `minimum` or above, each with
   * the highest version the list declares and the plugin supports. Lists that
   * declare nothing that high cost no VERSION call.
   */
  async pluginsSpeaking(list: NetConfList, minimum: string): Promise<Array<{ plugin: PluginConf; version: string }>> {
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
}

/** cniVersion plus any spec-1.1 cniVersions this runtime knows. */
function declaredVersions(list: NetConfList): string[] {
  return [...new Set([list.cniVersion, ...(list.cniVersions ?? [])])].filter(isKnownVersion);
}

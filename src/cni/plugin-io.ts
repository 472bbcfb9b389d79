/** What goes to a plugin on stdin and what comes back on stdout. */
import { CniPluginError } from '../errors.js';
import { truncate } from '../util/text.js';
import { CNI_ERROR, type CniResult, type CniVerb, type PluginConf } from './types.js';
import { INTERNAL_RESULT_VERSION, convertResult, normalizeResult } from './version.js';

export const truncated = (bytes: Buffer): string => truncate(bytes.toString('utf8'), 512);

export function pluginJson(value: unknown): Buffer {
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

export function parseResult(pluginType: string, verb: CniVerb, stdout: Buffer, version: string): CniResult {
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

/**
 * Input checks for everything that becomes a file name, an environment value
 * or an interface name when a plugin runs. The CNI SPEC restricts container IDs
 * and network names to one character class; interface names follow Linux's
 * IFNAMSIZ rules.
 */
import { invalid } from '../errors.js';
import { isRecord } from '../util/is-record.js';
import type { NetConfList, RuntimeConf } from './types.js';

const SPEC_IDENTIFIER = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Linux keeps 16 bytes for an interface name including the terminating NUL. */
const MAX_IFNAME_BYTES = 15;

export function validateContainerId(id: string): void {
  if (typeof id !== 'string' || id === '') throw invalid('container ID must not be empty');
  if (!SPEC_IDENTIFIER.test(id)) {
    throw invalid(`invalid container ID "${printable(id)}": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
}

export function validateNetworkName(name: string): void {
  if (typeof name !== 'string' || name === '') throw invalid('network name must not be empty');
  if (!SPEC_IDENTIFIER.test(name)) {
    throw invalid(`invalid network name "${printable(name)}": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
}

export function validateIfName(name: string): void {
  if (typeof name !== 'string' || name === '') throw invalid('interface name must not be empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_IFNAME_BYTES) {
    throw invalid(`invalid interface name "${printable(name)}": longer than ${MAX_IFNAME_BYTES} bytes`);
  }
  if (name === '.' || name === '..') throw invalid(`invalid interface name "${name}"`);
  if (/[/:\s\x00-\x1f\x7f]/.test(name)) {
    throw invalid(`invalid interface name "${printable(name)}": must not contain '/', ':', whitespace or control characters`);
  }
}

/** A plugin `type` becomes a file name inside a bin dir, so it must stay one path component. */
export function validatePluginType(type: unknown): asserts type is string {
  if (typeof type !== 'string' || type === '') throw invalid('plugin type must be a non-empty string');
  if (type.includes('/') || type === '.' || type.includes('..') || /[\x00-\x1f]/.test(type)) {
    throw invalid(`invalid plugin type "${printable(type)}": must be a plain file name`);
  }
}

/** CNI_NETNS: empty (DEL of a vanished namespace) or an absolute path. */
export function validateNetnsPath(netns: string, required: boolean): void {
  if (netns === '') {
    if (required) throw invalid('network namespace path is required');
    return;
  }
  if (!netns.startsWith('/') || netns.includes('\0')) {
    throw invalid(`invalid network namespace path "${printable(netns)}": must be an absolute path`);
  }
}

/** CNI_ARGS is rendered as K=V;K=V, so keys may hold neither '=' nor ';' and values no ';'. */
export function validateCniArgs(args: ReadonlyArray<readonly [string, string]>): void {
  for (const pair of args) {
    const [key, value] = pair;
    if (typeof key !== 'string' || key === '' || /[=;\0]/.test(key)) {
      throw invalid(`invalid CNI_ARGS key "${printable(String(key))}"`);
    }
    if (typeof value !== 'string' || /[;\0]/.test(value)) {
      throw invalid(`invalid CNI_ARGS value for ${key}: must be a string without ';'`);
    }
  }
}

function printable(value: string): string {
  const shown = JSON.stringify(value).slice(1, -1);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

export function validateList(list: NetConfList): void {
  if (!isRecord(list)) throw invalid('network config list missing');
  validateNetworkName(list.name);
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw invalid(`network ${list.name}: no plugins`);
  for (const plugin of list.plugins) validatePluginType(plugin?.type);
}

export function validateRuntimeConf(rt: RuntimeConf, netnsRequired: boolean): void {
  if (!isRecord(rt)) throw invalid('runtime config missing');
  validateContainerId(rt.containerId);
  validateIfName(rt.ifName);
  validateNetnsPath(rt.netns ?? '', netnsRequired);
  if (rt.args) validateCniArgs(rt.args);
  if (rt.capabilityArgs !== undefined && !isRecord(rt.capabilityArgs)) throw invalid('capabilityArgs must be an object');
}

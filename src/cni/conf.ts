/**
 * Loading network configuration the way libcni does: `.conflist` files first
 * (sorted by file name), then single-plugin `.conf` / `.json` files (sorted),
 * which are up-converted into a one-plugin list.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { PluginError, invalid, notFound } from '../errors.js';
import type { NetConfList, PluginConf } from './types.js';
import { validateNetworkName, validatePluginType } from './validate.js';
import { compareVersions, isKnownVersion } from './version.js';
import { isRecord } from '../util/is-record.js';

const LIST_EXTENSIONS = ['.conflist'];
const SINGLE_EXTENSIONS = ['.conf', '.json'];

/** libcni accepts disableCheck/disableGC as a boolean or the strings "true"/"false". */
function parseFlag(value: unknown, field: string, where: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw invalid(`${where}: "${field}" must be a boolean`);
}

function parseVersion(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`${where}: missing "cniVersion"`);
  if (!isKnownVersion(value)) throw invalid(`${where}: unsupported cniVersion "${value}"`);
  return value;
}

function parsePlugin(raw: unknown, index: number, where: string): PluginConf {
  if (!isRecord(raw)) throw invalid(`${where}: plugins[${index}] is not an object`);
  try {
    validatePluginType(raw.type);
  } catch (err) {
    throw invalid(`${where}: plugins[${index}]: ${(err as Error).message}`);
  }
  if (raw.capabilities !== undefined && !isRecord(raw.capabilities)) {
    throw invalid(`${where}: plugins[${index}].capabilities must be an object`);
  }
  if (raw.ipam !== undefined && !isRecord(raw.ipam)) throw invalid(`${where}: plugins[${index}].ipam must be an object`);
  return raw as PluginConf;
}

/**
 * Parses a conflist, or a single plugin config (up-converted into a list).
 * Throws INVALID_ARGUMENT naming the source and the problem.
 */
export function confListFromBytes(bytes: Buffer, sourcePath?: string): NetConfList {
  return parseConf(bytes, sourcePath, false);
}

function parseConf(bytes: Buffer, sourcePath: string | undefined, requireList: boolean): NetConfList {
  const where = sourcePath ?? 'network config';
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalid(`${where}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw)) throw invalid(`${where}: not a JSON object`);
  if (typeof raw.name !== 'string' || raw.name === '') throw invalid(`${where}: missing "name"`);
  try {
    validateNetworkName(raw.name);
  } catch (err) {
    throw invalid(`${where}: ${(err as Error).message}`);
  }
  const name = raw.name;

  if (raw.plugins === undefined) {
    if (requireList) throw invalid(`${where}: a .conflist needs a "plugins" array`);
    // A single plugin config: the list gets the plugin's own name and version.
    const cniVersion = parseVersion(raw.cniVersion, where);
    const plugin = parsePlugin(raw, 0, where);
    const listObject = { cniVersion, name, plugins: [raw] };
    const list: NetConfList = { cniVersion, name, plugins: [plugin], bytes: Buffer.from(JSON.stringify(listObject)) };
    if (sourcePath !== undefined) list.sourcePath = sourcePath;
    return list;
  }

  if (!Array.isArray(raw.plugins) || raw.plugins.length === 0) throw invalid(`${where}: "plugins" must be a non-empty array`);
  let cniVersion: string;
  let cniVersions: string[] | undefined;
  if (raw.cniVersions !== undefined) {
    if (!Array.isArray(raw.cniVersions) || !raw.cniVersions.every((v) => typeof v === 'string')) {
      throw invalid(`${where}: "cniVersions" must be an array of strings`);
    }
    cniVersions = raw.cniVersions;
    // Spec 1.1: the highest listed version this runtime understands wins over cniVersion.
    const usable = cniVersions.filter(isKnownVersion).sort((a, b) => compareVersions(b, a));
    if (usable[0] === undefined && raw.cniVersion === undefined) {
      throw invalid(`${where}: none of cniVersions [${cniVersions.join(', ')}] is supported`);
    }
    cniVersion = usable[0] ?? parseVersion(raw.cniVersion, where);
  } else {
    cniVersion = parseVersion(raw.cniVersion, where);
  }
  const plugins = raw.plugins.map((plugin, index) => parsePlugin(plugin, index, where));
  const list: NetConfList = { cniVersion, name, plugins, bytes: Buffer.from(bytes) };
  if (cniVersions) list.cniVersions = cniVersions;
  const disableCheck = parseFlag(raw.disableCheck, 'disableCheck', where);
  if (disableCheck !== undefined) list.disableCheck = disableCheck;
  const disableGC = parseFlag(raw.disableGC, 'disableGC', where);
  if (disableGC !== undefined) list.disableGC = disableGC;
  if (sourcePath !== undefined) list.sourcePath = sourcePath;
  return list;
}

/** The bytes a list is cached with: the original file, or a canonical rendering for lists built in code. */
export function confListBytes(list: NetConfList): Buffer {
  if (list.bytes) return list.bytes;
  const { bytes: _bytes, sourcePath: _sourcePath, ...rest } = list;
  return Buffer.from(JSON.stringify(rest));
}

export type InvalidConfCallback = (path: string, error: PluginError) => void;

/** Config files of a directory in libcni's order; a missing directory holds none. */
async function confFiles(confDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(confDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PluginError('STATE_FAILED', `cannot read CNI config dir ${confDir}: ${(err as Error).message}`, { cause: err });
  }
  const candidates = entries.filter((entry) => entry.isFile() || entry.isSymbolicLink()).map((entry) => entry.name);
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const lists = candidates.filter((file) => LIST_EXTENSIONS.includes(extname(file))).sort(byName);
  const singles = candidates.filter((file) => SINGLE_EXTENSIONS.includes(extname(file))).sort(byName);
  return [...lists, ...singles].map((file) => join(confDir, file));
}

async function loadFile(path: string): Promise<NetConfList> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw invalid(`${path}: cannot read: ${(err as Error).message}`);
  }
  return parseConf(bytes, path, LIST_EXTENSIONS.includes(extname(path)));
}

/** All valid network configs of `confDir`, in libcni's order. Invalid files are skipped and reported. */
export async function loadConfLists(confDir: string, onInvalid?: InvalidConfCallback): Promise<NetConfList[]> {
  const lists: NetConfList[] = [];
  for (const path of await confFiles(confDir)) {
    try {
      lists.push(await loadFile(path));
    } catch (err) {
      if (!(err instanceof PluginError)) throw err;
      onInvalid?.(path, err);
    }
  }
  return lists;
}

/** The first config (in libcni's order) whose network name is `name`. */
export async function loadConfListByName(confDir: string, name: string, onInvalid?: InvalidConfCallback): Promise<NetConfList> {
  validateNetworkName(name);
  for (const list of await loadConfLists(confDir, onInvalid)) {
    if (list.name === name) return list;
  }
  throw notFound(`no CNI network config named "${name}" in ${confDir}`);
}

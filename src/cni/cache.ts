/**
 * libcni's result cache, in its on-disk format and location, so other CNI
 * tools can read our attachments and we can read theirs:
 * `<cacheDir>/results/<networkName>-<containerId>-<ifName>` holding
 * `{"kind":"cniCacheV1", containerId, config (base64), ifName, networkName,
 *   netns?, cniArgs?, capabilityArgs?, result?}`.
 * On disk the result stays in the version the chain produced (as libcni
 * keeps it); readers of this module get it normalised to 1.0.0.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../errors.js';
import { removeIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import type { CachedAttachment } from './types.js';
import { validateContainerId, validateIfName, validateNetworkName } from './validate.js';
import { normalizeResult } from './version.js';
import { isRecord } from '../util/is-record.js';

export const CACHE_KIND = 'cniCacheV1';

export const resultsDir = (cacheDir: string): string => join(cacheDir, 'results');

export function cacheFilePath(cacheDir: string, networkName: string, containerId: string, ifName: string): string {
  validateNetworkName(networkName);
  validateContainerId(containerId);
  validateIfName(ifName);
  return join(resultsDir(cacheDir), `${networkName}-${containerId}-${ifName}`);
}

function corrupt(path: string, why: string, cause?: unknown): PluginError {
  return new PluginError('STATE_FAILED', `corrupt CNI cache entry ${path}: ${why}`, { cause });
}

/** Parses one cache file; the result comes back in the 1.0.0 shape. */
export function parseCacheEntry(text: string, path: string): CachedAttachment {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw corrupt(path, 'invalid JSON', err);
  }
  if (!isRecord(raw)) throw corrupt(path, 'not a JSON object');
  if (raw.kind !== CACHE_KIND) throw corrupt(path, `unknown kind ${JSON.stringify(raw.kind)}`);
  for (const field of ['containerId', 'ifName', 'networkName', 'config'] as const) {
    if (typeof raw[field] !== 'string') throw corrupt(path, `missing "${field}"`);
  }
  const entry: CachedAttachment = {
    kind: CACHE_KIND,
    containerId: raw.containerId as string,
    config: raw.config as string,
    ifName: raw.ifName as string,
    networkName: raw.networkName as string,
  };
  if (typeof raw.netns === 'string') entry.netns = raw.netns;
  if (raw.cniArgs !== undefined && raw.cniArgs !== null) {
    const pairs = raw.cniArgs;
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2 && p.every((s) => typeof s === 'string'))) {
      throw corrupt(path, '"cniArgs" is not a list of [key, value] pairs');
    }
    entry.cniArgs = pairs as Array<[string, string]>;
  }
  if (raw.capabilityArgs !== undefined && raw.capabilityArgs !== null) {
    if (!isRecord(raw.capabilityArgs)) throw corrupt(path, '"capabilityArgs" is not an object');
    entry.capabilityArgs = raw.capabilityArgs;
  }
  if (raw.result !== undefined && raw.result !== null) {
    try {
      // libcni treats a result without cniVersion as 0.1.0; ours always carry one.
      entry.result = normalizeResult(raw.result, '0.1.0');
    } catch (err) {
      throw corrupt(path, `unreadable result: ${(err as Error).message}`, err);
    }
  }
  return entry;
}

/** The cache file body. `result` is written as given (the caller picks its version). */
export function renderCacheEntry(entry: CachedAttachment): Record<string, unknown> {
  const body: Record<string, unknown> = {
    kind: CACHE_KIND,
    containerId: entry.containerId,
    config: entry.config,
    ifName: entry.ifName,
    networkName: entry.networkName,
  };
  // libcni omits empty optional fields.
  if (entry.netns) body.netns = entry.netns;
  if (entry.cniArgs && entry.cniArgs.length > 0) body.cniArgs = entry.cniArgs;
  if (entry.capabilityArgs && Object.keys(entry.capabilityArgs).length > 0) body.capabilityArgs = entry.capabilityArgs;
  if (entry.result) body.result = entry.result;
  return body;
}

export async function writeCacheEntry(cacheDir: string, entry: CachedAttachment): Promise<void> {
  const path = cacheFilePath(cacheDir, entry.networkName, entry.containerId, entry.ifName);
  try {
    await writeJsonAtomically(path, renderCacheEntry(entry), { mode: 0o600, fsync: false });
  } catch (err) {
    throw new PluginError('STATE_FAILED', `cannot write CNI cache entry ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Undefined when there is no entry; STATE_FAILED when it exists but cannot be understood. */
export async function readCacheEntry(cacheDir: string, networkName: string, containerId: string, ifName: string): Promise<CachedAttachment | undefined> {
  const path = cacheFilePath(cacheDir, networkName, containerId, ifName);
  const text = await readIfExists(path);
  return text === undefined ? undefined : parseCacheEntry(text, path);
}

export async function removeCacheEntry(cacheDir: string, networkName: string, containerId: string, ifName: string): Promise<void> {
  const path = cacheFilePath(cacheDir, networkName, containerId, ifName);
  try {
    await removeIfExists(path);
  } catch (err) {
    throw new PluginError('STATE_FAILED', `cannot remove CNI cache entry ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PluginError('STATE_FAILED', `cannot read CNI cache entry ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Every readable entry, optionally only those whose file name could belong to
 * the filter. Names may contain '-', so the fields inside decide the match.
 */
export async function listCacheEntries(
  cacheDir: string,
  filter: { networkName?: string; containerId?: string; ifName?: string } = {},
  onCorrupt?: (path: string, error: PluginError) => void,
): Promise<CachedAttachment[]> {
  const dir = resultsDir(cacheDir);
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PluginError('STATE_FAILED', `cannot list CNI cache dir ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const prefix = filter.networkName !== undefined ? `${filter.networkName}-` : '';
  const suffix = `${filter.containerId !== undefined ? `-${filter.containerId}` : ''}${filter.ifName !== undefined ? `-${filter.ifName}` : ''}`;
  const entries: CachedAttachment[] = [];
  for (const name of names.sort()) {
    if (!name.startsWith(prefix) || !name.endsWith(suffix)) continue;
    const path = join(dir, name);
    let entry: CachedAttachment;
    try {
      const text = await readIfExists(path);
      if (text === undefined) continue;
      entry = parseCacheEntry(text, path);
    } catch (err) {
      if (err instanceof PluginError) {
        onCorrupt?.(path, err);
        continue;
      }
      throw err;
    }
    // Only a file named after its own fields is an entry (writeFileAtomically's temp files are not).
    if (name !== `${entry.networkName}-${entry.containerId}-${entry.ifName}`) continue;
    if (filter.networkName !== undefined && entry.networkName !== filter.networkName) continue;
    if (filter.containerId !== undefined && entry.containerId !== filter.containerId) continue;
    if (filter.ifName !== undefined && entry.ifName !== filter.ifName) continue;
    entries.push(entry);
  }
  return entries;
}

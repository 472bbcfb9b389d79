/**
 * CNI spec versions and result conversion. Inside the runtime every result is
 * kept in the 1.0.0 shape; a plugin of an older list version gets its
 * prevResult converted back to that version, as the SPEC requires.
 *
 * Result shapes:
 *  - 0.1.0 / 0.2.0: `ip4` / `ip6` objects ({ip, gateway, routes}) plus `dns`.
 *  - 0.3.0 / 0.3.1 / 0.4.0: `interfaces`, `ips[]` carrying `version: "4"|"6"`, `routes`, `dns`.
 *  - 1.0.0 / 1.1.0: as 0.4.0 without `ips[].version`.
 */
import { isIPv4 } from 'node:net';
import { invalid } from '../errors.js';
import type { CniIpConfig, CniResult, CniRoute } from './types.js';
import { isRecord } from '../util/is-record.js';

export const KNOWN_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The version results are normalised to. */
export const INTERNAL_RESULT_VERSION = '1.0.0';
/** Highest version this runtime speaks. */
export const LATEST_VERSION = '1.1.0';

export function isKnownVersion(version: string): boolean {
  return (KNOWN_VERSIONS as readonly string[]).includes(version);
}

/** Numeric comparison of dotted versions ("0.10.0" > "0.4.0"); non-numeric parts compare as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff < 0 ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (version: string, minimum: string): boolean => compareVersions(version, minimum) >= 0;

/**
 * The highest of `candidates` that every plugin supports (each entry of
 * `pluginSupport` is one plugin's `supportedVersions`). Undefined when there is none.
 */
export function negotiateVersion(candidates: readonly string[], pluginSupport: ReadonlyArray<readonly string[]>): string | undefined {
  const sorted = [...new Set(candidates)].sort((a, b) => compareVersions(b, a));
  return sorted.find((version) => pluginSupport.every((supported) => supported.includes(version)));
}

const family = (address: string): '4' | '6' => (isIPv4(address.split('/')[0] ?? '') ? '4' : '6');

/** Brings any supported result into the internal 1.0.0 shape. */
function toInternal(raw: Record<string, unknown>, fromVersion: string): CniResult {
  if (compareVersions(fromVersion, '0.3.0') < 0) return legacyToInternal(raw);
  const { cniVersion: _ignored, ips, interfaces, routes, ...rest } = raw;
  const result: CniResult = { cniVersion: INTERNAL_RESULT_VERSION };
  if (Array.isArray(interfaces)) result.interfaces = interfaces.filter(isRecord) as unknown as CniResult['interfaces'];
  if (Array.isArray(ips)) {
    result.ips = ips.filter(isRecord).map((ip) => {
      const { version: _version, interface: index, ...fields } = ip;
      const converted = { ...fields } as unknown as CniIpConfig;
      // Some plugins write `interface: -1` (or null) for "no interface"; the 1.0.0 shape omits it.
      if (typeof index === 'number' && Number.isInteger(index) && index >= 0) converted.interface = index;
      return converted;
    });
  }
  if (Array.isArray(routes)) result.routes = routes.filter(isRecord) as unknown as CniRoute[];
  // dns and any keys a plugin adds are carried through unchanged.
  return Object.assign(result, rest);
}

function legacyToInternal(raw: Record<string, unknown>): CniResult {
  const result: CniResult = { cniVersion: INTERNAL_RESULT_VERSION };
  const ips: CniIpConfig[] = [];
  const routes: CniRoute[] = [];
  for (const key of ['ip4', 'ip6'] as const) {
    const block = raw[key];
    if (!isRecord(block)) continue;
    if (typeof block.ip === 'string') {
      const ip: CniIpConfig = { address: block.ip };
      if (typeof block.gateway === 'string') ip.gateway = block.gateway;
      ips.push(ip);
    }
    if (Array.isArray(block.routes)) routes.push(...(block.routes.filter(isRecord) as unknown as CniRoute[]));
  }
  if (ips.length > 0) result.ips = ips;
  if (routes.length > 0) result.routes = routes;
  if (isRecord(raw.dns)) result.dns = raw.dns;
  return result;
}

/** Renders an internal result in `toVersion`'s shape. */
function fromInternal(result: CniResult, toVersion: string): CniResult {
  if (compareVersions(toVersion, '0.3.0') < 0) return internalToLegacy(result, toVersion);
  const converted: CniResult = { ...result, cniVersion: toVersion };
  if (result.ips) {
    converted.ips = compareVersions(toVersion, '1.0.0') < 0
      ? result.ips.map((ip) => ({ ...ip, version: family(ip.address) }))
      : result.ips.map((ip) => ({ ...ip }));
  }
  return converted;
}

function internalToLegacy(result: CniResult, toVersion: string): CniResult {
  const converted: CniResult = { cniVersion: toVersion };
  for (const fam of ['4', '6'] as const) {
    const ip = result.ips?.find((candidate) => family(candidate.address) === fam);
    const familyRoutes = (result.routes ?? []).filter((route) => family(route.dst) === fam);
    if (!ip) continue;
    const block: Record<string, unknown> = { ip: ip.address };
    if (ip.gateway) block.gateway = ip.gateway;
    if (familyRoutes.length > 0) block.routes = familyRoutes;
    converted[fam === '4' ? 'ip4' : 'ip6'] = block;
  }
  if (result.dns) converted.dns = result.dns;
  return converted;
}

/**
 * Converts a result between spec versions. `fromVersion` is used when the
 * result carries no `cniVersion` of its own (plugins may omit it).
 */
export function convertResult(result: unknown, fromVersion: string, toVersion: string): CniResult {
  if (!isRecord(result)) throw invalid('CNI result is not a JSON object');
  const declared = typeof result.cniVersion === 'string' && result.cniVersion !== '' ? result.cniVersion : fromVersion;
  if (!isKnownVersion(declared)) throw invalid(`unsupported CNI result version "${declared}"`);
  if (!isKnownVersion(toVersion)) throw invalid(`unsupported CNI result version "${toVersion}"`);
  return fromInternal(toInternal(result, declared), toVersion);
}

/** Shorthand: any result (or one missing its cniVersion) into the internal 1.0.0 shape. */
export function normalizeResult(result: unknown, fallbackVersion: string): CniResult {
  return convertResult(result, fallbackVersion, INTERNAL_RESULT_VERSION);
}

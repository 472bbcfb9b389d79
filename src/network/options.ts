import { invalid } from '../errors.js';
import { OPT } from '../docker/api.js';

/** Driver options (`docker network create -o key=value`) after validation. */
export interface NetworkOptions {
  /** Use this conflist from the conf dir instead of a generated bridge. */
  cniNetwork?: string;
  bridge?: string;
  mtu?: number;
  masquerade: boolean;
  icc: boolean;
  isolate: boolean;
  hostBindingIp?: string;
}

/** Each accepted key: Docker's bridge-driver name where one exists, plus a `cni.*` equivalent. */
export const NETWORK_OPTION_KEYS = {
  cniNetwork: ['cni.network'],
  bridge: [OPT.bridgeName, 'cni.bridge'],
  mtu: [OPT.mtu, 'cni.mtu'],
  masquerade: [OPT.enableIpMasquerade, 'cni.masquerade'],
  icc: [OPT.enableIcc, 'cni.icc'],
  isolate: ['cni.isolation'],
  hostBindingIp: [OPT.hostBindingIpv4, 'cni.host_binding_ip'],
} as const;

/** Keys Docker itself adds or that only matter to Docker; accepted and ignored. */
const IGNORED_KEYS = new Set([
  'com.docker.network.bridge.default_bridge',
  'com.docker.network.container_iface_prefix',
  'com.docker.network.bridge.gateway_mode_ipv4',
  'com.docker.network.bridge.gateway_mode_ipv6',
]);

const CNI_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function parseBool(key: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw invalid(`option ${key}="${value}": expected true or false`);
}

/** Docker passes -o values as strings inside Options["com.docker.network.generic"]. */
export function readGenericOptions(options: Record<string, unknown> | null | undefined): Record<string, string> {
  const generic = options?.[OPT.generic];
  if (generic === undefined || generic === null) return {};
  if (typeof generic !== 'object' || Array.isArray(generic)) throw invalid(`${OPT.generic} must be an object`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(generic as Record<string, unknown>)) {
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
    else throw invalid(`option ${key}: expected a string value`);
  }
  return out;
}

export function parseNetworkOptions(raw: Record<string, string>): NetworkOptions {
  const known = new Map<string, keyof typeof NETWORK_OPTION_KEYS>();
  for (const [field, keys] of Object.entries(NETWORK_OPTION_KEYS)) {
    for (const key of keys) known.set(key, field as keyof typeof NETWORK_OPTION_KEYS);
  }
  const seen = new Map<keyof typeof NETWORK_OPTION_KEYS, string>();
  const result: NetworkOptions = { masquerade: true, icc: true, isolate: true };
  for (const [key, value] of Object.entries(raw)) {
    if (IGNORED_KEYS.has(key)) continue;
    const field = known.get(key);
    if (!field) {
      const supported = [...known.keys()].join(', ');
      throw invalid(`unsupported option "${key}" (supported: ${supported})`);
    }
    const earlier = seen.get(field);
    if (earlier !== undefined) throw invalid(`options ${earlier} and ${key} set the same thing; use one`);
    seen.set(field, key);
    switch (field) {
      case 'cniNetwork':
        if (!CNI_NAME.test(value)) {
          throw invalid(`option ${key}="${value}": must be a CNI network name ([A-Za-z0-9_.-], no paths)`);
        }
        result.cniNetwork = value;
        break;
      case 'bridge':
        if (!IFNAME.test(value)) throw invalid(`option ${key}="${value}": must be an interface name of 1-15 chars [A-Za-z0-9_.-]`);
        result.bridge = value;
        break;
      case 'mtu': {
        const mtu = Number(value);
        if (!/^\d+$/.test(value) || mtu < 68 || mtu > 65535) throw invalid(`option ${key}="${value}": MTU must be an integer 68-65535`);
        result.mtu = mtu;
        break;
      }
      case 'masquerade':
      case 'icc':
      case 'isolate':
        result[field] = parseBool(key, value);
        break;
      case 'hostBindingIp':
        if (!IPV4.test(value)) throw invalid(`option ${key}="${value}": must be an IPv4 address`);
        result.hostBindingIp = value;
        break;
    }
  }
  if (result.cniNetwork !== undefined) {
    for (const field of ['bridge', 'mtu'] as const) {
      const key = seen.get(field);
      if (key) throw invalid(`option ${key} applies to generated bridge networks, not to cni.network=${result.cniNetwork}`);
    }
  }
  return result;
}

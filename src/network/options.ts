import { invalid } from '../errors.js';
import { OPT } from '../docker/api.js';
import { RESERVED_CNI_ARGS } from '../names.js';

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
  /** Traffic shaping for every endpoint, passed as the CNI `bandwidth` capability. */
  bandwidth?: BandwidthLimits;
  /** Multi-host data path of a generated network (see src/cluster/). */
  clusterMode?: 'routed';
}

/** CNI's `bandwidth` capability (runtimeConfig.bandwidth): rates in bits/s, bursts in bits. */
export interface BandwidthLimits {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** `cni.bandwidth.<key>` option suffix -> capability field. */
const BANDWIDTH_KEYS = {
  ingress_rate: 'ingressRate',
  ingress_burst: 'ingressBurst',
  egress_rate: 'egressRate',
  egress_burst: 'egressBurst',
} as const satisfies Record<string, keyof BandwidthLimits>;
const BANDWIDTH_PREFIX = 'cni.bandwidth.';

/** Each accepted key: Docker's bridge-driver name where one exists, plus a `cni.*` equivalent. */
export const NETWORK_OPTION_KEYS = {
  cniNetwork: ['cni.network'],
  bridge: [OPT.bridgeName, 'cni.bridge'],
  mtu: [OPT.mtu, 'cni.mtu'],
  masquerade: [OPT.enableIpMasquerade, 'cni.masquerade'],
  icc: [OPT.enableIcc, 'cni.icc'],
  isolate: ['cni.isolation'],
  hostBindingIp: [OPT.hostBindingIpv4, 'cni.host_binding_ip'],
  clusterMode: ['cni.cluster.mode'],
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
  const bandwidthRaw: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (IGNORED_KEYS.has(key)) continue;
    if (key.startsWith(BANDWIDTH_PREFIX)) {
      bandwidthRaw[key] = value;
      continue;
    }
    const field = known.get(key);
    if (!field) {
      const supported = [...known.keys(), ...Object.keys(BANDWIDTH_KEYS).map((k) => BANDWIDTH_PREFIX + k)].join(', ');
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
      case 'clusterMode':
        // L2 spanning networks need no driver mode: a macvlan conflist with the cluster IPAM does it.
        if (value !== 'routed') throw invalid(`option ${key}="${value}": the only generated multi-host mode is "routed" (for L2 use a macvlan conflist)`);
        result.clusterMode = value;
        break;
    }
  }
  const bandwidth = parseBandwidth(bandwidthRaw);
  if (bandwidth) result.bandwidth = bandwidth;
  if (result.cniNetwork !== undefined) {
    for (const field of ['bridge', 'mtu', 'clusterMode'] as const) {
      const key = seen.get(field);
      if (key) throw invalid(`option ${key} applies to generated bridge networks, not to cni.network=${result.cniNetwork}`);
    }
  }
  return result;
}

/** Largest value the bandwidth plugin takes (it converts to bytes in a uint64; keep well inside JS's safe integers). */
const MAX_BANDWIDTH = 2 ** 50;

/**
 * Reads `cni.bandwidth.{ingress,egress}_{rate,burst}` (rates in bits/s, bursts
 * in bits). Each direction needs both its rate and its burst, as the CNI
 * bandwidth plugin rejects one without the other. Undefined when none is set.
 */
export function parseBandwidth(raw: Record<string, string>): BandwidthLimits | undefined {
  const limits: BandwidthLimits = {};
  for (const [key, value] of Object.entries(raw)) Object.assign(limits, parseBandwidthField(key, value));
  if (Object.keys(limits).length === 0) return undefined;
  assertBandwidthPairs(limits);
  return limits;
}

/** Per-endpoint options (`docker network connect --driver-opt k=v`, `docker run --network name=N,driver-opt=k=v`). */
export interface EndpointOptions {
  /** Overrides the network's limits field by field. */
  bandwidth?: BandwidthLimits;
  /** Appended to CNI_ARGS in the given order; keys upper-cased. */
  cniArgs: Array<[string, string]>;
}

const CNI_ARGS_PREFIX = 'cni.args.';
const CNI_ARG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Reads the `cni.*` keys of CreateEndpoint Options. Docker puts its own keys
 * (com.docker.*) in the same map, so only the `cni.` namespace is checked, and
 * an unknown key there is an error rather than silently ignored.
 */
export function parseEndpointOptions(options: Record<string, unknown> | null | undefined): EndpointOptions {
  const result: EndpointOptions = { cniArgs: [] };
  const bandwidthRaw: Record<string, string> = {};
  for (const [key, rawValue] of Object.entries(options ?? {})) {
    if (!key.startsWith('cni.')) continue;
    if (typeof rawValue !== 'string') throw invalid(`endpoint option ${key}: expected a string value`);
    if (key.startsWith(BANDWIDTH_PREFIX)) {
      bandwidthRaw[key] = rawValue;
    } else if (key.startsWith(CNI_ARGS_PREFIX)) {
      // Upper-cased: the 20.10 client lower-cases `--network name=N,driver-opt=` keys, and CNI_ARGS keys are upper case by convention (IP, MAC, K8S_POD_NAME).
      const argKey = key.slice(CNI_ARGS_PREFIX.length).toUpperCase();
      if (!CNI_ARG_KEY.test(argKey)) throw invalid(`endpoint option ${key}: the CNI_ARGS key must match [A-Za-z_][A-Za-z0-9_]*`);
      if ([...RESERVED_CNI_ARGS].some((reserved) => reserved.toUpperCase() === argKey)) {
        throw invalid(`endpoint option ${key}: ${argKey} is set by docker-cni (use --ip / --mac-address for addresses)`);
      }
      if (/[;=\0]/.test(rawValue)) throw invalid(`endpoint option ${key}="${rawValue}": a CNI_ARGS value cannot contain ';' or '='`);
      result.cniArgs.push([argKey, rawValue]);
    } else {
      throw invalid(
        `unsupported endpoint option "${key}" (supported: ${Object.keys(BANDWIDTH_KEYS).map((k) => BANDWIDTH_PREFIX + k).join(', ')}, ${CNI_ARGS_PREFIX}<KEY>)`,
      );
    }
  }
  const bandwidth = parseEndpointBandwidth(bandwidthRaw);
  if (bandwidth) result.bandwidth = bandwidth;
  return result;
}

/** Endpoint limits may set one field only (the rest comes from the network), so pairs are checked after merging. */
function parseEndpointBandwidth(raw: Record<string, string>): BandwidthLimits | undefined {
  const limits: BandwidthLimits = {};
  for (const [key, value] of Object.entries(raw)) Object.assign(limits, parseBandwidthField(key, value));
  return Object.keys(limits).length > 0 ? limits : undefined;
}

function parseBandwidthField(key: string, value: string): BandwidthLimits {
  const suffix = key.startsWith(BANDWIDTH_PREFIX) ? key.slice(BANDWIDTH_PREFIX.length) : '';
  const field = Object.hasOwn(BANDWIDTH_KEYS, suffix) ? BANDWIDTH_KEYS[suffix as keyof typeof BANDWIDTH_KEYS] : undefined;
  if (!field) {
    throw invalid(`unsupported option "${key}" (supported: ${Object.keys(BANDWIDTH_KEYS).map((k) => BANDWIDTH_PREFIX + k).join(', ')})`);
  }
  const amount = Number(value);
  if (!/^\d+$/.test(value.trim()) || amount <= 0 || amount > MAX_BANDWIDTH) {
    throw invalid(`option ${key}="${value}": expected a positive integer (${field.endsWith('Rate') ? 'bits per second' : 'bits'})`);
  }
  return { [field]: amount };
}

/** The network's limits overridden field by field by the endpoint's; each direction must end up with rate and burst. */
export function mergeBandwidth(network: BandwidthLimits | undefined, endpoint: BandwidthLimits | undefined): BandwidthLimits | undefined {
  if (!network && !endpoint) return undefined;
  const merged: BandwidthLimits = { ...network, ...endpoint };
  assertBandwidthPairs(merged);
  return merged;
}

function assertBandwidthPairs(limits: BandwidthLimits): void {
  for (const direction of ['ingress', 'egress'] as const) {
    if ((limits[`${direction}Rate`] === undefined) !== (limits[`${direction}Burst`] === undefined)) {
      throw invalid(`options ${BANDWIDTH_PREFIX}${direction}_rate and ${BANDWIDTH_PREFIX}${direction}_burst must be given together`);
    }
  }
}

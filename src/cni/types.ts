/**
 * The CNI side of the wire: network configuration and result types as in the
 * CNI SPEC (0.3.x - 1.1.0). Nothing in this module knows about Docker.
 * Results are normalised to the 1.0.0 shape inside the runtime.
 */

export type CniVerb = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

/** One plugin entry of a conflist. Unknown keys are kept and passed through. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  ipam?: { type?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** A network configuration list (a .conflist, or an up-converted .conf). */
export interface NetConfList {
  cniVersion: string;
  /** Spec 1.1: the versions this list is valid for; the highest supported wins. */
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginConf[];
  /** Where it was loaded from, if from disk. */
  sourcePath?: string;
  /** The exact bytes the list came from (for the cache's `config`). */
  bytes?: Buffer;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}
export interface CniIpConfig {
  /** CIDR, e.g. 10.1.0.5/24 */
  address: string;
  gateway?: string;
  /** Index into interfaces; may be absent or -1. */
  interface?: number;
}
export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
/** A result in 1.0.0 shape (the runtime converts older versions into this). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
  [key: string]: unknown;
}

/** The spec's error body. */
export interface CniErrorBody {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

export const CNI_ERROR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  internal: 999,
} as const;

/** Port mapping as CNI portmap's `portMappings` capability wants it. */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/** The per-attachment runtime parameters (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string;
  /** Path of the network namespace, e.g. /run/netns/x. May be '' for DEL when gone. */
  netns: string;
  ifName: string;
  /** CNI_ARGS as ordered pairs; rendered as K=V;K=V. */
  args?: Array<[string, string]>;
  /** Capability name -> value (portMappings, ips, mac, bandwidth, dns, ...). */
  capabilityArgs?: Record<string, unknown>;
  /**
   * CNI_NETNS_OVERRIDE=1: `netns` is the caller's own namespace on purpose.
   * Plugins built on skel ≥ 1.3 otherwise fail ADD after doing it ("plugin's
   * netns and netns from CNI_NETNS should not be the same").
   */
  netnsOverride?: boolean;
}

/** What libcni caches per attachment (cniCacheV1). */
export interface CachedAttachment {
  kind: 'cniCacheV1';
  containerId: string;
  /** base64 of the conflist bytes used for ADD. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: Array<[string, string]>;
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
}

/** Spec 1.1 GC: the attachments that are still valid. */
export interface GcAttachment {
  containerId: string;
  ifName: string;
}

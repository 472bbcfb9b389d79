/**
 * Every name docker-cni derives from an ID, with the matcher that recognises
 * it again. The reconciler finds leftovers by these names and the firewall
 * finds rules by these tags, so a name and its matcher must change together:
 * they live here, and nowhere else spells them.
 *
 * Kernel interface names hold at most 15 characters.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Characters of a Docker network ID that tag its rules and generated names. */
const NETWORK_TAG_CHARS = 12;

/** The short form of a network ID used in tags, logs and the reconciler's prefix matching. */
export const shortId = (id: string): string => id.slice(0, NETWORK_TAG_CHARS);

// ---- host link (the container end before Docker moves it) --------------------------

const HOST_LINK_PREFIX = 'dc';
const HOST_LINK_HEX = 13;
const HOST_LINK = /^dc[0-9a-f]{13}$/;

/** Host-side name of the link handed to Docker: deterministic from the endpoint ID, ≤ 15 chars. */
export function hostLinkNameFor(endpointId: string): string {
  const hex = /^[0-9a-f]{13}/.test(endpointId)
    ? endpointId.slice(0, HOST_LINK_HEX)
    : createHash('sha256').update(endpointId).digest('hex').slice(0, HOST_LINK_HEX);
  return `${HOST_LINK_PREFIX}${hex}`;
}

/** The endpoint-ID prefix a host link was named after, or undefined if the link is not one of ours. */
export function endpointPrefixOfHostLink(link: string): string | undefined {
  return HOST_LINK.test(link) ? link.slice(HOST_LINK_PREFIX.length) : undefined;
}

// ---- generated networks -------------------------------------------------------------

const GENERATED_PREFIX = 'dcni-';
const BRIDGE_ID_CHARS = 10;
/** Local network IDs are hex; swarm-scoped ones are base 36 (lowercase letters and digits). */
const GENERATED_BRIDGE = /^dcni-[0-9a-z]{10}$/;

/** Deterministic bridge name from the network ID: ≤ 15 chars, unique per network. */
export function bridgeNameFor(networkId: string): string {
  return `${GENERATED_PREFIX}${networkId.slice(0, BRIDGE_ID_CHARS)}`;
}

/** The network-ID prefix a generated bridge was named after, or undefined if the link is not one. */
export function networkPrefixOfBridge(link: string): string | undefined {
  return GENERATED_BRIDGE.test(link) ? link.slice(GENERATED_PREFIX.length) : undefined;
}

/**
 * CNI network name of an endpoint's port publication: portmap runs as its own
 * attachment (own cache entry, own portmap chains) beside the endpoint's chain,
 * under the same container ID so the reconciler still sees whose it is.
 */
export function publicationCniName(cniName: string): string {
  return `${cniName}-ports`;
}

/** CNI network name (and so the cache key prefix) of a generated network. */
export function generatedCniName(networkId: string): string {
  return `${GENERATED_PREFIX}${shortId(networkId)}`;
}

// ---- firewall tag ----------------------------------------------------------------------

/** The comment that tags every rule of one network, so its rules can be found and removed exactly. */
export function networkTag(networkId: string): string {
  return `dcni:${shortId(networkId)}`;
}

/** The host-wide lock (an abstract unix socket name) around every change of our iptables rules. */
export const FIREWALL_HOST_LOCK = 'docker-cni/firewall';

/** Network-ID prefixes of every network tag in an iptables-save dump. */
export function networkTagsIn(saved: string): string[] {
  const out: string[] = [];
  for (const match of saved.matchAll(/--comment "?dcni:([0-9A-Za-z_.-]{1,12})"?/g)) {
    if (match[1]) out.push(match[1]);
  }
  return out;
}

// ---- IPAM ------------------------------------------------------------------------------

/**
 * `dcni-` + 16 hex. Used as the record id, as host-local's network name and
 * hence as a directory name under its dataDir, so it must stay path-safe.
 */
export const POOL_ID_PATTERN = /^dcni-[0-9a-f]{16}$/;
export const isPoolId = (text: string): boolean => POOL_ID_PATTERN.test(text);
export const newPoolId = (): string => `${GENERATED_PREFIX}${randomBytes(8).toString('hex')}`;
/** Shown to users who pass a PoolID of someone else's. */
export const POOL_ID_SHAPE = 'dcni-<16 hex digits>';

/** Prefix of the container IDs under which host-local records our allocations. */
export const ALLOCATION_ID_PREFIX = 'dcni-alloc-';
export const newAllocationId = (): string => `${ALLOCATION_ID_PREFIX}${randomBytes(8).toString('hex')}`;
export const isAllocationId = (containerId: string): boolean => containerId.startsWith(ALLOCATION_ID_PREFIX);

// ---- staging namespaces ------------------------------------------------------------------

/** Default prefix of the staging netns names under /run/netns. */
export const DEFAULT_STAGING_PREFIX = 'dcni-stage';

/** Names carry the creating PID, so a second instance never deletes a live instance's namespaces. */
export const stagingNetnsName = (prefix: string, pid: number, counter: number): string => `${prefix}-${pid}-${counter}`;
export const isStagingNetnsOf = (prefix: string, name: string): boolean => name.startsWith(`${prefix}-`);
/** The PID a staging netns name carries, or undefined. */
export function stagingNetnsOwner(name: string): number | undefined {
  const pid = Number(/-(\d+)-\d+$/.exec(name)?.[1]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The ifname every chain runs with (each staging netns holds one operation at a time), and host-local's. */
export const CHAIN_IFNAME = 'eth0';

// ---- CNI_ARGS ------------------------------------------------------------------------------

export const CNI_ARG = {
  ignoreUnknown: 'IgnoreUnknown',
  networkId: 'DOCKER_NETWORK_ID',
  /** Every attachment the network driver makes carries it; the reconciler recognises ours by it. */
  endpointId: 'DOCKER_ENDPOINT_ID',
  ip: 'IP',
  mac: 'MAC',
} as const;

/**
 * CNI_ARGS keys docker-cni sets itself, plus IP and MAC: the address and MAC
 * come from Docker (--ip, --mac-address) and must stay what Docker re-applies.
 */
export const RESERVED_CNI_ARGS: ReadonlySet<string> = new Set(Object.values(CNI_ARG));

// ---- conf-dir networks -----------------------------------------------------------------------

/** Label on every Docker network the conf-dir sync creates: how it tells its own networks from a user's. */
export const MANAGED_NETWORK_LABEL = 'io.docker-cni.managed';
/** Label holding the sha256 of the conflist bytes a managed network was made from (a change means recreate). */
export const CONFLIST_DIGEST_LABEL = 'io.docker-cni.conflist-sha256';

/** Docker's driver name for a legacy plugin socket: its basename without `.sock`. */
export function driverNameOfSocket(socketPath: string): string {
  const base = socketPath.split('/').pop() ?? '';
  return base.replace(/\.(sock|spec|json)$/, '');
}

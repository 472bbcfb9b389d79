/**
 * Cluster settings. Cluster mode is on when etcd endpoints are configured;
 * every value comes from an environment variable so `docker plugin set`
 * configures the managed plugin.
 */
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parseIp } from '../util/ip-math.js';
import { readJsonIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import { ClusterError } from './errors.js';
import { DEFAULT_KEY_PREFIX, isHostId } from './keys.js';

export interface ClusterSettings {
  etcdEndpoints: string[];
  /** Empty: a persisted id made of the hostname and random hex. */
  hostId: string;
  keyPrefix: string;
  blockPrefixV4: number;
  blockPrefixV6: number;
  leaseTtlSeconds: number;
  /** This host's address other hosts route to (routed mode); or the interface to take it from. */
  underlayIp: string;
  underlayInterface: string;
}

export const CLUSTER_ENV: Record<keyof ClusterSettings, string> = {
  etcdEndpoints: 'DOCKER_CNI_CLUSTER_ETCD',
  hostId: 'DOCKER_CNI_CLUSTER_HOST_ID',
  keyPrefix: 'DOCKER_CNI_CLUSTER_KEY_PREFIX',
  blockPrefixV4: 'DOCKER_CNI_CLUSTER_BLOCK_PREFIX_V4',
  blockPrefixV6: 'DOCKER_CNI_CLUSTER_BLOCK_PREFIX_V6',
  leaseTtlSeconds: 'DOCKER_CNI_CLUSTER_LEASE_TTL',
  underlayIp: 'DOCKER_CNI_CLUSTER_UNDERLAY_IP',
  underlayInterface: 'DOCKER_CNI_CLUSTER_UNDERLAY_IF',
};

export const DEFAULT_CLUSTER_SETTINGS: ClusterSettings = {
  etcdEndpoints: [],
  hostId: '',
  keyPrefix: DEFAULT_KEY_PREFIX,
  blockPrefixV4: 26,
  blockPrefixV6: 122,
  leaseTtlSeconds: 30,
  underlayIp: '',
  underlayInterface: '',
};

function intFrom(env: NodeJS.ProcessEnv, key: keyof ClusterSettings, fallback: number): number {
  const text = env[CLUSTER_ENV[key]];
  if (text === undefined || text === '') return fallback;
  if (!/^[0-9]{1,6}$/.test(text)) throw new ClusterError('BAD_CONFIG', `${CLUSTER_ENV[key]}="${text}" is not a number`);
  return Number(text);
}

export function loadClusterSettings(env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  const text = (key: keyof ClusterSettings): string => (env[CLUSTER_ENV[key]] ?? '').trim();
  const endpoints = text('etcdEndpoints')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const settings: ClusterSettings = {
    etcdEndpoints: endpoints,
    hostId: text('hostId'),
    keyPrefix: text('keyPrefix') || DEFAULT_CLUSTER_SETTINGS.keyPrefix,
    blockPrefixV4: intFrom(env, 'blockPrefixV4', DEFAULT_CLUSTER_SETTINGS.blockPrefixV4),
    blockPrefixV6: intFrom(env, 'blockPrefixV6', DEFAULT_CLUSTER_SETTINGS.blockPrefixV6),
    leaseTtlSeconds: intFrom(env, 'leaseTtlSeconds', DEFAULT_CLUSTER_SETTINGS.leaseTtlSeconds),
    underlayIp: text('underlayIp'),
    underlayInterface: text('underlayInterface'),
  };
  if (settings.hostId && !isHostId(settings.hostId)) throw new ClusterError('BAD_CONFIG', `${CLUSTER_ENV.hostId}="${settings.hostId}" is not a valid host id`);
  if (settings.underlayIp && !parseIp(settings.underlayIp)) throw new ClusterError('BAD_CONFIG', `${CLUSTER_ENV.underlayIp}="${settings.underlayIp}" is not an address`);
  if (settings.underlayInterface && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(settings.underlayInterface)) {
    throw new ClusterError('BAD_CONFIG', `${CLUSTER_ENV.underlayInterface}="${settings.underlayInterface}" is not an interface name`);
  }
  return settings;
}

export const clusterEnabled = (s: ClusterSettings): boolean => s.etcdEndpoints.length > 0;

/**
 * The host id: configured, or made once and kept in the state dir so a
 * restarted plugin is the same host (and keeps its blocks).
 */
export async function resolveHostId(s: ClusterSettings, stateDir: string): Promise<string> {
  if (s.hostId) return s.hostId;
  const path = join(stateDir, 'cluster', 'host.json');
  const stored = await readJsonIfExists<{ hostId?: string }>(path);
  if (stored?.hostId && isHostId(stored.hostId)) return stored.hostId;
  const base = hostname().toLowerCase().replace(/[^a-z0-9_.-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 40) || 'host';
  const hostId = `${base}-${randomBytes(4).toString('hex')}`;
  await writeJsonAtomically(path, { hostId });
  return hostId;
}

/** The underlay address: configured, else the first IPv4 address of the configured interface. */
export function resolveUnderlayIp(s: ClusterSettings): string | undefined {
  if (s.underlayIp) return s.underlayIp;
  if (!s.underlayInterface) return undefined;
  const found = networkInterfaces()[s.underlayInterface]?.find((a) => a.family === 'IPv4' && !a.internal);
  if (!found) throw new ClusterError('BAD_CONFIG', `underlay interface ${s.underlayInterface} has no IPv4 address`);
  return found.address;
}

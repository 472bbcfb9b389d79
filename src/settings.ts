/**
 * Runtime settings. Every value has an embedded default, can be set by an
 * environment variable (so `docker plugin set` works for the managed plugin),
 * and by a CLI flag of the same name in kebab-case (`--state-dir`).
 */
import { DEFAULT_STAGING_PREFIX, driverNameOfSocket } from './names.js';

export interface Settings {
  /** Unix socket to serve. Legacy plugin: /run/docker/plugins/<driver>.sock */
  socketPath: string;
  /** docker-cni's own records that must outlive a reboot (networks, pools). */
  stateDir: string;
  /**
   * The endpoint records and their journal. They describe links and namespaces that a reboot removes, so they
   * belong with them on the run dir: a tmpfs on systemd hosts, where a write costs no file-system journal.
   */
  runDir: string;
  /** Where user conflists are found. */
  confDir: string;
  /** Plugin search path, first match wins. */
  binDirs: string[];
  /** libcni's cache dir; results live in <cacheDir>/results. */
  cacheDir: string;
  /** host-local's data dir (as in its `dataDir` option). */
  hostLocalDataDir: string;
  /** Candidate supernets for automatic IPv4 / IPv6 pools: "<cidr>/<subnet prefix>". */
  defaultPoolsV4: string[];
  defaultPoolsV6: string[];
  /** Per-plugin exec timeout. */
  pluginTimeoutMs: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Background reconciliation period; 0 disables the periodic run (startup run still happens). */
  reconcileIntervalMs: number;
  /** Docker API socket for background reconciliation only (never used in request handlers). */
  dockerSocket: string;
  /** Prefix of the staging netns names (under /run/netns). */
  stagingPrefix: string;
  /** Metrics and /healthz listener: '' (off), unix:/path, or <loopback address>:<port>. */
  metricsListen: string;
  /** Make every conflist of the conf dir a Docker network of the same name (background sync). */
  confSync: boolean;
  /** Docker's name for this driver; empty: the socket's basename (a managed plugin sets its alias, e.g. cni:latest). */
  driverName: string;
}

export const DEFAULT_SETTINGS: Settings = {
  socketPath: '/run/docker/plugins/cni.sock',
  stateDir: '/var/lib/docker-cni',
  runDir: '/run/docker-cni',
  confDir: '/etc/cni/net.d',
  binDirs: ['/opt/cni/bin', '/usr/lib/cni'],
  cacheDir: '/var/lib/cni',
  hostLocalDataDir: '/var/lib/cni/networks',
  defaultPoolsV4: ['10.231.0.0/16/24'],
  defaultPoolsV6: ['fd7d:c11d:4e7::/48/64'],
  pluginTimeoutMs: 20_000,
  logLevel: 'info',
  reconcileIntervalMs: 60_000,
  dockerSocket: '/var/run/docker.sock',
  stagingPrefix: DEFAULT_STAGING_PREFIX,
  metricsListen: '',
  confSync: true,
  driverName: '',
};

/** Environment variable for each setting. */
export const SETTINGS_ENV: Record<keyof Settings, string> = {
  socketPath: 'DOCKER_CNI_SOCKET',
  stateDir: 'DOCKER_CNI_STATE_DIR',
  runDir: 'DOCKER_CNI_RUN_DIR',
  confDir: 'CNI_CONF_DIR',
  binDirs: 'CNI_PATH',
  cacheDir: 'CNI_CACHE_DIR',
  hostLocalDataDir: 'CNI_HOST_LOCAL_DIR',
  defaultPoolsV4: 'DOCKER_CNI_DEFAULT_POOLS_V4',
  defaultPoolsV6: 'DOCKER_CNI_DEFAULT_POOLS_V6',
  pluginTimeoutMs: 'CNI_PLUGIN_TIMEOUT_MS',
  logLevel: 'LOG_LEVEL',
  reconcileIntervalMs: 'DOCKER_CNI_RECONCILE_INTERVAL_MS',
  dockerSocket: 'DOCKER_SOCKET',
  stagingPrefix: 'DOCKER_CNI_STAGING_PREFIX',
  metricsListen: 'DOCKER_CNI_METRICS_LISTEN',
  confSync: 'DOCKER_CNI_CONF_SYNC',
  driverName: 'DOCKER_CNI_DRIVER_NAME',
};

/** The driver name Docker knows this plugin by. */
export const driverNameOf = (settings: Settings): string => settings.driverName || driverNameOfSocket(settings.socketPath);

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Parses one raw string value into the setting's type; throws on nonsense. */
function parseValue<K extends keyof Settings>(key: K, raw: string): Settings[K] {
  const fail = (why: string): never => {
    throw new Error(`invalid ${SETTINGS_ENV[key]} (${key}) "${raw}": ${why}`);
  };
  switch (key) {
    case 'binDirs':
    case 'defaultPoolsV4':
    case 'defaultPoolsV6': {
      const separator = key === 'binDirs' ? ':' : ',';
      const parts = raw.split(separator).map((s) => s.trim()).filter(Boolean);
      if (parts.length === 0) fail('empty list');
      return parts as Settings[K];
    }
    case 'pluginTimeoutMs':
    case 'reconcileIntervalMs': {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) fail('not a non-negative integer');
      return n as Settings[K];
    }
    case 'confSync': {
      const value = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(value)) return true as Settings[K];
      if (['false', '0', 'no', 'off'].includes(value)) return false as Settings[K];
      return fail('not a boolean (true/false)');
    }
    case 'driverName': {
      // Docker plugin names: lower-case name, optional :tag (a managed plugin's alias).
      if (!/^[a-z0-9][a-z0-9._/-]{0,127}(:[A-Za-z0-9._-]{1,128})?$/.test(raw)) fail('not a Docker plugin name such as cni or cni:latest');
      return raw as Settings[K];
    }
    case 'logLevel': {
      const level = raw.toLowerCase();
      if (!(LOG_LEVELS as readonly string[]).includes(level)) fail(`one of ${LOG_LEVELS.join(', ')}`);
      return level as Settings[K];
    }
    case 'metricsListen': {
      // Checked in full (loopback only) by the listener at start; here only its shape.
      if (!/^(unix:\/|\/|\[[0-9a-fA-F:]+\]:\d+$|[\w.-]+:\d+$)/.test(raw.trim())) fail('unix:/path or <loopback address>:<port>');
      return raw.trim() as Settings[K];
    }
    default: {
      if (raw.trim() === '') fail('empty');
      if (key !== 'stagingPrefix' && !raw.startsWith('/')) fail('must be an absolute path');
      if (key === 'stagingPrefix' && !/^[a-z][a-z0-9-]{0,15}$/.test(raw)) fail('must match [a-z][a-z0-9-]{0,15}');
      return raw as Settings[K];
    }
  }
}

/** Defaults, overridden by environment, overridden by explicit values (CLI flags). */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof Settings, string>> = {},
): Settings {
  const settings: Settings = { ...DEFAULT_SETTINGS };
  for (const key of Object.keys(DEFAULT_SETTINGS) as Array<keyof Settings>) {
    const raw = overrides[key] ?? env[SETTINGS_ENV[key]];
    if (raw !== undefined && raw !== '') {
      (settings as unknown as Record<string, unknown>)[key] = parseValue(key, raw);
    }
  }
  return settings;
}

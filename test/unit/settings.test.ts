import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS, SETTINGS_ENV, loadSettings, type Settings } from '../../src/settings.js';

describe('loadSettings', () => {
  test('no environment gives the defaults', () => {
    assert.deepEqual(loadSettings({}), DEFAULT_SETTINGS);
    assert.deepEqual(DEFAULT_SETTINGS.binDirs, ['/opt/cni/bin', '/usr/lib/cni'], 'Debian puts plugins in /usr/lib/cni');
  });

  test('every setting has its own environment variable', () => {
    assert.deepEqual(Object.keys(SETTINGS_ENV).sort(), Object.keys(DEFAULT_SETTINGS).sort());
    assert.equal(new Set(Object.values(SETTINGS_ENV)).size, Object.keys(SETTINGS_ENV).length);
  });

  test('environment values are parsed into their types', () => {
    const settings = loadSettings({
      DOCKER_CNI_SOCKET: '/run/docker/plugins/cnitest.sock',
      DOCKER_CNI_STATE_DIR: '/tmp/state',
      DOCKER_CNI_RUN_DIR: '/tmp/run',
      CNI_CONF_DIR: '/tmp/net.d',
      CNI_PATH: '/a/bin: /b/bin ::',
      CNI_CACHE_DIR: '/tmp/cache',
      CNI_HOST_LOCAL_DIR: '/tmp/hl',
      DOCKER_CNI_DEFAULT_POOLS_V4: '10.231.0.0/16/24, 10.232.0.0/16/26',
      DOCKER_CNI_DEFAULT_POOLS_V6: 'fd7d:c11d:4e7::/48/64',
      CNI_PLUGIN_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'DEBUG',
      DOCKER_CNI_RECONCILE_INTERVAL_MS: '0',
      DOCKER_SOCKET: '/tmp/docker.sock',
      DOCKER_CNI_STAGING_PREFIX: 'dcni-t1',
      DOCKER_CNI_METRICS_LISTEN: '127.0.0.1:9464',
      DOCKER_CNI_CONF_SYNC: 'off',
      DOCKER_CNI_DRIVER_NAME: 'cni:latest',
      UNRELATED: 'ignored',
    });
    const expected: Settings = {
      socketPath: '/run/docker/plugins/cnitest.sock',
      stateDir: '/tmp/state',
      runDir: '/tmp/run',
      confDir: '/tmp/net.d',
      binDirs: ['/a/bin', '/b/bin'],
      cacheDir: '/tmp/cache',
      hostLocalDataDir: '/tmp/hl',
      defaultPoolsV4: ['10.231.0.0/16/24', '10.232.0.0/16/26'],
      defaultPoolsV6: ['fd7d:c11d:4e7::/48/64'],
      pluginTimeoutMs: 5000,
      logLevel: 'debug',
      reconcileIntervalMs: 0,
      dockerSocket: '/tmp/docker.sock',
      stagingPrefix: 'dcni-t1',
      metricsListen: '127.0.0.1:9464',
      confSync: false,
      driverName: 'cni:latest',
    };
    assert.deepEqual(settings, expected);
  });

  test('explicit overrides (CLI flags) beat the environment; empty values mean "not set"', () => {
    const settings = loadSettings(
      { DOCKER_CNI_STATE_DIR: '/env/state', LOG_LEVEL: 'warn', CNI_CONF_DIR: '' },
      { stateDir: '/flag/state', cacheDir: '' },
    );
    assert.equal(settings.stateDir, '/flag/state');
    assert.equal(settings.logLevel, 'warn');
    assert.equal(settings.confDir, DEFAULT_SETTINGS.confDir);
    assert.equal(settings.cacheDir, DEFAULT_SETTINGS.cacheDir);
  });

  test('loading does not change the defaults', () => {
    const before = structuredClone(DEFAULT_SETTINGS);
    loadSettings({ CNI_PATH: '/x' }, { pluginTimeoutMs: '1' });
    assert.deepEqual(DEFAULT_SETTINGS, before);
  });

  test('bad values are rejected, naming the environment variable and the value', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ CNI_PLUGIN_TIMEOUT_MS: 'soon' }, /CNI_PLUGIN_TIMEOUT_MS \(pluginTimeoutMs\) "soon"/],
      [{ CNI_PLUGIN_TIMEOUT_MS: '-5' }, /CNI_PLUGIN_TIMEOUT_MS/],
      [{ CNI_PLUGIN_TIMEOUT_MS: '1.5' }, /CNI_PLUGIN_TIMEOUT_MS/],
      [{ DOCKER_CNI_RECONCILE_INTERVAL_MS: '1m' }, /DOCKER_CNI_RECONCILE_INTERVAL_MS/],
      [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL \(logLevel\) "loud".*one of trace/],
      [{ DOCKER_CNI_STATE_DIR: 'relative/state' }, /DOCKER_CNI_STATE_DIR.*absolute path/],
      [{ DOCKER_SOCKET: 'docker.sock' }, /DOCKER_SOCKET.*absolute path/],
      [{ CNI_PATH: ':::' }, /CNI_PATH.*empty list/],
      [{ DOCKER_CNI_DEFAULT_POOLS_V4: ' , ' }, /DOCKER_CNI_DEFAULT_POOLS_V4.*empty list/],
      [{ DOCKER_CNI_STAGING_PREFIX: 'Stage' }, /DOCKER_CNI_STAGING_PREFIX/],
      [{ DOCKER_CNI_STAGING_PREFIX: 'a/b' }, /DOCKER_CNI_STAGING_PREFIX/],
      [{ DOCKER_CNI_CONF_SYNC: 'maybe' }, /DOCKER_CNI_CONF_SYNC.*boolean/],
      [{ DOCKER_CNI_DRIVER_NAME: 'Bad Name' }, /DOCKER_CNI_DRIVER_NAME/],
      [{ DOCKER_CNI_STAGING_PREFIX: 'a'.repeat(17) }, /DOCKER_CNI_STAGING_PREFIX/],
      [{ CNI_CONF_DIR: '   ' }, /CNI_CONF_DIR.*empty/],
    ];
    for (const [env, pattern] of cases) assert.throws(() => loadSettings(env), pattern, JSON.stringify(env));
    assert.throws(() => loadSettings({}, { stateDir: 'rel' }), /DOCKER_CNI_STATE_DIR/, 'a bad flag is reported too');
  });
});

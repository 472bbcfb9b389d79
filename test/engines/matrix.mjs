// The engine and plugin matrix of test/run.mjs: which dockerd and which CNI
// plugin set a batch of test files runs against, how to switch dockerd
// (through test/engines/engine) and the environment each cell hands to the
// test processes.
//
// Engines:      20.10 (Debian bookworm's docker.io, the host's)
//               28    (the newest docker.io of Debian's newer suites, fetched
//                      privately by test/engines/fetch)
// Plugin sets:  host  (/opt/cni/bin, /usr/lib/cni: bookworm's 1.1.1)
//               new   (the newest containernetworking-plugins, fetched alike)
// The engine tier pairs 20.10 with the host plugins and 28 with the new ones:
// the old stack and the current one.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENGINE_HELPER = join(dirname(fileURLToPath(import.meta.url)), 'engine');
export const ENGINES = ['20.10', '28'];
/** The engines `npm test` (and so CI) runs; `--engines=` picks others. */
export const DEFAULT_ENGINES = ['20.10', '28'];
export const PLUGIN_SETS = ['host', 'new'];
/** The plugin set each engine's cell uses. */
export const ENGINE_PLUGIN_SET = { '20.10': 'host', 28: 'new' };

/** What test/engines/fetch wrote, or undefined when it has not run. */
export function fetchedEngines() {
  const file = join(process.env.ENGINES_DIR ?? '/var/cache/docker-cni-engines', 'engines.env');
  if (!existsSync(file)) return undefined;
  const values = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) values[match[1]] = match[2];
  }
  return values;
}

function hostPluginVersion() {
  const out = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'containernetworking-plugins'], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.replace(/^\d+:/, '').replace(/[-+~].*$/, '') : 'unknown version';
}

/**
 * A plugin set: its dirs, a label with its version, and the environment that
 * selects it (integration tier: DOCKER_CNI_TEST_CNI_PATH; the harness's child
 * plugin: CNI_PATH). Undefined `dirs` means it is not available here.
 */
export function pluginSet(name) {
  if (name === 'host') {
    return { name, label: `CNI plugins ${hostPluginVersion()} (/opt/cni/bin:/usr/lib/cni)`, dirs: ['/opt/cni/bin', '/usr/lib/cni'], env: {} };
  }
  const fetched = fetchedEngines();
  const dir = fetched?.CNI19_DIR;
  if (!dir || !existsSync(join(dir, 'bridge'))) return { name, label: 'the newer CNI plugins', dirs: undefined, missing: 'run test/engines/fetch' };
  return {
    name,
    label: `CNI plugins ${fetched.CNI19_VERSION} (${dir})`,
    dirs: [dir],
    env: { DOCKER_CNI_TEST_CNI_PATH: dir, CNI_PATH: dir },
  };
}

/** Engine major.minor on /var/run/docker.sock ('20.10', '28'), or '' when none answers. */
export function currentEngine() {
  const out = spawnSync(ENGINE_HELPER, ['version'], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : '';
}

/** Why `engine` cannot be brought up here, or false. */
export function engineMissing(engine) {
  if (engine === '20.10') return existsSync('/usr/sbin/dockerd') ? false : 'dockerd 20.10 (/usr/sbin/dockerd, Debian bookworm docker.io)';
  const fetched = fetchedEngines();
  if (!fetched?.DOCKER28_BIN_DIR || !existsSync(join(fetched.DOCKER28_BIN_DIR, 'dockerd'))) return `dockerd ${engine} (run test/engines/fetch)`;
  return false;
}

/** Puts `engine` on /var/run/docker.sock (stopping the one there); the helper prints its versions. */
export function switchEngine(engine) {
  execFileSync(ENGINE_HELPER, ['up', engine, '--replace'], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * Environment for test processes running against `engine`: the engine's name
 * and, for 28, its binaries first on PATH (tests that restart dockerd from its
 * command line need its containerd), compose v2 and the 28.x client + buildx
 * for the managed plugin's build.
 */
export function engineEnv(engine) {
  const env = { DOCKER_CNI_TEST_ENGINE: engine };
  const fetched = fetchedEngines();
  if (fetched?.COMPOSE2_BIN && existsSync(fetched.COMPOSE2_BIN)) env.DOCKER_CNI_TEST_COMPOSE2_BIN = fetched.COMPOSE2_BIN;
  // For flags only a newer client has (e.g. --ipv4=false); the tests' default client stays 20.10's.
  if (fetched?.DOCKER28_CLIENT && existsSync(fetched.DOCKER28_CLIENT)) env.DOCKER_CNI_TEST_DOCKER28_CLIENT = fetched.DOCKER28_CLIENT;
  if (engine === '28' && fetched) {
    env.PATH = `${fetched.DOCKER28_BIN_DIR}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
    env.DOCKER_BUILD_CLIENT = fetched.DOCKER28_CLIENT;
    env.DOCKER_BUILDX = join(fetched.CLI_PLUGINS_DIR, 'docker-buildx');
    // test/engines/engine gives 28 an exec-root of its own; the managed plugin mounts it.
    env.DOCKER_CNI_TEST_EXEC_ROOT = '/var/run/docker-cni-engines-28';
  }
  return env;
}

/** Sets environment variables for a while; restore() puts the old values back. */
export function scopedEnv(values) {
  const saved = {};
  for (const [key, value] of Object.entries(values)) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  return {
    restore() {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    },
  };
}

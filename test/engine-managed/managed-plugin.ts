/**
 * The managed plugin as a test fixture: build its plugin dir (config.json +
 * rootfs/) once from the offline base image, then `docker plugin create` it
 * under unique aliases, with every host-state mount pointed at temp dirs.
 *
 * Used by test/run.mjs (the 'managed' tier builds one plugin dir and one
 * alias for the whole engine suite and passes the dir on in
 * DOCKER_CNI_TEST_PLUGIN_DIR) and by the test files here, which create
 * aliases of their own from that dir, or build it themselves when run alone.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
export { managedPluginLog, managedPluginLogTail } from '../helpers/dockerd-log.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { execa } from 'execa';
import { DOCKER_BIN, REPO_ROOT, hostDocker, randomHex, setupEngineSuite, stateDirsOf, type DockerClient, type PluginHandle } from '../helpers/engine.js';

export const BASE_IMAGE = process.env.DOCKER_CNI_PLUGIN_BASE ?? 'docker-cni/base:bookworm';
/** A plugin dir built earlier (by test/run.mjs); saves a rebuild per file. */
export const PLUGIN_DIR_ENV = 'DOCKER_CNI_TEST_PLUGIN_DIR';
/** Automatic pools the way the harness gives its child plugin (test/helpers/engine.ts AUTO_POOL_V4). */
export const TEST_AUTO_POOLS_V4 = '10.232.0.0/16/24';

export interface TimedStep {
  what: string;
  ms: number;
}

/**
 * Builds the offline base image when missing (plugin/base-image) and the
 * plugin dir into `outDir` (plugin/build --no-create --out). Returns the time
 * each step took.
 */
export async function buildPluginDir(outDir: string): Promise<TimedStep[]> {
  const steps: TimedStep[] = [];
  const env = { DOCKER: DOCKER_BIN };
  let started = Date.now();
  if (!process.env.DOCKER_CNI_PLUGIN_BASE) {
    await execa('bash', [join(REPO_ROOT, 'plugin', 'base-image'), '--tag', BASE_IMAGE], { env, timeout: 600_000 });
    steps.push({ what: `base image ${BASE_IMAGE}`, ms: Date.now() - started });
  }
  started = Date.now();
  await execa('bash', [join(REPO_ROOT, 'plugin', 'build'), '--base', BASE_IMAGE, '--no-create', '--out', outDir], { env, timeout: 900_000 });
  steps.push({ what: 'plugin dir (image build + rootfs export)', ms: Date.now() - started });
  return steps;
}

export interface PluginSource {
  dir: string;
  /** Removes the dir when this call built it; a dir from the environment stays. */
  dispose(): Promise<void>;
}

/** The plugin dir from DOCKER_CNI_TEST_PLUGIN_DIR, or a fresh build in a temp dir. */
export async function pluginSource(): Promise<PluginSource> {
  const given = process.env[PLUGIN_DIR_ENV];
  if (given && existsSync(join(given, 'config.json'))) return { dir: given, dispose: async () => undefined };
  const root = await mkdtemp(join(tmpdir(), 'dcni-plugin-dir-'));
  const dir = join(root, 'plugin');
  try {
    await buildPluginDir(dir);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return { dir, dispose: () => rm(root, { recursive: true, force: true }) };
}

export interface ManagedPluginOptions {
  /** Daemon to create the plugin on (default: the host's). */
  docker?: DockerClient;
  /** Plugin name; `:latest` is added when it has no tag. Default: a unique docker-cni-test-<hex>. */
  alias?: string;
  /**
   * Host dir for the plugin's /var/lib/cni (libcni cache, host-local leases).
   * Default: a temp dir. The engine harness assumes the host's /var/lib/cni in
   * managed mode, so the 'managed' tier passes that.
   */
  cniStateSource?: string;
  /** Source of the docker-run mount (dockerd's exec-root; default /var/run/docker). */
  dockerRunSource?: string;
  /** `docker plugin set` env values on top of the test defaults below. */
  env?: Record<string, string>;
  /** False keeps config.json's env values (no test defaults). */
  testDefaults?: boolean;
}

/**
 * `docker plugin create` from a shared plugin dir. dockerd stores plugin
 * content by digest and refuses a second plugin with the same rootfs
 * ("content sha256:...: already exists"), so a file naming the alias makes
 * each alias's rootfs distinct; it is removed again once the daemon has
 * copied the rootfs. Callers create one alias at a time per dir.
 */
async function createFromDir(cli: DockerClient, alias: string, sourceDir: string): Promise<void> {
  const marker = join(sourceDir, 'rootfs', 'etc', 'docker-cni-test-alias');
  writeFileSync(marker, `${alias}\n`);
  try {
    await cli.run(['plugin', 'create', alias, sourceDir], 300_000);
  } finally {
    rmSync(marker, { force: true });
  }
}

export interface ManagedPluginInspect {
  Id: string;
  Name: string;
  Enabled: boolean;
  Settings: { Env: string[]; Mounts: Array<{ Name: string; Source: string | null }> };
}

/**
 * One `docker plugin create`d alias with private conf/bin/state (and by
 * default cache) dirs. Test defaults, as the harness gives its child plugin:
 * debug logs, automatic pools in 10.232.0.0/16, no periodic reconciliation
 * (other docker-cni instances may share the host).
 */
export class ManagedPlugin {
  private constructor(
    readonly cli: DockerClient,
    readonly alias: string,
    readonly tempRoot: string,
    readonly dirs: { conf: string; bin: string; cniState: string; state: string; run: string },
  ) {}

  static async create(sourceDir: string, options: ManagedPluginOptions = {}): Promise<ManagedPlugin> {
    const cli = options.docker ?? hostDocker;
    const rawAlias = options.alias ?? `docker-cni-test-${randomHex(8)}`;
    const alias = rawAlias.includes(':') ? rawAlias : `${rawAlias}:latest`;
    const tempRoot = await mkdtemp(join(tmpdir(), 'dcni-managed-'));
    const dirs = {
      conf: join(tempRoot, 'conf'),
      bin: join(tempRoot, 'bin'),
      cniState: options.cniStateSource ?? join(tempRoot, 'cni-state'),
      state: join(tempRoot, 'state'),
      run: join(tempRoot, 'run'),
    };
    // Every mount source must exist when the plugin is enabled.
    for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
    const plugin = new ManagedPlugin(cli, alias, tempRoot, dirs);
    try {
      await createFromDir(cli, alias, sourceDir);
      const defaults = { LOG_LEVEL: 'debug', DOCKER_CNI_DEFAULT_POOLS_V4: TEST_AUTO_POOLS_V4, DOCKER_CNI_RECONCILE_INTERVAL_MS: '0', DOCKER_CNI_CONF_SYNC: 'false' };
      const env = { ...(options.testDefaults === false ? {} : defaults), ...options.env };
      await cli.run([
        'plugin', 'set', alias,
        `cni-conf.source=${dirs.conf}`,
        `cni-bin.source=${dirs.bin}`,
        `cni-state.source=${dirs.cniState}`,
        `state.source=${dirs.state}`,
        `run-state.source=${dirs.run}`,
        ...(options.dockerRunSource ? [`docker-run.source=${options.dockerRunSource}`] : []),
        ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
      ]);
    } catch (err) {
      await plugin.dispose();
      throw err;
    }
    return plugin;
  }

  async inspect(): Promise<ManagedPluginInspect> {
    const parsed = JSON.parse(await this.cli.run(['plugin', 'inspect', this.alias])) as ManagedPluginInspect[];
    const first = parsed[0];
    if (!first) throw new Error(`docker plugin inspect ${this.alias} returned nothing`);
    return first;
  }

  async enable(): Promise<void> {
    await this.cli.run(['plugin', 'enable', this.alias], 60_000);
  }

  async disable(force = false): Promise<void> {
    await this.cli.run(['plugin', 'disable', ...(force ? ['-f'] : []), this.alias], 60_000);
  }

  /** Directories whose files are plugin state, for leak snapshots. */
  watchedDirs(): string[] {
    return stateDirsOf({ stateDir: this.dirs.state, runDir: this.dirs.run, cacheDir: this.dirs.cniState, hostLocalDir: join(this.dirs.cniState, 'networks') });
  }

  /** Disables (forced) and removes the plugin, then its temp dirs; never throws. */
  async dispose(): Promise<string[]> {
    const problems: string[] = [];
    const exists = await this.cli.run(['plugin', 'inspect', '-f', '{{.Enabled}}', this.alias]).then(
      (enabled) => ({ enabled: enabled === 'true' }),
      () => undefined,
    );
    if (exists?.enabled) await this.disable(true).catch((err: unknown) => problems.push(String(err)));
    if (exists) await this.cli.run(['plugin', 'rm', '-f', this.alias], 60_000).catch((err: unknown) => problems.push(String(err)));
    if (process.env.DOCKER_CNI_TEST_KEEP !== '1') await rm(this.tempRoot, { recursive: true, force: true });
    return problems;
  }
}


/**
 * The engine harness (setupEngineSuite) in managed mode, for files in this
 * directory: under test/run.mjs's 'managed' tier the tier's plugin is used
 * as is; run alone, the file creates an alias of its own first (building the
 * plugin dir if DOCKER_CNI_TEST_PLUGIN_DIR is not set), points the harness at
 * it through the DOCKER_CNI_TEST_* variables, and removes it afterwards.
 * Call it in a describe() body, like setupEngineSuite.
 */
export function setupManagedEngineSuite(): () => PluginHandle {
  const fromTier = process.env.DOCKER_CNI_TEST_MANAGED === '1' && Boolean(process.env.DOCKER_CNI_TEST_DRIVER);
  let source: PluginSource | undefined;
  let own: ManagedPlugin | undefined;
  if (!fromTier) {
    before(async () => {
      source = await pluginSource();
      // The harness assumes the host's /var/lib/cni in managed mode.
      mkdirSync('/var/lib/cni', { recursive: true });
      own = await ManagedPlugin.create(source.dir, { cniStateSource: '/var/lib/cni' });
      process.env.DOCKER_CNI_TEST_DRIVER = own.alias;
      process.env.DOCKER_CNI_TEST_MANAGED = '1';
      process.env.DOCKER_CNI_TEST_CONF_DIR = own.dirs.conf;
      process.env.DOCKER_CNI_TEST_STATE_DIR = own.dirs.state;
      process.env.DOCKER_CNI_TEST_RUN_DIR = own.dirs.run;
    });
  }
  // Registered after the hook above, so its before runs second and its after first.
  const plugin = setupEngineSuite();
  if (!fromTier) {
    after(async () => {
      const problems = own ? await own.dispose() : [];
      await source?.dispose();
      if (problems.length > 0) throw new Error(`removing ${own?.alias}: ${problems.join('; ')}`);
    });
  }
  return plugin;
}

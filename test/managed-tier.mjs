// The managed tier of test/run.mjs: the engine suite again, against the
// managed plugin. The offline base image and the plugin dir are built,
// `docker plugin create`d under a unique alias whose mounts point at temp
// dirs, and the files run with DOCKER_CNI_TEST_DRIVER/DOCKER_CNI_TEST_MANAGED
// set; the alias and dirs go afterwards, also on failure. Needs root and
// dockerd: outside CI it is skipped without them, under CI=true their absence
// fails.
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scopedEnv } from './engines/matrix.mjs';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Engine files that do not apply to the managed plugin: they never use the
 * plugin under test, but start their own `docker-cni serve` child processes
 * (KillablePlugin) to SIGKILL them by PID, run two instances side by side, or
 * kill dockerd; running them again would only repeat the engine tier.
 * Their managed-plugin counterparts (disable/enable and a dockerd restart with
 * live containers) are in test/engine-managed/.
 */
export const MANAGED_EXCLUDED = new Map([
  ['test/engine/chaos/plugin-kill.test.ts', 'SIGKILLs its own child plugin by PID'],
  ['test/engine/chaos/dockerd-kill.test.ts', 'runs its own child plugin against a private dockerd'],
  ['test/engine/chaos/second-instance.test.ts', 'runs two child plugins side by side'],
  ['test/engine/confsync-corpus.test.ts', 'turns the conf-dir sync on in a child plugin watching a conf dir of its own; the managed tier runs its plugin with the sync off'],
  ['test/engine/confsync.test.ts', 'turns the conf-dir sync on in a child plugin watching a conf dir of its own; the managed tier runs its plugin with the sync off'],
  ['test/engine/restart-churn.test.ts', 'restarts a child plugin by SIGTERM during churn; its managed counterpart, disable -f and enable during churn, is test/engine-managed/disable-churn.test.ts'],
]);

/**
 * False when the managed tier can run here, else why not. Under CI=true a
 * missing prerequisite is a failure, not a skip.
 */
async function managedSkipReason() {
  const { isRoot, dockerAvailable } = await import('./helpers/prereq.ts');
  const { DOCKER_BIN } = await import('./helpers/engine.ts');
  const missing = [
    [isRoot(), 'root'],
    [existsSync(DOCKER_BIN), `docker client ${DOCKER_BIN}`],
    [await dockerAvailable(), 'a running dockerd on /var/run/docker.sock'],
    [existsSync(join(repoRoot, 'node_modules', 'typescript')), 'node_modules (npm ci) for the offline plugin build'],
    [existsSync(join(repoRoot, 'dist', 'cli', 'main.js')), 'dist/ (npm run build)'],
  ].filter(([ok]) => !ok).map(([, what]) => what);
  return missing.length ? `needs ${missing.join(', ')}` : false;
}

/**
 * The managed tier: build, create, run the batch with the managed-mode
 * environment, then remove the plugin and its dirs whatever happened.
 */
export async function runManagedTier(files, runBatch) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const say = (line) => console.log(`test/run.mjs: managed tier: ${line}`);
  const skipReason = await managedSkipReason();
  if (skipReason) {
    if (process.env.CI === 'true') {
      console.error(`test/run.mjs: managed tier cannot run under CI: ${skipReason}`);
      counts.failed += 1;
    } else {
      say(`skipped (${skipReason})`);
      counts.skipped += 1;
    }
    return counts;
  }
  const fixture = await import('./engine-managed/managed-plugin.ts');
  const tierStarted = Date.now();
  const root = await mkdtemp(join(tmpdir(), 'dcni-managed-tier-'));
  const pluginDir = join(root, 'plugin');
  let plugin;
  let env;
  try {
    say(`building the plugin (offline base ${fixture.BASE_IMAGE})`);
    const buildStarted = Date.now();
    const steps = await fixture.buildPluginDir(pluginDir);
    const createStarted = Date.now();
    // The harness expects the host's /var/lib/cni in managed mode (leak checks and
    // result-cache reads); conf, bin and records go to the plugin's temp dirs.
    mkdirSync('/var/lib/cni', { recursive: true });
    // dockerd's exec-root is mounted into the plugin; the engine 28 cell runs with one of its own.
    const dockerRunSource = process.env.DOCKER_CNI_TEST_EXEC_ROOT;
    plugin = await fixture.ManagedPlugin.create(pluginDir, { cniStateSource: '/var/lib/cni', ...(dockerRunSource ? { dockerRunSource } : {}) });
    const created = Date.now();
    say(
      `plugin ${plugin.alias} ready in ${seconds(created - buildStarted)}: ` +
        [...steps.map((step) => `${step.what} ${seconds(step.ms)}`), `docker plugin create + set ${seconds(created - createStarted)}`].join(', '),
    );
    for (const [file, why] of MANAGED_EXCLUDED) say(`not run against the managed plugin: ${file} (${why})`);
    env = scopedEnv({
      DOCKER_CNI_TEST_DRIVER: plugin.alias,
      DOCKER_CNI_TEST_MANAGED: '1',
      DOCKER_CNI_TEST_CONF_DIR: plugin.dirs.conf,
      DOCKER_CNI_TEST_STATE_DIR: plugin.dirs.state,
      DOCKER_CNI_TEST_RUN_DIR: plugin.dirs.run,
      [fixture.PLUGIN_DIR_ENV]: pluginDir,
    });
    const runStarted = Date.now();
    const batch = await runBatch(files);
    for (const key of Object.keys(counts)) counts[key] += batch[key];
    say(`${files.length} file(s) ran in ${seconds(Date.now() - runStarted)}`);
    if (batch.failed > 0) {
      const id = await plugin.inspect().then((p) => p.Id, () => undefined);
      if (id) console.error(`--- managed plugin ${plugin.alias} in dockerd's log (tail) ---\n${fixture.managedPluginLogTail(id, 80)}`);
    }
  } catch (err) {
    console.error(`test/run.mjs: managed tier setup failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (err && typeof err === 'object' && 'stderr' in err) console.error(String(err.stderr));
    counts.failed += 1;
  } finally {
    env?.restore();
    const problems = plugin ? await plugin.dispose() : [];
    await rm(root, { recursive: true, force: true });
    for (const problem of problems) console.error(`test/run.mjs: managed tier teardown: ${problem}`);
    if (problems.length > 0) counts.failed += 1;
    say(`done in ${seconds(Date.now() - tierStarted)} (build, run and teardown)`);
  }
  return counts;
}


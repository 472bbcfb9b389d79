#!/usr/bin/env node
// Runs every test tier through node's test runner API, one file at a time:
//
//   node test/run.mjs                 unit, integration, engine, managed (in that order)
//   node test/run.mjs unit engine     only those tiers
//   node test/run.mjs engine restart  tiers plus path filters (substring match)
//
// Tiers:
//   unit, integration, engine  test/<tier>/**, against the plugin the engine
//                              harness runs itself (a child process).
//   managed                    the engine suite again, against the managed
//                              plugin: the offline base image and plugin dir
//                              are built, `docker plugin create`d under a
//                              unique alias whose mounts point at temp dirs,
//                              and test/engine/** (minus MANAGED_EXCLUDED) plus
//                              test/engine-managed/** run with
//                              DOCKER_CNI_TEST_DRIVER/DOCKER_CNI_TEST_MANAGED
//                              set; the alias and dirs go afterwards, also
//                              on failure. Needs root and dockerd: outside CI
//                              it is skipped without them, under CI=true their
//                              absence fails.
//
// `node --test <files>` on Node 20 sorts its files by path (engine would run
// before unit), so this uses the runner's API, which keeps the given order,
// with concurrency 1: one file at a time, each in its own process, because
// engine tests share one dockerd and the host's iptables. The managed tier is
// a second run() batch because its environment (inherited by the file
// processes) differs. The last line printed is `N passed, N failed, N skipped`
// over all tiers; the exit code is 1 when anything failed.
// The API's file processes inherit this process's execArgv, so the script
// re-runs itself under `--import tsx` to make them load TypeScript (and so
// that this file can use the TypeScript fixture of the managed tier).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { finished } from 'node:stream/promises';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const TIERS = ['unit', 'integration', 'engine', 'managed'];
/** Last-resort guard against a hung test, per test (ms). */
const TEST_TIMEOUT_MS = 900_000;
const INNER_ENV = 'DOCKER_CNI_TEST_RUNNER_INNER';

/**
 * Engine files that do not apply to the managed plugin: they never use the
 * plugin under test, but start their own `docker-cni serve` child processes
 * (KillablePlugin) to SIGKILL them by PID, run two instances side by side, or
 * kill dockerd; running them again would only repeat the engine tier.
 * Their managed-plugin counterparts (disable/enable and a dockerd restart with
 * live containers) are in test/engine-managed/.
 */
const MANAGED_EXCLUDED = new Map([
  ['test/engine/chaos/plugin-kill.test.ts', 'SIGKILLs its own child plugin by PID'],
  ['test/engine/chaos/dockerd-kill.test.ts', 'runs its own child plugin against a private dockerd'],
  ['test/engine/chaos/second-instance.test.ts', 'runs two child plugins side by side'],
]);

const thisFile = fileURLToPath(import.meta.url);
const testRoot = dirname(thisFile);
const repoRoot = dirname(testRoot);

function collectTestFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const found = [];
  for (const entry of entries) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) found.push(...collectTestFiles(full));
    else if (entry.endsWith('.test.ts')) found.push(full);
  }
  return found;
}

function tierFiles(tier) {
  if (tier !== 'managed') return collectTestFiles(join(testRoot, tier));
  return [
    ...collectTestFiles(join(testRoot, 'engine')).filter((file) => !MANAGED_EXCLUDED.has(relative(repoRoot, file))),
    ...collectTestFiles(join(testRoot, 'engine-managed')),
  ];
}

function selectFiles(args) {
  const requestedTiers = args.filter((a) => TIERS.includes(a));
  const pathFilters = args.filter((a) => !TIERS.includes(a));
  const tiers = requestedTiers.length > 0 ? TIERS.filter((t) => requestedTiers.includes(t)) : TIERS;
  const matches = (file) => pathFilters.length === 0 || pathFilters.some((f) => relative(repoRoot, file).includes(f));
  const filesOf = (tier) => tierFiles(tier).filter(matches);
  return {
    tiers,
    pathFilters,
    plainFiles: tiers.filter((t) => t !== 'managed').flatMap(filesOf),
    managedFiles: tiers.includes('managed') ? filesOf('managed') : [],
  };
}

/** Test counts of one batch; suites count only when they fail by themselves (a hook) or are skipped whole. */
function newCounts() {
  return { passed: 0, failed: 0, skipped: 0 };
}

function addCounts(into, from) {
  into.passed += from.passed;
  into.failed += from.failed;
  into.skipped += from.skipped;
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Runs one batch of files through the runner, streams the report, and resolves with its counts. */
async function runBatch(files) {
  const counts = newCounts();
  const stream = run({ files, concurrency: 1, timeout: TEST_TIMEOUT_MS });
  stream.on('test:pass', (event) => {
    const suite = event.details?.type === 'suite';
    if (event.skip !== undefined && event.skip !== false) counts.skipped += 1;
    else if (!suite && !event.todo) counts.passed += 1;
  });
  stream.on('test:fail', (event) => {
    if (event.todo !== undefined && event.todo !== false) return;
    // A suite whose tests failed is already counted through them.
    if (event.details?.type === 'suite' && event.details?.error?.failureType === 'subtestsFailed') return;
    counts.failed += 1;
  });
  // The same reporters `node --test` picks: spec on a terminal, TAP otherwise.
  const report = stream.compose(process.stdout.isTTY ? new spec() : tap);
  report.pipe(process.stdout, { end: false });
  await finished(report);
  return counts;
}

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
async function runManagedTier(files) {
  const counts = newCounts();
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
  const savedEnv = {};
  const setEnv = (key, value) => {
    if (!(key in savedEnv)) savedEnv[key] = process.env[key];
    process.env[key] = value;
  };
  try {
    say(`building the plugin (offline base ${fixture.BASE_IMAGE})`);
    const buildStarted = Date.now();
    const steps = await fixture.buildPluginDir(pluginDir);
    const createStarted = Date.now();
    // The harness expects the host's /var/lib/cni in managed mode (leak checks and
    // result-cache reads); conf, bin and records go to the plugin's temp dirs.
    mkdirSync('/var/lib/cni', { recursive: true });
    plugin = await fixture.ManagedPlugin.create(pluginDir, { cniStateSource: '/var/lib/cni' });
    const created = Date.now();
    say(
      `plugin ${plugin.alias} ready in ${seconds(created - buildStarted)}: ` +
        [...steps.map((step) => `${step.what} ${seconds(step.ms)}`), `docker plugin create + set ${seconds(created - createStarted)}`].join(', '),
    );
    for (const [file, why] of MANAGED_EXCLUDED) say(`not run against the managed plugin: ${file} (${why})`);
    setEnv('DOCKER_CNI_TEST_DRIVER', plugin.alias);
    setEnv('DOCKER_CNI_TEST_MANAGED', '1');
    setEnv('DOCKER_CNI_TEST_CONF_DIR', plugin.dirs.conf);
    setEnv('DOCKER_CNI_TEST_STATE_DIR', plugin.dirs.state);
    setEnv(fixture.PLUGIN_DIR_ENV, pluginDir);
    const runStarted = Date.now();
    const batch = await runBatch(files);
    addCounts(counts, batch);
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
    for (const [key, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    const problems = plugin ? await plugin.dispose() : [];
    await rm(root, { recursive: true, force: true });
    for (const problem of problems) console.error(`test/run.mjs: managed tier teardown: ${problem}`);
    if (problems.length > 0) counts.failed += 1;
    say(`done in ${seconds(Date.now() - tierStarted)} (build, run and teardown)`);
  }
  return counts;
}

async function runTiers(args) {
  const { tiers, pathFilters, plainFiles, managedFiles } = selectFiles(args);
  if (plainFiles.length === 0 && managedFiles.length === 0) {
    const filterNote = pathFilters.length ? ` matching ${pathFilters.join(', ')}` : '';
    console.error(`test/run.mjs: no test files for tiers [${tiers.join(', ')}]${filterNote}`);
    process.exit(1);
  }
  const total = newCounts();
  const started = Date.now();
  if (plainFiles.length > 0) {
    const plainTiers = tiers.filter((t) => t !== 'managed');
    console.log(`test/run.mjs: ${plainFiles.length} file(s) from tiers [${plainTiers.join(', ')}], one at a time in this order`);
    addCounts(total, await runBatch(plainFiles));
    console.log(`test/run.mjs: tiers [${plainTiers.join(', ')}] took ${seconds(Date.now() - started)}`);
  }
  if (managedFiles.length > 0) {
    console.log(`test/run.mjs: ${managedFiles.length} file(s) against the managed plugin, one at a time in this order`);
    addCounts(total, await runManagedTier(managedFiles));
  }
  console.log(`test/run.mjs: all tiers took ${seconds(Date.now() - started)}`);
  process.exitCode = total.failed > 0 ? 1 : 0;
  // CI reads this line; keep it last and plain.
  console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
}

const args = process.argv.slice(2);

if (process.env[INNER_ENV] !== '1') {
  const child = spawn(process.execPath, ['--import', 'tsx', thisFile, ...args], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, [INNER_ENV]: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    console.error(`test/run.mjs: could not start the test runner: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) console.error(`test/run.mjs: test runner killed by ${signal}`);
    process.exit(signal ? 1 : (code ?? 1));
  });
} else {
  await runTiers(args);
}

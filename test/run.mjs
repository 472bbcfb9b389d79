#!/usr/bin/env node
// Runs the test tiers through node's test runner API, one file at a time, over
// the engine and plugin matrix (test/engines/matrix.mjs):
//
//   node test/run.mjs                    the whole matrix (what `npm test` and CI run):
//                                          unit
//                                          integration  x CNI plugins host (1.1.1), new (1.9.x)
//                                          engine, managed on dockerd 20.10 (host plugins)
//                                          engine, managed on dockerd 28 (new plugins)
//                                          cluster on dockerd 20.10 (3 simulated hosts)
//                                        then the engine that ran before is put back.
//   node test/run.mjs unit engine        only those tiers, on the engine running now
//                                        and the host plugins (no switching)
//   node test/run.mjs engine restart     tiers plus path filters (substring match)
//   --engines=20.10,28  --cni=host,new   choose matrix cells explicitly (switches
//                                        dockerd through test/engines/engine)
//
// Tiers: unit, integration, engine (test/<tier>/**, against the plugin the
// engine harness runs itself), managed (the engine suite against the managed
// plugin; see test/managed-tier.mjs), cluster (test/cluster/: 3 simulated hosts,
// each with its own dockerd 20.10, etcd and a swarm; about 4 minutes).
//
// Engine switching needs root and stops whatever dockerd answers on
// /var/run/docker.sock; run it under the machine's engine lock. A cell whose
// engine or plugins are missing (test/engines/fetch not run) is skipped with
// the reason, and under CI=true fails the run. Under CI=true a skipped test
// fails too, unless test/allowed-skips.json lists it with a reason.
//
// `node --test <files>` on Node 20 sorts its files by path, so this uses the
// runner's API, which keeps the given order, with concurrency 1: engine tests
// share one dockerd and the host's iptables. Each cell is a run() batch of its
// own because its environment (inherited by the file processes) differs. The
// last line printed is `N passed, N failed, N skipped` over all cells; the
// exit code is 1 when anything failed. The file processes inherit this
// process's execArgv, so the script re-runs itself under `--import tsx`.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { finished } from 'node:stream/promises';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';
import { skipLedger } from './allowed-skips.mjs';
import { DEFAULT_ENGINES, ENGINES, ENGINE_PLUGIN_SET, PLUGIN_SETS, currentEngine, engineEnv, engineMissing, pluginSet, scopedEnv, switchEngine } from './engines/matrix.mjs';
import { MANAGED_EXCLUDED, runManagedTier } from './managed-tier.mjs';

const TIERS = ['unit', 'integration', 'engine', 'managed', 'cluster'];
/** Last-resort guard against a hung test, per test (ms). */
const TEST_TIMEOUT_MS = 900_000;
const INNER_ENV = 'DOCKER_CNI_TEST_RUNNER_INNER';
const inCI = process.env.CI === 'true';

const thisFile = fileURLToPath(import.meta.url);
const testRoot = dirname(thisFile);
const repoRoot = dirname(testRoot);
const say = (line) => console.log(`test/run.mjs: ${line}`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

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

function listOption(args, name, allowed) {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  if (!arg) return undefined;
  const values = arg.slice(name.length + 3).split(',').filter(Boolean);
  const bad = values.filter((v) => !allowed.includes(v));
  if (bad.length || values.length === 0) {
    console.error(`test/run.mjs: --${name} takes a comma-separated list of ${allowed.join(', ')}`);
    process.exit(2);
  }
  return values;
}

/**
 * The cells to run, in order: { tier, engine (undefined: whatever runs, no
 * switching), plugins (a plugin set name), files }.
 */
function planCells(args) {
  const engines = listOption(args, 'engines', ENGINES);
  const cniSets = listOption(args, 'cni', PLUGIN_SETS);
  const rest = args.filter((a) => !a.startsWith('--'));
  const requested = rest.filter((a) => TIERS.includes(a));
  const pathFilters = rest.filter((a) => !TIERS.includes(a));
  const tiers = requested.length > 0 ? TIERS.filter((t) => requested.includes(t)) : TIERS;
  const wholeMatrix = requested.length === 0 && !engines && !cniSets;
  const cellEngines = engines ?? (wholeMatrix ? DEFAULT_ENGINES : [undefined]);
  const cellSets = cniSets ?? (wholeMatrix ? PLUGIN_SETS : ['host']);
  const matches = (file) => pathFilters.length === 0 || pathFilters.some((f) => relative(repoRoot, file).includes(f));
  const filesOf = (tier) => tierFiles(tier).filter(matches);
  const cells = [];
  if (tiers.includes('unit')) cells.push({ tier: 'unit', files: filesOf('unit') });
  if (tiers.includes('integration')) for (const plugins of cellSets) cells.push({ tier: 'integration', plugins, files: filesOf('integration') });
  for (const engine of cellEngines) {
    const plugins = engine && (wholeMatrix || engines) ? ENGINE_PLUGIN_SET[engine] : (cellSets[0] ?? 'host');
    for (const tier of ['engine', 'managed']) {
      if (tiers.includes(tier)) cells.push({ tier, engine, plugins: tier === 'managed' ? undefined : plugins, files: filesOf(tier) });
    }
  }
  // The simulated hosts run /usr/bin/dockerd (20.10), so the cell belongs to the 20.10 engine of the matrix;
  // the main engine only builds the plugin and lends the test image.
  const clusterEngine = wholeMatrix || engines ? cellEngines.find((e) => e === '20.10') : undefined;
  if (tiers.includes('cluster') && (clusterEngine || !(wholeMatrix || engines))) {
    cells.push({ tier: 'cluster', engine: clusterEngine, files: filesOf('cluster') });
  }
  return { cells: cells.filter((cell) => cell.files.length > 0), tiers, pathFilters };
}

/** Runs one batch of files through the runner, streams the report, and resolves with its counts. */
async function runBatch(files, ledger, where) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const stream = run({ files, concurrency: 1, timeout: TEST_TIMEOUT_MS });
  stream.on('test:pass', (event) => {
    const suite = event.details?.type === 'suite';
    if (event.skip !== undefined && event.skip !== false) {
      counts.skipped += 1;
      ledger.record(event, where);
    } else if (!suite && !event.todo) counts.passed += 1;
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

/** A cell that cannot run: a failure under CI, a counted skip elsewhere. */
function unavailable(label, why) {
  if (inCI) {
    console.error(`test/run.mjs: ${label} cannot run under CI: ${why}`);
    return { passed: 0, failed: 1, skipped: 0 };
  }
  say(`${label}: skipped (${why})`);
  return { passed: 0, failed: 0, skipped: 1 };
}

/** Brings up the cell's engine when it is not the one running; false (with the reason) when it cannot. */
function ensureEngine(engine, state) {
  const missing = engineMissing(engine);
  if (missing) return missing;
  if (state.current === engine) return false;
  try {
    switchEngine(engine);
    state.current = engine;
    return false;
  } catch (err) {
    state.current = currentEngine();
    return `could not start dockerd ${engine}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function runCell(cell, ledger, state) {
  const label = [cell.tier, cell.engine && `on dockerd ${cell.engine}`, cell.plugins && `with ${pluginSet(cell.plugins).label}`].filter(Boolean).join(' ');
  console.log(`\n=== test/run.mjs: ${label}: ${cell.files.length} file(s) ===`);
  if (cell.engine) {
    const why = ensureEngine(cell.engine, state);
    if (why) return { label, counts: unavailable(label, why) };
  }
  const plugins = cell.plugins ? pluginSet(cell.plugins) : undefined;
  if (plugins && !plugins.dirs) return { label, counts: unavailable(label, `${plugins.label} are missing (${plugins.missing})`) };
  const engine = cell.engine ?? (cell.tier === 'engine' || cell.tier === 'managed' ? state.current : undefined);
  if (engine) await printVersions(engine);
  const env = scopedEnv({ ...(plugins?.env ?? {}), ...(engine ? engineEnv(engine) : {}) });
  try {
    const counts = cell.tier === 'managed'
      ? await runManagedTier(cell.files, (files) => runBatch(files, ledger, label))
      : await runBatch(cell.files, ledger, label);
    return { label, counts };
  } finally {
    env.restore();
  }
}

/** Prints the versions of the engine a cell runs on (the helper prints them). */
async function printVersions(engine) {
  say(`engine ${engine}${engine === '28' ? ' (unpacked by test/engines/fetch)' : ''}:`);
  await new Promise((done) => {
    spawn(join(testRoot, 'engines', 'engine'), ['status'], { stdio: ['ignore', 'inherit', 'inherit'] }).on('exit', done).on('error', done);
  });
}

async function runAll(args) {
  const { cells, tiers, pathFilters } = planCells(args);
  if (cells.length === 0) {
    const filterNote = pathFilters.length ? ` matching ${pathFilters.join(', ')}` : '';
    console.error(`test/run.mjs: no test files for tiers [${tiers.join(', ')}]${filterNote}`);
    process.exit(1);
  }
  const ledger = skipLedger();
  const state = { current: currentEngine() };
  const original = state.current;
  const total = { passed: 0, failed: 0, skipped: 0 };
  const summary = [];
  const started = Date.now();
  try {
    for (const cell of cells) {
      const cellStarted = Date.now();
      const { label, counts } = await runCell(cell, ledger, state);
      for (const key of Object.keys(total)) total[key] += counts[key];
      summary.push(`  ${label}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped, ${seconds(Date.now() - cellStarted)}`);
    }
  } finally {
    if (original && state.current !== original) {
      say(`putting dockerd ${original} back`);
      try {
        switchEngine(original);
      } catch (err) {
        console.error(`test/run.mjs: could not put dockerd ${original} back: ${err instanceof Error ? err.message : String(err)}`);
        total.failed += 1;
      }
    }
  }
  const disallowed = ledger.disallowed();
  if (inCI && disallowed.length > 0) {
    console.error(`test/run.mjs: ${disallowed.length} skip(s) not listed in test/allowed-skips.json count as failures under CI:`);
    for (const skip of disallowed) console.error(`  ${skip.file}: "${skip.test}" (${skip.reason || 'no reason'}) [${skip.where}]`);
    total.failed += disallowed.length;
  }
  console.log(`\ntest/run.mjs: summary\n${summary.join('\n')}`);
  console.log(`test/run.mjs: all cells took ${seconds(Date.now() - started)}`);
  process.exitCode = total.failed > 0 ? 1 : 0;
  // CI reads this line; keep it last and plain.
  console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
}

const args = process.argv.slice(2);

// An unknown flag must not fall through to the whole matrix (which switches dockerd and takes most of an hour).
const KNOWN_FLAG = /^--(engines|cni)=/;
const badFlags = args.filter((a) => a.startsWith('-') && !KNOWN_FLAG.test(a));
if (badFlags.length > 0) {
  const help = badFlags.every((a) => a === '--help' || a === '-h');
  const lines = readFileSync(thisFile, 'utf8').split('\n').slice(1);
  const usage = lines.slice(0, lines.findIndex((line) => !line.startsWith('//'))).map((line) => line.replace(/^\/\/ ?/, ''));
  (help ? console.log : console.error)([...(help ? [] : [`test/run.mjs: unknown option ${badFlags.join(' ')}`]), ...usage].join('\n'));
  process.exit(help ? 0 : 2);
}

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
  await runAll(args);
}

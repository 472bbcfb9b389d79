#!/usr/bin/env node
// Runs every test tier through ONE node test runner, so the closing
// `# pass N / # fail N` summary covers the whole suite.
//
//   node test/run.mjs                 unit, integration, engine (in that order)
//   node test/run.mjs unit engine     only those tiers
//   node test/run.mjs engine restart  tiers plus path filters (substring match)
//
// `node --test <files>` on Node 20 sorts its files by path (engine would run
// before unit), so this uses the runner's API, which keeps the given order,
// with concurrency 1: one file at a time, each in its own process, because
// engine tests share one dockerd and the host's iptables.
// The API's file processes inherit this process's execArgv, so the script
// re-runs itself under `--import tsx` to make them load TypeScript.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const TIERS = ['unit', 'integration', 'engine'];
/** Last-resort guard against a hung test, per test (ms). */
const TEST_TIMEOUT_MS = 900_000;
const INNER_ENV = 'DOCKER_CNI_TEST_RUNNER_INNER';

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

function selectFiles(args) {
  const requestedTiers = args.filter((a) => TIERS.includes(a));
  const pathFilters = args.filter((a) => !TIERS.includes(a));
  const tiers = requestedTiers.length > 0 ? TIERS.filter((t) => requestedTiers.includes(t)) : TIERS;
  const files = tiers
    .flatMap((tier) => collectTestFiles(join(testRoot, tier)))
    .filter((file) => pathFilters.length === 0 || pathFilters.some((f) => relative(repoRoot, file).includes(f)));
  return { tiers, pathFilters, files };
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
  const { tiers, pathFilters, files } = selectFiles(args);
  if (files.length === 0) {
    const filterNote = pathFilters.length ? ` matching ${pathFilters.join(', ')}` : '';
    console.error(`test/run.mjs: no test files for tiers [${tiers.join(', ')}]${filterNote}`);
    process.exit(1);
  }
  console.log(`test/run.mjs: ${files.length} file(s) from tiers [${tiers.join(', ')}], one at a time in this order`);

  let failures = 0;
  const stream = run({ files, concurrency: 1, timeout: TEST_TIMEOUT_MS });
  stream.on('test:fail', (event) => {
    if (!event.todo) failures += 1;
  });
  // The same reporters `node --test` picks: spec on a terminal, TAP otherwise.
  stream.compose(process.stdout.isTTY ? new spec() : tap).pipe(process.stdout);
  stream.on('end', () => {
    process.exitCode = failures > 0 ? 1 : 0;
  });
}

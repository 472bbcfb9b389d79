#!/usr/bin/env node
// Runs every test tier in ONE node test-runner process, so the closing
// `# pass N / # fail N` summary covers the whole suite.
//
//   node test/run.mjs                 unit, integration, engine (in that order)
//   node test/run.mjs unit engine     only those tiers
//   node test/run.mjs engine restart  tiers plus path filters (substring match)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const TIERS = ['unit', 'integration', 'engine'];
const testRoot = dirname(fileURLToPath(import.meta.url));
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

const args = process.argv.slice(2);
const requestedTiers = args.filter((a) => TIERS.includes(a));
const pathFilters = args.filter((a) => !TIERS.includes(a));
const tiers = requestedTiers.length > 0 ? TIERS.filter((t) => requestedTiers.includes(t)) : TIERS;

const files = tiers
  .flatMap((tier) => collectTestFiles(join(testRoot, tier)))
  .map((file) => relative(repoRoot, file))
  .filter((file) => pathFilters.length === 0 || pathFilters.some((f) => file.includes(f)));

if (files.length === 0) {
  console.error(`test/run.mjs: no test files for tiers [${tiers.join(', ')}]${pathFilters.length ? ` matching ${pathFilters.join(', ')}` : ''}`);
  process.exit(1);
}

console.log(`test/run.mjs: ${files.length} file(s) from tiers [${tiers.join(', ')}]`);

// --test-concurrency=1 keeps files strictly sequential and in the listed order:
// engine tests share one dockerd and the host's iptables, so they must not overlap.
// --test-timeout is only a last-resort guard against a hung test (per test, ms).
const runnerArgs = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000', ...files];
const child = spawn(process.execPath, runnerArgs, { cwd: repoRoot, stdio: 'inherit' });

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (err) => {
  console.error(`test/run.mjs: could not start the test runner: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`test/run.mjs: test runner killed by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});

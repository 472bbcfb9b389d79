// Skips are failures under CI=true, except those listed in
// test/allowed-skips.json, each with the reason it is acceptable there:
//   { "skips": [ { "file": "test/engine/x.test.ts", "test": "exact test name", "reason": "why" } ] }
// "test": "*" allows every skip in that file.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const LIST = join(repoRoot, 'test', 'allowed-skips.json');

function loadList() {
  const parsed = JSON.parse(readFileSync(LIST, 'utf8'));
  const skips = Array.isArray(parsed?.skips) ? parsed.skips : [];
  for (const entry of skips) {
    if (typeof entry?.file !== 'string' || typeof entry?.test !== 'string' || typeof entry?.reason !== 'string' || !entry.reason.trim()) {
      throw new Error(`${relative(repoRoot, LIST)}: every entry needs "file", "test" and a non-empty "reason": ${JSON.stringify(entry)}`);
    }
  }
  return skips;
}

/** Collects skipped tests and tells which ones CI must count as failures. */
export function skipLedger() {
  const list = loadList();
  const seen = [];
  return {
    /** Records a skip event of the test runner (the `test:pass` event with `skip` set). */
    record(event, where) {
      const file = event.file ? relative(repoRoot, event.file) : '(unknown file)';
      const reason = typeof event.skip === 'string' ? event.skip : '';
      seen.push({ file, test: event.name, reason, where });
    },
    /** Skips not allowed by the list. */
    disallowed() {
      return seen.filter((skip) => !list.some((entry) => entry.file === skip.file && (entry.test === '*' || entry.test === skip.test)));
    },
    count: () => seen.length,
  };
}

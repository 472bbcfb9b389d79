/**
 * How every command prints: a table (cli-table3) for people, or JSON with
 * --json for programs. Colours (picocolors) only where the terminal takes
 * them; picocolors honours NO_COLOR and FORCE_COLOR.
 */
import Table from 'cli-table3';
import pc from 'picocolors';

export interface OutputOptions {
  json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table with a header row, or `empty` when there are no rows. */
export function printTable(head: readonly string[], rows: ReadonlyArray<readonly string[]>, empty: string): void {
  if (rows.length === 0) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const table = new Table({
    head: head.map((h) => pc.bold(h)),
    style: { head: [], border: [] },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
  });
  for (const row of rows) table.push([...row]);
  process.stdout.write(`${table.toString()}\n`);
}

/** Key/value lines for `inspect` of one object. */
export function printFields(fields: ReadonlyArray<readonly [string, string]>): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [key, value] of fields) process.stdout.write(`${pc.bold(key.padEnd(width))}  ${value}\n`);
}

export const status = {
  ok: (text: string): string => pc.green(text),
  warn: (text: string): string => pc.yellow(text),
  fail: (text: string): string => pc.red(text),
  dim: (text: string): string => pc.dim(text),
};

/**
 * What every tier's harness shares: where the repo and the plugin entry are,
 * which docker client and test image to use, unique names, and small
 * concurrency primitives.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PLUGIN_ENTRY = join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** The node flags every launcher gives the plugin (plugin/entrypoint, the systemd unit, npm start). */
export const PLUGIN_NODE_FLAGS = ['--max-semi-space-size=4'] as const;
/** The 20.10 client matching the daemon; the newer one on PATH refuses some flags (reference section 2). */
export const DOCKER_BIN = process.env.DOCKER_BIN ?? '/usr/bin/docker';
export const TEST_IMAGE = process.env.DOCKER_CNI_TEST_IMAGE ?? 'docker-cni-test/busybox:latest';
/** Automatic pools are kept apart from the explicit 10.231.X.0/24 subnets the tests pick. */
export const AUTO_POOL_V4 = '10.232.0.0/16';
/** Where a legacy (non-managed) plugin's socket makes dockerd find it. */
export const LEGACY_PLUGIN_DIR = '/run/docker/plugins';

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

/** `prefix-<6 hex>`; Docker wants [a-zA-Z0-9][a-zA-Z0-9_.-]+ for container and network names. */
export function uniqueName(prefix: string): string {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(prefix)) throw new Error(`bad name prefix "${prefix}"`);
  return `${prefix}-${randomHex(6)}`;
}

export function randomBetween(minMs: number, maxMs: number): number {
  return minMs + Math.floor(Math.random() * (maxMs - minMs + 1));
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${why}`);
    }
    await sleep(options.intervalMs ?? 200);
  }
}

/** The last `lines` lines of a text, or `empty` when there is nothing. */
export function lastLines(text: string, lines: number, empty = '(nothing logged)'): string {
  const trimmed = text.trimEnd();
  return trimmed ? trimmed.split('\n').slice(-lines).join('\n') : empty;
}

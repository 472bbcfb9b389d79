/**
 * Prerequisite checks shared by the integration and engine tiers.
 *
 * On a developer box a missing prerequisite (not root, no CNI plugins, no
 * dockerd) skips the test with the reason. Under CI (CI=true) the same gap
 * FAILS, so a broken CI machine can never pass by skipping everything.
 */
import type { TestContext } from 'node:test';
import { accessSync, constants, existsSync } from 'node:fs';
import Docker from 'dockerode';

export const inCI = (): boolean => process.env.CI === 'true';

export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

/**
 * Returns true when the prerequisite holds. Otherwise: under CI throws
 * MissingPrerequisiteError; elsewhere marks `t` skipped (when given) and
 * returns false so the caller can `return` early.
 */
export function requirePrereq(t: TestContext | undefined, ok: boolean, what: string): boolean {
  if (ok) return true;
  if (inCI()) throw new MissingPrerequisiteError(`prerequisite missing under CI=true: ${what}`);
  t?.skip(`prerequisite missing: ${what}`);
  return false;
}

/**
 * For `describe(name, { skip: skipUnless([...]) }, ...)`: false when every
 * check holds, the skip reason when one fails, and a thrown
 * MissingPrerequisiteError under CI (the whole file then fails loudly).
 */
export function skipUnless(checks: ReadonlyArray<readonly [ok: boolean, what: string]>): string | false {
  const missing = checks.filter(([ok]) => !ok).map(([, what]) => what);
  if (missing.length === 0) return false;
  const reason = `prerequisite missing: ${missing.join('; ')}`;
  if (inCI()) throw new MissingPrerequisiteError(`${reason} (CI=true)`);
  return reason;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Where the integration tier finds the CNI plugins. DOCKER_CNI_TEST_CNI_PATH
 * (colon-separated) selects another plugin set; test/run.mjs uses it to run
 * the tier against the newer plugins too.
 */
export const CNI_BIN_DIRS: readonly string[] = process.env.DOCKER_CNI_TEST_CNI_PATH
  ? process.env.DOCKER_CNI_TEST_CNI_PATH.split(':').filter(Boolean)
  : ['/opt/cni/bin', '/usr/lib/cni'];

/** The CNI plugins the tests chain: bridge, host-local, static, firewall, portmap. */
export function hasCniPlugins(required: readonly string[] = ['bridge', 'host-local', 'static', 'firewall']): boolean {
  return required.every((plugin) => CNI_BIN_DIRS.some((dir) => isExecutable(`${dir}/${plugin}`)));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';

/** True when dockerd answers a ping on its socket within the timeout. */
export async function dockerAvailable(timeoutMs = 5_000): Promise<boolean> {
  if (!existsSync(DOCKER_SOCKET)) return false;
  const docker = new Docker({ socketPath: DOCKER_SOCKET, timeout: timeoutMs });
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

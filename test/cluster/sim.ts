/**
 * The simulated 3-host cluster of the cluster tier: drives the scripts in
 * sim/ (argument arrays, no shell strings) and the hosts' dockerds.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');
export const SIM_DIR = process.env.DCNIC_SIM_DIR ?? '/tmp/dcnic-sim';
export const DOCKER = '/usr/bin/docker';
export const UNDERLAY = (i: number): string => `10.250.0.${i}`;
export const HOSTS = [1, 2, 3] as const;
/** The busybox test image of the engine tier (test/fixtures/image/build.sh), loaded into every host. */
export const TEST_IMAGE = process.env.DOCKER_CNI_TEST_IMAGE ?? 'docker-cni-test/busybox:latest';

export async function script(name: string, args: readonly string[] = [], timeoutMs = 180_000): Promise<string> {
  const { stdout } = await run('bash', [join(HERE, 'sim', name), ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout;
}

/** `docker -H <host i>` with an argument array; rejects with stderr on failure. */
export async function dk(i: number, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run(DOCKER, ['-H', `unix://${SIM_DIR}/host${i}/docker.sock`, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker on host${i} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Runs a command in host i's network namespace. */
export async function inHost(i: number, file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', `dcnic-h${i}`, file, ...args], { timeout: 60_000 });
  return stdout.trim();
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface SimOptions {
  pluginDir: string;
  pluginName: string;
  /** Extra `docker plugin set` KEY=VALUE settings. */
  pluginSettings?: string[];
}

/** Brings up underlay, 3 dockerds, etcd, the image, a swarm, and the managed plugin on each host. */
export async function simUp(options: SimOptions): Promise<void> {
  await script('down.sh'); // a previous aborted run
  await script('underlay-up.sh', ['3']);
  await Promise.all(HOSTS.map((i) => script('dockerd-up.sh', [String(i)])));
  await script('etcd-up.sh', HOSTS.map(String));
  const image = join(SIM_DIR, 'bb.tar');
  await run(DOCKER, ['save', '-o', image, TEST_IMAGE], { timeout: 120_000 });
  await Promise.all(HOSTS.map((i) => dk(i, ['load', '-q', '-i', image])));
  await dk(1, ['swarm', 'init', '--advertise-addr', UNDERLAY(1), '--listen-addr', `${UNDERLAY(1)}:2377`]);
  const token = await dk(1, ['swarm', 'join-token', '-q', 'worker']);
  for (const i of [2, 3]) {
    await dk(i, ['swarm', 'join', '--token', token, '--advertise-addr', UNDERLAY(i), '--listen-addr', `${UNDERLAY(i)}:2377`, `${UNDERLAY(1)}:2377`]);
  }
  await Promise.all(
    HOSTS.map((i) => script('plugin-install.sh', [String(i), options.pluginDir, options.pluginName, ...(options.pluginSettings ?? [])])),
  );
}

export async function simDown(): Promise<string> {
  return script('down.sh', [], 300_000);
}

/**
 * Harness for engine tests: a real dockerd driving a real docker-cni.
 *
 * Default mode runs `node dist/cli/main.js serve` as a child process serving a
 * legacy plugin socket with a unique driver name (`cnit` + 6 hex) and private
 * temp state/conf/cache dirs, so runs never see each other's records.
 *
 * Other modes (for testing an installed plugin):
 *   DOCKER_CNI_TEST_DRIVER=<name> DOCKER_CNI_TEST_MANAGED=1
 *     a managed plugin; start/stop map to `docker plugin enable/disable`.
 *   DOCKER_CNI_TEST_DRIVER=<name>
 *     a plugin someone else runs; start/stop do nothing, restart is unsupported.
 *   DOCKER_CNI_TEST_CONF_DIR / DOCKER_CNI_TEST_STATE_DIR tell those modes where
 *   the plugin reads conflists and keeps records.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import Docker from 'dockerode';
import { execa } from 'execa';
import { managedPluginLog } from './dockerd-log.js';
import { assertNoLeaks, takeSnapshot, type HostSnapshot, type LeakIgnore } from './host-snapshot.js';
import { DOCKER_SOCKET, dockerAvailable, hasCniPlugins, isRoot, skipUnless } from './prereq.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PLUGIN_ENTRY = join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** The 20.10 client matching the daemon; the newer one on PATH refuses some flags (reference section 2). */
export const DOCKER_BIN = process.env.DOCKER_BIN ?? '/usr/bin/docker';
export const TEST_IMAGE = process.env.DOCKER_CNI_TEST_IMAGE ?? 'docker-cni-test/busybox:latest';
const IMAGE_BUILD_SCRIPT = join(REPO_ROOT, 'test', 'fixtures', 'image', 'build.sh');
const LEGACY_PLUGIN_DIR = '/run/docker/plugins';
/** Automatic pools are kept apart from the explicit 10.231.X.0/24 subnets the tests pick. */
export const AUTO_POOL_V4 = '10.232.0.0/16';

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

/** `prefix-<6 hex>`; Docker wants [a-zA-Z0-9][a-zA-Z0-9_.-]+ for container and network names. */
export function uniqueName(prefix: string): string {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(prefix)) throw new Error(`bad name prefix "${prefix}"`);
  return `${prefix}-${randomHex(6)}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

// ---------------------------------------------------------------------------
// docker CLI

export class DockerCommandError extends Error {
  override readonly name = 'DockerCommandError';
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`docker ${args.join(' ')} failed (exit ${exitCode ?? 'none'}): ${stderr.trim() || stdout.trim()}`);
  }
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs the docker CLI and reports the outcome without throwing on failure. */
export async function dockerResult(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  const result = await execa(DOCKER_BIN, args, { reject: false, timeout: timeoutMs, stdin: 'ignore' });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? '').trim(),
    stderr: String(result.stderr ?? '').trim(),
    timedOut: result.timedOut,
  };
}

/** Runs the docker CLI; returns trimmed stdout, throws DockerCommandError with stderr. */
export async function docker(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const result = await dockerResult(args, timeoutMs);
  if (result.exitCode !== 0) {
    const stderr = result.timedOut ? `timed out after ${timeoutMs} ms. ${result.stderr}` : result.stderr;
    throw new DockerCommandError(args, result.exitCode, result.stdout, stderr);
  }
  return result.stdout;
}

/** Runs a command inside a container; returns stdout. */
export async function exec(container: string, command: readonly string[], timeoutMs = 30_000): Promise<string> {
  return docker(['exec', container, ...command], timeoutMs);
}

export async function execResult(container: string, command: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
  return dockerResult(['exec', container, ...command], timeoutMs);
}

/** One ping from inside `container`; true when it was answered. */
export async function canPing(container: string, target: string): Promise<boolean> {
  const result = await execResult(container, ['ping', '-c', '1', '-W', '2', target], 15_000);
  return result.exitCode === 0;
}

/** Pings until answered (ARP and DNS may need a moment), then throws with the last output. */
export async function assertPings(container: string, target: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: CommandResult | undefined;
  while (Date.now() < deadline) {
    last = await execResult(container, ['ping', '-c', '1', '-W', '2', target], 15_000);
    if (last.exitCode === 0) return;
    await sleep(300);
  }
  throw new Error(`${container} cannot ping ${target}: ${last?.stdout} ${last?.stderr}`.trim());
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

// ---------------------------------------------------------------------------
// inspection helpers

export interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options: Record<string, string> | null;
  IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string }> | null };
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }> | null;
}

export async function inspectNetwork(name: string): Promise<NetworkInspect> {
  const parsed = JSON.parse(await docker(['network', 'inspect', name])) as NetworkInspect[];
  const network = parsed[0];
  if (!network) throw new Error(`docker network inspect ${name}: empty answer`);
  return network;
}

/** The IPv4 address (no prefix) Docker recorded for `container` on `network`. */
export async function containerIp(container: string, network: string): Promise<string> {
  const format = `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`;
  const ip = await docker(['inspect', '-f', format, container]);
  if (!ip) throw new Error(`${container} has no IPv4 address on ${network}`);
  return ip;
}

/** Names of the links attached to a host bridge; [] when the bridge does not exist. */
export async function linksOnBridge(bridge: string): Promise<string[]> {
  const result = await execa('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false });
  if (result.exitCode !== 0) return [];
  return String(result.stdout)
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => Boolean(name));
}

export async function hostLinkExists(name: string): Promise<boolean> {
  const result = await execa('ip', ['link', 'show', 'dev', name], { reject: false });
  return result.exitCode === 0;
}

/** `inet a.b.c.d/len` entries of one interface inside a container. */
export async function containerInterface(container: string, ifname: string): Promise<{ inet: string[]; mac: string } | undefined> {
  const result = await execResult(container, ['ip', '-o', 'addr', 'show', 'dev', ifname]);
  if (result.exitCode !== 0) return undefined;
  const inet = [...result.stdout.matchAll(/\sinet (\S+)/g)].map((m) => m[1] ?? '');
  const link = await exec(container, ['ip', '-o', 'link', 'show', 'dev', ifname]);
  const mac = /link\/ether (\S+)/.exec(link)?.[1] ?? '';
  return { inet, mac };
}

/**
 * The container routes through the network's gateway and has no other
 * interface: without a gateway in the Join reply Docker would have attached
 * it to docker_gwbridge as eth1.
 */
export async function assertGatewayRoute(container: string, network: string): Promise<void> {
  // `docker network inspect` lists a gateway only when Docker picked the subnet; the
  // endpoint's gateway is what the driver's Join reply set.
  const format = `{{with index .NetworkSettings.Networks "${network}"}}{{.Gateway}}{{end}}`;
  const gateway = await docker(['inspect', '-f', format, container]);
  if (!gateway) throw new Error(`${container} has no IPv4 gateway on ${network} (the Join reply carried none)`);
  const routes = await exec(container, ['ip', '-4', 'route', 'show']);
  if (!new RegExp(`^default via ${gateway.replaceAll('.', '\\.')} dev eth0`, 'm').test(routes)) {
    throw new Error(`${container} has no default route via ${gateway} on eth0; routes:\n${routes}`);
  }
  const extra = await execResult(container, ['ip', 'link', 'show', 'dev', 'eth1']);
  if (extra.exitCode === 0) throw new Error(`${container} has an unexpected eth1 (docker_gwbridge?): ${extra.stdout}`);
}

function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 "${ip}"`);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [ip, len] = cidr.split('/');
  const prefix = Number(len ?? '32');
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipv4ToInt(ip ?? '') & mask) >>> 0, prefix };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const { base, prefix } = parseCidr(cidr);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((ipv4ToInt(ip.split('/')[0] ?? '') & mask) >>> 0) === base;
}

export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  const shorter = Math.min(pa.prefix, pb.prefix);
  const mask = shorter === 0 ? 0 : (~0 << (32 - shorter)) >>> 0;
  return ((pa.base & mask) >>> 0) === ((pb.base & mask) >>> 0);
}

/** Every IPv4 CIDR in use: host routes and Docker networks. */
export async function usedIpv4Cidrs(): Promise<string[]> {
  const routes = String((await execa('ip', ['-o', '-4', 'route', 'show', 'table', 'all'])).stdout)
    .split('\n')
    .map((line) => line.split(/\s+/).find((word) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(word)))
    .filter((cidr): cidr is string => Boolean(cidr));
  return [...routes, ...(await dockerSubnetsV4())];
}

/** IPv4 subnets of every Docker network, in one API call (networks come and go while other tests run). */
export async function dockerSubnetsV4(exceptIds: ReadonlySet<string> = new Set()): Promise<string[]> {
  const networks = await new Docker({ socketPath: DOCKER_SOCKET }).listNetworks();
  return networks
    .filter((network) => !exceptIds.has(network.Id))
    .flatMap((network) => network.IPAM?.Config ?? [])
    .map((config) => config.Subnet ?? '')
    .filter((subnet) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
}

const handedOutSubnets = new Set<string>();

/** A random 10.231.X.0/24 that no route, Docker network or earlier call of this process uses. */
export async function freeSubnet(): Promise<string> {
  const used = await usedIpv4Cidrs();
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = `10.231.${10 + Math.floor(Math.random() * 240)}.0/24`;
    if (handedOutSubnets.has(candidate)) continue;
    if (used.some((cidr) => cidrsOverlap(cidr, candidate))) continue;
    handedOutSubnets.add(candidate);
    return candidate;
  }
  throw new Error('no free 10.231.X.0/24 subnet');
}

/** The n-th host address of a /24 such as 10.231.7.0/24 -> 10.231.7.<n>. */
export function hostInSubnet(subnet: string, n: number): string {
  return `${subnet.split('.').slice(0, 3).join('.')}.${n}`;
}

// ---------------------------------------------------------------------------
// prerequisites and the test image

/**
 * False when everything an engine test needs is here, else the skip reason.
 * Under CI=true a gap throws (the file fails) instead of skipping.
 */
export async function engineSkipReason(): Promise<string | false> {
  const mode = pluginMode();
  return skipUnless([
    [isRoot(), 'root'],
    [hasCniPlugins(), 'CNI plugins (containernetworking-plugins) in /usr/lib/cni or /opt/cni/bin'],
    [existsSync(DOCKER_BIN), `docker client ${DOCKER_BIN}`],
    [await dockerAvailable(), 'a running dockerd on /var/run/docker.sock'],
    [mode.kind !== 'child' || existsSync(PLUGIN_ENTRY), `${PLUGIN_ENTRY} (run npm run build)`],
  ]);
}

/** Builds the offline busybox image when it is missing. */
export async function ensureTestImage(): Promise<void> {
  const present = await dockerResult(['image', 'inspect', TEST_IMAGE]);
  if (present.exitCode === 0) return;
  const built = await execa('bash', [IMAGE_BUILD_SCRIPT], {
    reject: false,
    env: { DOCKER_BIN, DOCKER_CNI_TEST_IMAGE: TEST_IMAGE },
    timeout: 120_000,
  });
  if (built.exitCode !== 0) throw new Error(`building ${TEST_IMAGE} failed: ${String(built.stderr)}${String(built.stdout)}`);
}

// ---------------------------------------------------------------------------
// the plugin under test

type PluginMode =
  | { kind: 'child' }
  | { kind: 'managed'; driver: string }
  | { kind: 'external'; driver: string };

function pluginMode(): PluginMode {
  const driver = process.env.DOCKER_CNI_TEST_DRIVER;
  if (!driver) return { kind: 'child' };
  return process.env.DOCKER_CNI_TEST_MANAGED === '1' ? { kind: 'managed', driver } : { kind: 'external', driver };
}

export interface PluginDirs {
  stateDir: string;
  /** Undefined when the plugin's conf dir is unknown (managed/external without DOCKER_CNI_TEST_CONF_DIR). */
  confDir: string | undefined;
  cacheDir: string;
  hostLocalDir: string;
}

export interface StartPluginOptions {
  /** Extra environment for the child plugin (child mode only). */
  env?: Record<string, string>;
  /** Milliseconds to wait for the socket to answer Plugin.Activate. */
  readyTimeoutMs?: number;
}

export class PluginHandle {
  /** Docker driver name, for both `-d` and `--ipam-driver`. */
  readonly driver: string;
  readonly socketPath: string | undefined;
  readonly dirs: PluginDirs;
  readonly logFile: string | undefined;
  /** False for an externally run plugin: the harness cannot restart it. */
  readonly canRestart: boolean;
  /** Set when a stop found the socket file still present (a plugin should remove it). */
  leftSocketBehind = false;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> | undefined;
  /** Managed mode: the plugin's ID, whose lines dockerd's log carries. */
  private managedId: string | undefined;

  constructor(
    private readonly mode: PluginMode,
    private readonly tempRoot: string | undefined,
    private readonly options: StartPluginOptions,
  ) {
    if (mode.kind === 'child') {
      const root = tempRoot ?? '';
      this.driver = `cnit${randomHex(6)}`;
      this.socketPath = join(LEGACY_PLUGIN_DIR, `${this.driver}.sock`);
      this.dirs = {
        stateDir: join(root, 'state'),
        confDir: join(root, 'conf'),
        cacheDir: join(root, 'cache'),
        hostLocalDir: join(root, 'host-local'),
      };
      this.logFile = join(root, 'plugin.log');
      this.canRestart = true;
    } else {
      this.driver = mode.driver;
      this.socketPath = undefined;
      this.dirs = {
        stateDir: process.env.DOCKER_CNI_TEST_STATE_DIR ?? '/var/lib/docker-cni',
        confDir: process.env.DOCKER_CNI_TEST_CONF_DIR,
        cacheDir: '/var/lib/cni',
        hostLocalDir: '/var/lib/cni/networks',
      };
      this.logFile = undefined;
      this.canRestart = mode.kind === 'managed';
    }
  }

  get running(): boolean {
    if (this.mode.kind !== 'child') return true;
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Directories private to this harness-run plugin ([] for an installed plugin). */
  ownedDirs(): string[] {
    return this.tempRoot ? [this.tempRoot] : [];
  }

  /** Directories whose files are plugin state; leak checks list them. */
  watchedDirs(): string[] {
    const { stateDir, cacheDir, hostLocalDir } = this.dirs;
    return [
      join(stateDir, 'networks'),
      join(stateDir, 'endpoints'),
      join(stateDir, 'pools'),
      join(cacheDir, 'results'),
      hostLocalDir,
    ];
  }

  async start(): Promise<void> {
    if (this.mode.kind === 'external') return;
    if (this.mode.kind === 'managed') {
      const enabled = await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', this.mode.driver]);
      if (enabled !== 'true') await docker(['plugin', 'enable', this.mode.driver], 60_000);
      this.managedId = await docker(['plugin', 'inspect', '-f', '{{.Id}}', this.mode.driver]);
      return;
    }
    if (this.running) throw new Error('plugin already running');
    for (const dir of [LEGACY_PLUGIN_DIR, this.dirs.stateDir, this.dirs.confDir ?? '', this.dirs.cacheDir, this.dirs.hostLocalDir]) {
      mkdirSync(dir, { recursive: true });
    }
    const logFd = openSync(this.logFile ?? '/dev/null', 'a');
    const socketPath = this.socketPath ?? '';
    const args = [
      PLUGIN_ENTRY,
      'serve',
      '--socket', socketPath,
      '--state-dir', this.dirs.stateDir,
      '--conf-dir', this.dirs.confDir ?? '',
      '--cache-dir', this.dirs.cacheDir,
      '--host-local-dir', this.dirs.hostLocalDir,
      '--log-level', 'debug',
    ];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFd, logFd],
      env: {
        ...process.env,
        DOCKER_CNI_DEFAULT_POOLS_V4: `${AUTO_POOL_V4}/24`,
        // Periodic reconciliation would act on other docker-cni instances' links and
        // rules on a shared host; the startup pass still runs.
        DOCKER_CNI_RECONCILE_INTERVAL_MS: '0',
        // Tests place conflists and create their networks themselves; the
        // conf-dir sync would race them. Its own tests turn it on.
        DOCKER_CNI_CONF_SYNC: 'false',
        ...this.options.env,
      },
    });
    closeSync(logFd);
    // Never leave the plugin running after the test process, however it ends.
    const killOnExit = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('exit', () => process.removeListener('exit', killOnExit));
    this.child = child;
    this.childExit = new Promise((done) => child.once('exit', () => done()));
    try {
      await waitFor(async () => !this.running || (await answersActivate(socketPath)), {
        timeoutMs: this.options.readyTimeoutMs ?? 20_000,
        intervalMs: 100,
        what: `plugin socket ${socketPath} to answer Plugin.Activate`,
      });
      if (!this.running) throw new Error(`plugin exited during start (code ${child.exitCode}, signal ${child.signalCode})`);
    } catch (err) {
      await this.stop();
      throw new Error(`${(err as Error).message}\n--- plugin log ---\n${this.logTail()}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    if (this.mode.kind === 'external') return;
    if (this.mode.kind === 'managed') {
      await docker(['plugin', 'disable', '-f', this.mode.driver], 60_000);
      return;
    }
    if (this.child && this.running) await stopChild(this.child, this.childExit);
    this.child = undefined;
    if (this.socketPath && existsSync(this.socketPath)) {
      this.leftSocketBehind = true;
      unlinkSync(this.socketPath);
    }
  }

  async restart(): Promise<void> {
    if (!this.canRestart) throw new Error(`cannot restart a plugin run outside the harness (${this.driver})`);
    await this.stop();
    await this.start();
  }

  /** The whole plugin log: its own file (child mode) or its lines in dockerd's log (managed mode). */
  private logText(): string | undefined {
    try {
      if (this.logFile) return readFileSync(this.logFile, 'utf8');
      if (this.managedId) return managedPluginLog(this.managedId);
    } catch {
      // no log yet
    }
    return undefined;
  }

  /** Characters logged so far (0 without a log). */
  logSize(): number {
    return this.logText()?.length ?? 0;
  }

  /** The last lines of the plugin's log, optionally only what was written after position `from`. */
  logTail(lines = 60, from = 0): string {
    const text = this.logText();
    if (text === undefined) return `(no log of plugin ${this.driver} is readable)`;
    const tail = text.slice(from).trimEnd();
    return tail ? tail.split('\n').slice(-lines).join('\n') : '(nothing logged)';
  }

  /** Stops the plugin and removes its temp dirs (kept when DOCKER_CNI_TEST_KEEP=1). */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.tempRoot && process.env.DOCKER_CNI_TEST_KEEP !== '1') {
      rmSync(this.tempRoot, { recursive: true, force: true });
    }
  }
}

/** SIGTERM (graceful), then SIGKILL if the process has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, exit: Promise<void> | undefined, graceMs = 10_000): Promise<void> {
  child.kill('SIGTERM');
  const exited = await Promise.race([exit?.then(() => true), sleep(graceMs).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await exit;
  }
}

/** True when the socket serves docker-cni (Plugin.Activate lists both driver kinds). */
export function answersActivate(socketPath: string): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ socketPath, method: 'POST', path: '/Plugin.Activate', timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const implementsList = (JSON.parse(body) as { Implements?: unknown }).Implements;
          done(res.statusCode === 200 && Array.isArray(implementsList) && implementsList.includes('NetworkDriver') && implementsList.includes('IpamDriver'));
        } catch {
          done(false);
        }
      });
    });
    req.on('error', () => done(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Starts the plugin under test in the mode chosen by the environment. */
export async function startPlugin(options: StartPluginOptions = {}): Promise<PluginHandle> {
  const mode = pluginMode();
  const tempRoot = mode.kind === 'child' ? await mkdtemp(join(tmpdir(), 'docker-cni-engine-')) : undefined;
  const plugin = new PluginHandle(mode, tempRoot, options);
  try {
    await plugin.start();
  } catch (err) {
    await plugin.dispose();
    throw err;
  }
  return plugin;
}

// ---------------------------------------------------------------------------
// cleanup registry and per-test scope

/** Removing what is already gone is success; anything else (e.g. the plugin not answering) is reported. */
const ALREADY_GONE = /No such (container|network)/i;

/** Undo actions run in reverse order of registration; failures are collected, not thrown. */
export class Cleanup {
  private readonly actions: Array<{ what: string; run: () => Promise<unknown> }> = [];

  defer(what: string, run: () => Promise<unknown>): void {
    this.actions.push({ what, run });
  }

  async run(): Promise<string[]> {
    const failures: string[] = [];
    while (this.actions.length > 0) {
      const action = this.actions.pop();
      if (!action) break;
      try {
        await action.run();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!ALREADY_GONE.test(message)) failures.push(`${action.what}: ${message}`);
      }
    }
    return failures;
  }
}

export interface NetworkOptions {
  name?: string;
  /** Defaults to the plugin under test; pass null for Docker's default IPAM. */
  ipamDriver?: string | null;
  subnet?: string;
  gateway?: string;
  /** `-o key=value` options. */
  options?: Record<string, string>;
  internal?: boolean;
}

export interface CreatedNetwork {
  name: string;
  id: string;
  /** The bridge docker-cni generates: dcni-<10 hex of the ID>, or the bridge.name option. */
  bridge: string;
}

export interface ContainerOptions {
  network: string;
  name?: string;
  ip?: string;
  mac?: string;
  aliases?: string[];
  /** Defaults to an idle shell that exits promptly on SIGTERM. */
  command?: string[];
  /** Only create (docker create), do not start. */
  createOnly?: boolean;
}

/** PID 1 that sleeps but honours SIGTERM, so `docker restart`/`stop` take about a second. */
export const IDLE_COMMAND = ['sh', '-c', "trap 'exit 0' TERM INT; while true; do sleep 1; done"];

export class EngineScope {
  readonly cleanup = new Cleanup();
  constructor(readonly plugin: PluginHandle) {}

  /** `docker network create -d <plugin> ...`; removed again at the end of the test. */
  async createNetwork(options: NetworkOptions = {}): Promise<CreatedNetwork> {
    const name = options.name ?? uniqueName('cnit-net');
    const args = ['network', 'create', '-d', this.plugin.driver];
    const ipamDriver = options.ipamDriver === undefined ? this.plugin.driver : options.ipamDriver;
    if (ipamDriver !== null) args.push('--ipam-driver', ipamDriver);
    if (options.subnet) args.push('--subnet', options.subnet);
    if (options.gateway) args.push('--gateway', options.gateway);
    if (options.internal) args.push('--internal');
    for (const [key, value] of Object.entries(options.options ?? {})) args.push('-o', `${key}=${value}`);
    args.push(name);
    this.cleanup.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
    const id = await docker(args);
    const bridge = options.options?.['com.docker.network.bridge.name'] ?? `dcni-${id.slice(0, 10)}`;
    const subnets = (await dockerResult(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', id])).stdout.split(/\s+/);
    this.own(id.slice(0, 12), bridge, ...subnets.filter(Boolean).map(subnetToken));
    return { name, id, bridge };
  }

  /** `docker run -d` (or `docker create`) of the test image; force-removed at the end of the test. */
  async runContainer(options: ContainerOptions): Promise<string> {
    const name = options.name ?? uniqueName('cnit-ctr');
    const args = [options.createOnly ? 'create' : 'run'];
    if (!options.createOnly) args.push('-d');
    args.push('--name', name, '--network', options.network, '--label', 'docker-cni-test=1');
    if (options.ip) args.push('--ip', options.ip);
    if (options.mac) args.push('--mac-address', options.mac);
    for (const alias of options.aliases ?? []) args.push('--network-alias', alias);
    args.push(TEST_IMAGE, ...(options.command ?? IDLE_COMMAND));
    this.cleanup.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
    await docker(args);
    const endpoints = await dockerResult(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}', name]);
    this.own(...endpoints.stdout.split(/\s+/).filter(Boolean).map((endpointId) => `dc${endpointId.slice(0, 13)}`));
    return name;
  }

  /** Names that identify what this test made (see sharedHostMode). */
  readonly ownedTokens = new Set<string>();

  own(...tokens: string[]): void {
    for (const token of tokens) if (token.length >= 6) this.ownedTokens.add(token);
  }

  /** Registers any other undo action (e.g. deleting a file or a host link). */
  defer(what: string, run: () => Promise<unknown>): void {
    this.cleanup.defer(what, run);
  }
}

const DOCKER_GWBRIDGE = 'docker_gwbridge';

async function dockerNetworkExists(name: string): Promise<boolean> {
  return (await dockerResult(['network', 'inspect', name])).exitCode === 0;
}

/**
 * DOCKER_CNI_TEST_SHARED_HOST=1: other tests run on this host at the same
 * time, so leak checks only count leftovers naming this test's networks,
 * bridges, subnets and links (plus its private plugin dirs). Ignored under
 * CI, where the tests have the host to themselves and every leftover counts.
 */
export function sharedHostMode(): boolean {
  return process.env.DOCKER_CNI_TEST_SHARED_HOST === '1' && process.env.CI !== 'true';
}

/** A subnet as it appears in rules: the CIDR itself, or for /24 and longer its first three octets plus a dot. */
function subnetToken(cidr: string): string {
  const [address, length] = cidr.split('/');
  if (address?.includes('.') && Number(length) >= 24) return `${address.split('.').slice(0, 3).join('.')}.`;
  return cidr;
}

export interface EngineCaseOptions {
  ignore?: LeakIgnore;
  settleMs?: number;
}

/**
 * Runs one engine test body with a fresh cleanup scope: snapshot the host,
 * run the body, undo everything it registered (even when it failed), then
 * require the host to be back where it was. Failures carry the plugin log.
 */
export async function engineCase(
  plugin: PluginHandle,
  body: (scope: EngineScope) => Promise<void>,
  options: EngineCaseOptions = {},
): Promise<void> {
  const snapshotOptions = { dirs: plugin.watchedDirs() };
  const gwbridgeBefore = await dockerNetworkExists(DOCKER_GWBRIDGE);
  const before: HostSnapshot = await takeSnapshot(snapshotOptions);
  const scope = new EngineScope(plugin);
  const logStart = plugin.logSize();
  let bodyError: unknown;
  try {
    await body(scope);
  } catch (err) {
    bodyError = err;
  }
  const cleanupFailures = await scope.cleanup.run();
  let leakError: unknown;
  try {
    await assertNoLeaks(before, {
      ...snapshotOptions,
      ignore: options.ignore,
      settleMs: options.settleMs,
      ...(sharedHostMode() ? { onlyMentioning: [...scope.ownedTokens], ownedDirs: plugin.ownedDirs() } : {}),
    });
  } catch (err) {
    leakError = err;
  }
  // Docker creates docker_gwbridge when a driver's Join gives no gateway and
  // never removes it. The leak check above has reported it; remove it (when
  // unused) so the following tests start from a clean host again.
  if (!gwbridgeBefore && (await dockerNetworkExists(DOCKER_GWBRIDGE))) {
    await dockerResult(['network', 'rm', DOCKER_GWBRIDGE]);
  }
  const problems = [
    ...cleanupFailures.map((f) => `cleanup failed: ${f}`),
    ...(leakError instanceof Error ? [leakError.message] : []),
  ];
  if (bodyError === undefined && problems.length === 0) return;
  const diagnostics = `--- plugin ${plugin.driver} log during this test (tail) ---\n${plugin.logTail(80, logStart)}`;
  if (bodyError !== undefined) {
    console.error([...problems, diagnostics].join('\n'));
    throw bodyError;
  }
  console.error(diagnostics);
  throw new Error(problems.join('\n'));
}

/**
 * Registers before/after hooks in the calling describe(): build the test
 * image if needed, snapshot the host, start the plugin; afterwards stop it,
 * remove its temp dirs and require the host to be as it was before the file.
 * Returns an accessor for the running plugin.
 */
export function setupEngineSuite(options: StartPluginOptions = {}): () => PluginHandle {
  let plugin: PluginHandle | undefined;
  let hostBefore: HostSnapshot | undefined;
  before(async () => {
    await ensureTestImage();
    hostBefore = await takeSnapshot();
    plugin = await startPlugin(options);
  });
  after(async () => {
    await plugin?.dispose();
    // On a shared host nothing at this level can be told apart from other tests' work.
    if (hostBefore && !sharedHostMode()) await assertNoLeaks(hostBefore);
  });
  return () => {
    if (!plugin) throw new Error('the plugin under test was not started (see the before hook failure)');
    return plugin;
  };
}

export { assertNoLeaks, takeSnapshot };

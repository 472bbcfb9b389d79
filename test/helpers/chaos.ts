/**
 * Fault-injection helpers for the chaos tests (test/engine/chaos/).
 *
 * - KillablePlugin: docker-cni run as a child process that can be SIGKILLed
 *   and restarted on the same state/conf/cache/host-local dirs, plus the
 *   `docker-cni gc|state` CLI pointed at those dirs. (PluginHandle in
 *   engine.ts only stops gracefully.)
 * - DaemonUnderTest: a dockerd that can be SIGKILLed and started again from
 *   the command line read back from /proc/<pid>/cmdline. By default it is a
 *   private dockerd the test starts itself (own data-root, exec-root and
 *   socket, no iptables, no default bridge), so the host's dockerd and every
 *   container on it are left alone. With DOCKER_CNI_CHAOS_HOST_DOCKERD=1 it is
 *   the host's own dockerd (a disposable host is required for that).
 * - Leftover probes: what an endpoint leaves on the host (link, netns,
 *   iptables rules, host-local reservation, CNI cache entry, record).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AUTO_POOL_V4, answersActivate, stopChild, DOCKER_BIN, PLUGIN_ENTRY, REPO_ROOT, TEST_IMAGE, randomHex, sleep, waitFor, type CommandResult } from './engine.js';

const LEGACY_PLUGIN_DIR = '/run/docker/plugins';

export function randomBetween(minMs: number, maxMs: number): number {
  return minMs + Math.floor(Math.random() * (maxMs - minMs + 1));
}

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

// ---------------------------------------------------------------------------
// docker CLI against a chosen daemon

/** The docker CLI bound to one daemon socket (undefined: the default one). */
export class DockerClient {
  constructor(readonly socket: string | undefined) {}

  private argv(args: readonly string[]): string[] {
    return this.socket ? ['-H', `unix://${this.socket}`, ...args] : [...args];
  }

  async result(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
    const r = await execa(DOCKER_BIN, this.argv(args), { reject: false, timeout: timeoutMs, stdin: 'ignore' });
    return {
      exitCode: r.exitCode ?? -1,
      stdout: String(r.stdout ?? '').trim(),
      stderr: String(r.stderr ?? '').trim(),
      timedOut: r.timedOut,
    };
  }

  async run(args: readonly string[], timeoutMs = 120_000): Promise<string> {
    const r = await this.result(args, timeoutMs);
    if (r.exitCode !== 0) {
      throw new Error(`docker ${args.join(' ')} failed (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}): ${r.stderr || r.stdout}`);
    }
    return r.stdout;
  }

  async answers(): Promise<boolean> {
    return (await this.result(['info', '--format', '{{.ServerVersion}}'], 10_000)).exitCode === 0;
  }

  /** IDs of every container (running or not) carrying `label=value`. */
  async containersLabelled(label: string, value: string): Promise<string[]> {
    const out = await this.run(['ps', '-aq', '--no-trunc', '--filter', `label=${label}=${value}`]);
    return out.split('\n').filter(Boolean);
  }

  /** Removes containers by ID or name, 20 per call; failures are returned, not thrown. */
  async forceRemove(containers: readonly string[]): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < containers.length; i += 20) {
      const batch = containers.slice(i, i + 20);
      const r = await this.result(['rm', '-f', ...batch]);
      if (r.exitCode !== 0 && !/No such container/i.test(r.stderr)) failures.push(r.stderr);
    }
    return failures;
  }
}

/** What a container holds on one network, captured while it runs. */
export interface EndpointTrace {
  container: string;
  network: string;
  ip: string;
  endpointId: string;
  sandboxKey: string;
}

export async function traceEndpoint(docker: DockerClient, container: string, network: string): Promise<EndpointTrace> {
  const format = `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}} {{.EndpointID}}{{end}} {{.NetworkSettings.SandboxKey}}`;
  const [ip, endpointId, sandboxKey] = (await docker.run(['inspect', '-f', format, container])).split(/\s+/);
  if (!ip || !endpointId || !/^[0-9a-f]{64}$/.test(endpointId)) {
    throw new Error(`${container} has no endpoint on ${network} (inspect gave "${ip} ${endpointId}")`);
  }
  return { container, network, ip, endpointId, sandboxKey: sandboxKey ?? '' };
}

// ---------------------------------------------------------------------------
// the plugin, killable

export interface KillablePluginOptions {
  /** Background reconciliation period (the plugin's default when unset). */
  reconcileIntervalMs?: number;
  /** Docker API socket the plugin reconciles against (default: the host's). */
  dockerSocket?: string;
  readyTimeoutMs?: number;
}

export interface PluginStateDump {
  networks: Array<{ id: string; bridge?: string }>;
  endpoints: Array<{ id: string; network: string; status: string; link: string; addresses: string[] }>;
  pools: Array<{ poolId: string; pool: string }>;
}

export interface GcReportJson {
  dryRun: boolean;
  dockerReachable: boolean;
  actions: Array<{ kind: string; id: string; reason: string; error?: string }>;
}

/**
 * `node dist/cli/main.js serve` on a unique legacy socket with private temp
 * dirs, which survive kills and restarts so the plugin finds its journal.
 */
export class KillablePlugin {
  readonly driver = `cnix${randomHex(6)}`;
  readonly socketPath = join(LEGACY_PLUGIN_DIR, `${this.driver}.sock`);
  readonly stateDir: string;
  readonly confDir: string;
  readonly cacheDir: string;
  readonly hostLocalDir: string;
  readonly logFile: string;
  kills = 0;
  starts = 0;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> | undefined;
  private readonly startedPids = new Set<number>();

  private constructor(
    private readonly root: string,
    private readonly options: KillablePluginOptions,
  ) {
    this.stateDir = join(root, 'state');
    this.confDir = join(root, 'conf');
    this.cacheDir = join(root, 'cache');
    this.hostLocalDir = join(root, 'host-local');
    this.logFile = join(root, 'plugin.log');
    for (const dir of [LEGACY_PLUGIN_DIR, this.stateDir, this.confDir, this.cacheDir, this.hostLocalDir]) mkdirSync(dir, { recursive: true });
  }

  /** Creates the dirs; the plugin is not started yet. */
  static async create(options: KillablePluginOptions = {}): Promise<KillablePlugin> {
    return new KillablePlugin(await mkdtemp(join(tmpdir(), 'docker-cni-chaos-')), options);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** The setting flags shared by `serve` and the state commands. */
  settingFlags(): string[] {
    return [
      '--socket', this.socketPath,
      '--state-dir', this.stateDir,
      '--conf-dir', this.confDir,
      '--cache-dir', this.cacheDir,
      '--host-local-dir', this.hostLocalDir,
      ...(this.options.dockerSocket ? ['--docker-socket', this.options.dockerSocket] : []),
      ...(this.options.reconcileIntervalMs !== undefined ? ['--reconcile-interval-ms', String(this.options.reconcileIntervalMs)] : []),
    ];
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_CNI_DEFAULT_POOLS_V4: `${AUTO_POOL_V4}/24` };
  }

  /** Directories whose files are plugin state; leak snapshots list them. */
  watchedDirs(): string[] {
    return [
      join(this.stateDir, 'networks'),
      join(this.stateDir, 'endpoints'),
      join(this.stateDir, 'pools'),
      join(this.cacheDir, 'results'),
      this.hostLocalDir,
    ];
  }

  /** Starts and waits until the socket answers Plugin.Activate. */
  async start(): Promise<void> {
    if (this.running) throw new Error('plugin already running');
    const logFd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [PLUGIN_ENTRY, 'serve', ...this.settingFlags(), '--log-level', 'debug'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFd, logFd],
      env: this.env(),
    });
    closeSync(logFd);
    const killOnExit = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('exit', () => process.removeListener('exit', killOnExit));
    this.child = child;
    if (child.pid) this.startedPids.add(child.pid);
    this.childExit = new Promise((done) => child.once('exit', () => done()));
    this.starts++;
    try {
      await waitFor(async () => !this.running || (await answersActivate(this.socketPath)), {
        timeoutMs: this.options.readyTimeoutMs ?? 30_000,
        intervalMs: 50,
        what: `plugin socket ${this.socketPath} to answer Plugin.Activate`,
      });
      if (!this.running) throw new Error(`plugin exited during start (code ${child.exitCode}, signal ${child.signalCode})`);
    } catch (err) {
      await this.kill().catch(() => undefined);
      throw new Error(`${(err as Error).message}\n--- plugin log ---\n${this.logTail()}`, { cause: err });
    }
  }

  /** SIGKILL: no handler runs, the socket file stays behind, in-flight calls die half-done. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      child.kill('SIGKILL');
      await this.childExit;
      this.kills++;
    }
    this.child = undefined;
  }

  /** SIGTERM (graceful), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.child && this.running) await stopChild(this.child, this.childExit);
    this.child = undefined;
  }

  /** Runs `docker-cni <args...>` with this plugin's dirs. */
  async cli(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
    const r = await execa(process.execPath, [PLUGIN_ENTRY, ...this.settingFlags(), ...args], {
      cwd: REPO_ROOT,
      env: this.env(),
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
    });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), timedOut: r.timedOut };
  }

  /** `docker-cni gc --json --grace-seconds N`; throws when the command itself failed to run. */
  async gc(graceSeconds = 0): Promise<{ exitCode: number; report: GcReportJson }> {
    const r = await this.cli(['gc', '--json', '--grace-seconds', String(graceSeconds)]);
    try {
      return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as GcReportJson };
    } catch {
      throw new Error(`docker-cni gc printed no report (exit ${r.exitCode}): ${r.stderr}${r.stdout}`);
    }
  }

  /** `docker-cni state`: the records on disk. */
  async state(): Promise<PluginStateDump> {
    const r = await this.cli(['state']);
    if (r.exitCode !== 0) throw new Error(`docker-cni state failed (exit ${r.exitCode}): ${r.stderr}`);
    return JSON.parse(r.stdout) as PluginStateDump;
  }

  logTail(lines = 80): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no plugin log)';
    }
  }

  /** Stops the plugin, removes a socket left by a kill, and the temp dirs (kept with DOCKER_CNI_TEST_KEEP=1). */
  async dispose(): Promise<void> {
    await this.stop();
    // A run that ended killed leaves its staging namespaces for the next start, which never comes.
    for (const name of orphanStagingNetns()) {
      const pid = Number(/-(\d+)-\d+$/.exec(name)?.[1]);
      if (this.startedPids.has(pid)) await execa('ip', ['netns', 'del', name], { reject: false });
    }
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath);
    if (process.env.DOCKER_CNI_TEST_KEEP !== '1') rmSync(this.root, { recursive: true, force: true });
  }
}


// ---------------------------------------------------------------------------
// leftovers of one endpoint

export interface LeftoverContext {
  plugin: KillablePlugin;
  /** Addresses live containers hold now: a reused address is not a leftover. */
  liveIps: ReadonlySet<string>;
  /** iptables-save output of the filter and nat tables (one read shared by many probes). */
  rules: string;
}

export async function readRules(): Promise<string> {
  const parts: string[] = [];
  for (const binary of ['iptables-save', 'ip6tables-save']) {
    for (const table of ['filter', 'nat']) {
      const r = await execa(binary, ['-t', table], { reject: false, timeout: 30_000 });
      if (r.exitCode !== 0) throw new Error(`${binary} -t ${table} failed: ${String(r.stderr)}`);
      parts.push(String(r.stdout));
    }
  }
  return parts.join('\n');
}

/** Staging namespaces (dcni-stage-<pid>-<n>) whose creating process is gone: a restart must have removed them. */
export function orphanStagingNetns(prefix = 'dcni-stage'): string[] {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  return names.filter((name) => {
    const pid = Number(new RegExp(`^${prefix}-(\\d+)-\\d+$`).exec(name)?.[1]);
    return Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
  });
}

function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries.map((entry) => join(dir, entry));
}

/**
 * Links other than lo inside a Docker sandbox netns that still exists. Docker
 * removes sandbox netns files lazily (libnetwork's namespace GC runs about
 * once a minute), so only their contents can be checked right away.
 */
export async function linksInSandbox(sandboxKey: string): Promise<string[]> {
  if (!sandboxKey || !existsSync(sandboxKey)) return [];
  const r = await execa('nsenter', [`--net=${sandboxKey}`, 'ip', '-o', 'link', 'show'], { reject: false, timeout: 10_000 });
  if (r.exitCode !== 0) return []; // no longer a namespace (unmounted, file not yet removed)
  return String(r.stdout)
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => !!name && name !== 'lo');
}

/** Everything a removed endpoint left on the host; empty when it left nothing. */
export async function leftoversOf(trace: EndpointTrace, ctx: LeftoverContext): Promise<string[]> {
  const found: string[] = [];
  const link = `dc${trace.endpointId.slice(0, 13)}`;
  if (existsSync(`/sys/class/net/${link}`)) found.push(`link ${link}`);
  for (const inside of await linksInSandbox(trace.sandboxKey)) found.push(`link ${inside} in netns ${trace.sandboxKey}`);
  if (existsSync(join(ctx.plugin.stateDir, 'endpoints', `${trace.endpointId}.json`))) found.push('endpoint record');
  for (const file of filesUnder(join(ctx.plugin.cacheDir, 'results'))) {
    if (file.includes(trace.endpointId)) found.push(`CNI cache entry ${file}`);
  }
  if (!ctx.liveIps.has(trace.ip)) {
    const mentions = new RegExp(`(^|[^0-9.])${trace.ip.replace(/\./g, '\\.')}(/32)?([^0-9.]|$)`);
    for (const line of ctx.rules.split('\n')) {
      if (mentions.test(line)) found.push(`rule ${line.trim()}`);
    }
    for (const file of filesUnder(ctx.plugin.hostLocalDir)) {
      if (file.endsWith(`/${trace.ip}`)) found.push(`host-local reservation ${file}`);
    }
  }
  return found.map((what) => `${trace.container} (${trace.ip} on ${trace.network}): ${what}`);
}

// ---------------------------------------------------------------------------
// a dockerd that can be killed and started again

export interface DaemonCommandLine {
  exe: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/** How a running process was started, read back from /proc. */
export function commandLineOf(pid: number): DaemonCommandLine {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.length > 0);
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return {
    exe: readlinkSafe(`/proc/${pid}/exe`) ?? argv[0] ?? 'dockerd',
    argv,
    cwd: readlinkSafe(`/proc/${pid}/cwd`) ?? '/',
    env,
  };
}

function readlinkSafe(path: string): string | undefined {
  try {
    // " (deleted)" is appended when the binary was replaced (an upgrade) after the start.
    return readlinkSync(path).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface DaemonUnderTestOptions {
  /** Kill the host's own dockerd instead of a private one (disposable hosts only). */
  host?: boolean;
}

/**
 * A dockerd for fault injection. The private one has its own data-root,
 * exec-root, pidfile and socket, and neither touches iptables nor creates a
 * default bridge, so killing it leaves the host's Docker and its containers
 * alone. The host one is found through /var/run/docker.pid.
 */
export class DaemonUnderTest {
  readonly socket: string;
  readonly docker: DockerClient;
  readonly logFile: string;
  kills = 0;
  private readonly root: string | undefined;
  private readonly pidFile: string;
  private readonly execRoot: string | undefined;

  private constructor(readonly host: boolean, root: string | undefined, logDir: string) {
    this.root = root;
    this.logFile = join(logDir, 'dockerd.log');
    if (host) {
      this.socket = '/var/run/docker.sock';
      this.pidFile = '/var/run/docker.pid';
      this.docker = new DockerClient(undefined);
    } else {
      const id = randomHex(6);
      this.socket = `/run/dcni-chaos-${id}.sock`;
      this.pidFile = `/run/dcni-chaos-${id}.pid`;
      this.docker = new DockerClient(this.socket);
      this.execRoot = `/run/dcni-chaos-${id}`;
    }
  }

  get execRootPath(): string | undefined {
    return this.execRoot;
  }

  /** Private daemon only: kills the given shims of this daemon and the container processes under them. */
  async killShims(shims: readonly Shim[]): Promise<void> {
    if (this.host || !this.execRoot) throw new Error('only the shims of a private dockerd may be killed');
    await killShimsOf(`${this.execRoot}/`, new Set(shims.map((s) => s.pid)));
  }

  static async create(options: DaemonUnderTestOptions = {}): Promise<DaemonUnderTest> {
    const logDir = await mkdtemp(join(tmpdir(), 'docker-cni-dockerd-'));
    if (options.host) return new DaemonUnderTest(true, undefined, logDir);
    return new DaemonUnderTest(false, logDir, logDir);
  }

  get dataRoot(): string | undefined {
    return this.root ? join(this.root, 'data') : undefined;
  }

  /** The daemon's PID from its pidfile, when that process is alive. */
  pid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Starts the private daemon for the first time and loads the test image into it. */
  async startPrivate(): Promise<void> {
    if (this.host) throw new Error('the host dockerd is started by the host');
    const dataRoot = this.dataRoot ?? '';
    mkdirSync(dataRoot, { recursive: true });
    await this.launch({
      exe: hostDockerdBinary(),
      argv: [
        'dockerd',
        '--data-root', dataRoot,
        '--exec-root', this.execRoot ?? '',
        '--pidfile', this.pidFile,
        '-H', `unix://${this.socket}`,
        '--bridge', 'none',
        '--iptables=false',
        '--ip6tables=false',
      ],
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const archive = join(this.root ?? tmpdir(), 'image.tar');
    const saved = await execa(DOCKER_BIN, ['save', '-o', archive, TEST_IMAGE], { reject: false, timeout: 120_000 });
    const loaded = saved.exitCode === 0 ? await this.docker.result(['load', '-i', archive]) : undefined;
    rmSync(archive, { force: true });
    if (saved.exitCode !== 0 || loaded?.exitCode !== 0) {
      throw new Error(`loading ${TEST_IMAGE} into the private dockerd failed: ${String(saved.stderr)} ${loaded?.stderr ?? ''}`);
    }
  }

  /**
   * Starts dockerd as the given command line, detached into a session of its
   * own (setsid, via spawn's `detached`), logging to a temp file, and waits
   * for `docker info`. This process stays its parent, so a killed daemon is
   * reaped here and not left a zombie (a zombie's pidfile makes the next
   * dockerd refuse to start).
   */
  async launch(cmd: DaemonCommandLine, timeoutMs = 90_000): Promise<void> {
    const child = spawnDaemon(cmd, this.logFile, this.pidFile);
    await waitFor(async () => child.exitCode === null && (await this.docker.answers()), {
      timeoutMs,
      intervalMs: 300,
      what: `dockerd on ${this.socket} to answer`,
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- dockerd log ---\n${this.logTail(15)}`, { cause: err });
    });
  }

  /**
   * dockerd refuses to start while its pidfile names a process that exists,
   * and waits forever for "its" containerd while containerd's pidfile does;
   * a zombie counts as existing. On a host whose PID 1 does not reap orphans,
   * the containerd of a killed dockerd stays a zombie, so both stale pidfiles
   * go before a restart.
   */


  /** SIGKILLs the daemon and returns how it had been started (for `launch`). */
  async kill(): Promise<DaemonCommandLine> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`no live dockerd behind ${this.pidFile}`);
    const cmd = commandLineOf(pid);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => !pidAlive(pid) || isZombie(pid), { timeoutMs: 20_000, what: `dockerd ${pid} to die` });
    this.kills++;
    return cmd;
  }

  /** Makes sure the daemon answers again, starting it from `cmd` when it does not. */
  async ensureRunning(cmd: DaemonCommandLine | undefined): Promise<void> {
    if (await this.docker.answers()) return;
    if (!cmd) throw new Error(`dockerd on ${this.socket} is down and its command line is unknown`);
    await this.launch(cmd);
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no dockerd log)';
    }
  }

  /**
   * Private daemon only: removes its containers, stops it (SIGTERM, it was
   * started by this test), unmounts what it left mounted and removes its dirs.
   */
  async dispose(): Promise<void> {
    if (this.host) return;
    if (await this.docker.answers()) {
      const all = (await this.docker.result(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      await this.docker.forceRemove(all);
    }
    const pid = this.pid();
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      await waitFor(async () => !pidAlive(pid) || isZombie(pid), { timeoutMs: 30_000, what: `private dockerd ${pid} to stop` }).catch(() => {
        process.kill(pid, 'SIGKILL');
      });
    }
    // A SIGKILLed dockerd takes its containerd along but not the shims; those and their containers were started by this test.
    if (this.execRoot) await killShimsOf(`${this.execRoot}/`);
    for (const dir of [this.dataRoot, this.execRoot]) {
      if (!dir) continue;
      for (const mount of mountsUnder(dir)) await execa('umount', ['-l', mount], { reject: false });
    }
    for (const path of [this.execRoot, this.socket, this.pidFile, this.root]) {
      if (path) rmSync(path, { recursive: true, force: true });
    }
  }
}

export interface Shim {
  pid: number;
  /** The container ID the shim serves (its -id argument). */
  containerId: string;
}

/** containerd shims whose command line names `marker` (e.g. a daemon's exec-root). */
function shimsOf(marker: string): Shim[] {
  const shims: Shim[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!(argv[0] ?? '').includes('containerd-shim') || !argv.some((arg) => arg.includes(marker))) continue;
    shims.push({ pid: Number(entry), containerId: argv[argv.indexOf('-id') + 1] ?? '' });
  }
  return shims;
}

/** Shims (with their containers) of containers the daemon no longer knows, e.g. ones being started when dockerd died. */
export async function orphanShims(daemon: DaemonUnderTest): Promise<Shim[]> {
  const known = new Set((await daemon.docker.result(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean));
  const marker = daemon.host ? '/var/run/docker/containerd/' : `${daemon.execRootPath}/`;
  return shimsOf(marker).filter((shim) => !known.has(shim.containerId));
}

/** Kills the containerd shims (and the container processes under them) whose command line names `marker`. */
async function killShimsOf(marker: string, only?: ReadonlySet<number>): Promise<void> {
  const shims = shimsOf(marker)
    .map((shim) => shim.pid)
    .filter((pid) => !only || only.has(pid));
  for (const shim of shims) {
    const children = await execa('pgrep', ['-P', String(shim)], { reject: false });
    for (const child of String(children.stdout).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(child), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      process.kill(shim, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The binary the host's dockerd runs (from /var/run/docker.pid), else the Debian path. */
function hostDockerdBinary(): string {
  try {
    const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    const exe = Number.isInteger(pid) && pid > 0 ? readlinkSafe(`/proc/${pid}/exe`) : undefined;
    if (exe) return exe;
  } catch {
    // no pidfile: fall through
  }
  return '/usr/sbin/dockerd';
}

function isZombie(pid: number): boolean {
  try {
    return /\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

/** Evidence for a failed ping: both ends' addresses, routes, neighbours, the bridge ports and the rules naming them. */
export async function pingDiagnostics(docker: DockerClient, from: EndpointTrace, to: EndpointTrace | undefined, bridge: string): Promise<string> {
  const lines: string[] = [];
  const inside = async (container: string, args: string[]): Promise<string> => {
    const r = await docker.result(['exec', container, ...args], 15_000);
    return (r.stdout || r.stderr).replace(/\n/g, ' | ');
  };
  for (const end of [from, to]) {
    if (!end) continue;
    lines.push(`${end.container} ${end.ip} ep=${end.endpointId.slice(0, 13)}`);
    lines.push(`  addr: ${await inside(end.container, ['ip', '-o', 'addr'])}`);
    lines.push(`  route: ${await inside(end.container, ['ip', 'route'])}`);
    lines.push(`  neigh: ${await inside(end.container, ['ip', 'neigh'])}`);
  }
  const ports = await execa('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false });
  lines.push(`bridge ${bridge} ports: ${String(ports.stdout).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').join(' ')}`);
  const rules = await readRules();
  for (const end of [from, to]) {
    if (!end) continue;
    const mentions = rules.split('\n').filter((line) => line.includes(`${end.ip}/`) || line.includes(`${end.ip} `));
    lines.push(`rules naming ${end.ip}: ${mentions.length === 0 ? '(none)' : mentions.join(' | ')}`);
  }
  return lines.join('\n');
}

/** Evidence about one docker-cni network's host side: its bridge, the bridge's ports and its tagged rules. */
export async function networkDiagnostics(networkId: string, bridge: string): Promise<string> {
  const exists = existsSync(`/sys/class/net/${bridge}`);
  const ports = await execa('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false });
  const portNames = String(ports.stdout).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter(Boolean);
  const tag = `dcni:${networkId.slice(0, 12)}`;
  const rules = (await readRules()).split('\n').filter((line) => line.includes(tag) || line.includes(bridge));
  return [
    `bridge ${bridge}: ${exists ? 'present' : 'MISSING'}, ${portNames.length} port(s)`,
    `rules tagged ${tag} or naming ${bridge} (${rules.length}):`,
    ...rules.map((r) => `  ${r}`),
  ].join('\n');
}

/**
 * Starts a dockerd command line again, detached into a session of its own and
 * logging to `logFile`. Pidfiles naming a dead (or zombie) daemon are removed
 * first: dockerd refuses to start while one names a PID.
 */
export function spawnDaemon(cmd: DaemonCommandLine, logFile: string, pidFile = daemonPidFile(cmd)): ChildProcess {
  const execRootFlag = cmd.argv.findIndex((arg) => arg === '--exec-root' || arg.startsWith('--exec-root='));
  const execRoot =
    execRootFlag < 0
      ? '/var/run/docker'
      : ((cmd.argv[execRootFlag]?.includes('=') ? cmd.argv[execRootFlag]?.split('=')[1] : cmd.argv[execRootFlag + 1]) ?? '/var/run/docker');
  for (const file of [pidFile, join(execRoot, 'containerd', 'containerd.pid')]) {
    let pid: number;
    try {
      pid = Number(readFileSync(file, 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid) || isZombie(pid)) rmSync(file, { force: true });
  }
  const logFd = openSync(logFile, 'a');
  const child = spawn(cmd.exe, cmd.argv.slice(1), {
    argv0: cmd.argv[0] ?? cmd.exe,
    cwd: cmd.cwd,
    env: cmd.env,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  child.unref();
  child.once('error', () => undefined);
  return child;
}

/** The pidfile a dockerd command line uses (-p / --pidfile, else the default). */
function daemonPidFile(cmd: DaemonCommandLine): string {
  const i = cmd.argv.findIndex((arg) => arg === '-p' || arg === '--pidfile' || arg.startsWith('--pidfile='));
  if (i < 0) return '/var/run/docker.pid';
  const arg = cmd.argv[i] ?? '';
  return (arg.includes('=') ? arg.split('=')[1] : cmd.argv[i + 1]) ?? '/var/run/docker.pid';
}

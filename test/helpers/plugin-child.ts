/**
 * docker-cni run by the harness as a child process (`node dist/cli/main.js
 * serve`) on a unique legacy socket with private temp dirs. The dirs survive
 * stops, kills and restarts, so a restarted plugin finds its journal. Stop is
 * graceful (SIGTERM); kill is a SIGKILL, as a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { AUTO_POOL_V4, LEGACY_PLUGIN_DIR, PLUGIN_ENTRY, PLUGIN_NODE_FLAGS, REPO_ROOT, lastLines, randomHex, waitFor } from './common.js';
import type { CommandResult } from './docker-cli.js';
import { orphanStagingNetns, stagingNetnsOwner, stopChild } from './processes.js';

export interface PluginDirs {
  stateDir: string;
  /** Endpoint records (the plugin's --run-dir). */
  runDir: string;
  /** Undefined when the plugin's conf dir is unknown (managed/external without DOCKER_CNI_TEST_CONF_DIR). */
  confDir: string | undefined;
  cacheDir: string;
  hostLocalDir: string;
}

/** Directories whose files are plugin state (records, CNI result cache, host-local leases); leak checks list them. */
export function stateDirsOf(dirs: Omit<PluginDirs, 'confDir'>): string[] {
  return [dirs.stateDir, dirs.runDir, dirs.cacheDir, dirs.hostLocalDir];
}

/** The flags that point a `docker-cni` command at a plugin's records, CNI cache and host-local files. */
export function stateFlags(dirs: Omit<PluginDirs, 'confDir'>): string[] {
  return ['--state-dir', dirs.stateDir, '--run-dir', dirs.runDir, '--cache-dir', dirs.cacheDir, '--host-local-dir', dirs.hostLocalDir];
}

/** The file of one endpoint's record. */
export const endpointRecordPath = (dirs: Pick<PluginDirs, 'runDir'>, endpointId: string): string => join(dirs.runDir, 'endpoints', `${endpointId}.json`);

export interface ChildPluginOptions {
  /** Start of the driver name (then 6 hex). */
  driverPrefix?: string;
  /** Extra environment for the plugin process. */
  env?: Record<string, string>;
  /** Background reconciliation period (the plugin's default when unset). */
  reconcileIntervalMs?: number;
  /** Docker API socket the plugin reconciles against (default: the host's). */
  dockerSocket?: string;
  /** Milliseconds to wait for the socket to answer Plugin.Activate. */
  readyTimeoutMs?: number;
  /** A run dir of the caller's (the bench's tmpfs) instead of one under the temp root; the caller removes it. */
  runDir?: string;
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

export class ChildPlugin {
  readonly driver: string;
  readonly socketPath: string;
  readonly dirs: PluginDirs & { confDir: string };
  readonly logFile: string;
  kills = 0;
  starts = 0;
  /** Set when a stop found the socket file still present (a plugin should remove it). */
  leftSocketBehind = false;
  private child: ChildProcess | undefined;
  private childExit: Promise<void> | undefined;
  private readonly startedPids = new Set<number>();

  private constructor(
    readonly root: string,
    private readonly options: ChildPluginOptions,
  ) {
    this.driver = `${options.driverPrefix ?? 'cnit'}${randomHex(6)}`;
    this.socketPath = join(LEGACY_PLUGIN_DIR, `${this.driver}.sock`);
    this.dirs = { stateDir: join(root, 'state'), runDir: options.runDir ?? join(root, 'run'), confDir: join(root, 'conf'), cacheDir: join(root, 'cache'), hostLocalDir: join(root, 'host-local') };
    this.logFile = join(root, 'plugin.log');
    for (const dir of [LEGACY_PLUGIN_DIR, ...Object.values(this.dirs)]) mkdirSync(dir, { recursive: true });
  }

  /** Creates the temp dirs; the plugin is not started yet. */
  static async create(options: ChildPluginOptions = {}, tempPrefix = 'docker-cni-engine-'): Promise<ChildPlugin> {
    return new ChildPlugin(await mkdtemp(join(tmpdir(), tempPrefix)), options);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  watchedDirs(): string[] {
    return stateDirsOf(this.dirs);
  }

  /** The setting flags shared by `serve` and the state commands. */
  settingFlags(): string[] {
    return [
      '--socket', this.socketPath,
      ...stateFlags(this.dirs),
      '--conf-dir', this.dirs.confDir,
      ...(this.options.dockerSocket ? ['--docker-socket', this.options.dockerSocket] : []),
      ...(this.options.reconcileIntervalMs !== undefined ? ['--reconcile-interval-ms', String(this.options.reconcileIntervalMs)] : []),
    ];
  }

  private env(): NodeJS.ProcessEnv {
    // Tests place conflists and create their networks themselves; the conf-dir
    // sync would race them. Its own tests turn it on.
    return { ...process.env, DOCKER_CNI_DEFAULT_POOLS_V4: `${AUTO_POOL_V4}/24`, DOCKER_CNI_CONF_SYNC: 'false', ...this.options.env };
  }

  /** Starts and waits until the socket answers Plugin.Activate. */
  async start(): Promise<void> {
    if (this.running) throw new Error('plugin already running');
    const logFd = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [...PLUGIN_NODE_FLAGS, PLUGIN_ENTRY, 'serve', ...this.settingFlags(), '--log-level', 'debug'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFd, logFd],
      env: this.env(),
    });
    closeSync(logFd);
    // Never leave the plugin running after the test process, however it ends.
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
      await this.stop().catch(() => undefined);
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

  /** SIGTERM (graceful), SIGKILL after 10 s; a socket file the plugin left is noted and removed. */
  async stop(): Promise<void> {
    if (this.child && this.running) await stopChild(this.child, this.childExit);
    this.child = undefined;
    if (existsSync(this.socketPath)) {
      this.leftSocketBehind = true;
      unlinkSync(this.socketPath);
    }
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

  logText(): string | undefined {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** The last lines of the plugin's log, optionally only what was written after position `from`. */
  logTail(lines = 80, from = 0): string {
    const text = this.logText();
    return text === undefined ? '(no plugin log)' : lastLines(text.slice(from), lines);
  }

  /** Stops the plugin, removes what its killed runs left (staging namespaces, socket) and the temp dirs (kept with DOCKER_CNI_TEST_KEEP=1). */
  async dispose(): Promise<void> {
    await this.stop();
    // A run that ended killed leaves its staging namespaces for the next start, which never comes.
    for (const name of orphanStagingNetns()) {
      const pid = stagingNetnsOwner(name);
      if (pid !== undefined && this.startedPids.has(pid)) await execa('ip', ['netns', 'del', name], { reject: false });
    }
    if (process.env.DOCKER_CNI_TEST_KEEP !== '1') rmSync(this.root, { recursive: true, force: true });
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

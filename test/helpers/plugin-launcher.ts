/**
 * The one plugin launcher. The plugin under test runs in one of these modes:
 *
 *   child     (default) `docker-cni serve` as a child process on a legacy
 *             socket with a unique driver name (`cnit` + 6 hex) and private
 *             temp dirs, so runs never see each other's records;
 *   killable  the same, for fault injection: SIGKILL by PID and restart on
 *             the same dirs (killablePlugin(); driver `cnix` + 6 hex);
 *   managed   DOCKER_CNI_TEST_DRIVER=<name> DOCKER_CNI_TEST_MANAGED=1: a
 *             managed plugin; start/stop map to `docker plugin enable/disable`;
 *   external  DOCKER_CNI_TEST_DRIVER=<name>: a plugin someone else runs;
 *             start/stop do nothing, restart is unsupported.
 * DOCKER_CNI_TEST_CONF_DIR / DOCKER_CNI_TEST_STATE_DIR / DOCKER_CNI_TEST_RUN_DIR
 * tell the last two where the plugin reads conflists and keeps records.
 */
import { ChildPlugin, stateDirsOf, type ChildPluginOptions, type PluginDirs } from './plugin-child.js';
import { docker } from './docker-cli.js';
import { managedPluginLog } from './dockerd-log.js';
import { lastLines } from './common.js';

export type PluginMode = { kind: 'child' } | { kind: 'managed'; driver: string } | { kind: 'external'; driver: string };

export function pluginMode(): PluginMode {
  const driver = process.env.DOCKER_CNI_TEST_DRIVER;
  if (!driver) return { kind: 'child' };
  return process.env.DOCKER_CNI_TEST_MANAGED === '1' ? { kind: 'managed', driver } : { kind: 'external', driver };
}

export interface StartPluginOptions {
  /** Extra environment for the child plugin (child mode only). */
  env?: Record<string, string>;
  /** Milliseconds to wait for the socket to answer Plugin.Activate. */
  readyTimeoutMs?: number;
  /** Child mode: the plugin's run dir (default: one in its temp dir). */
  runDir?: string;
}

/** A child plugin for fault injection; not started yet. */
export function killablePlugin(options: Omit<ChildPluginOptions, 'driverPrefix'> = {}): Promise<ChildPlugin> {
  return ChildPlugin.create({ ...options, driverPrefix: 'cnix' }, 'docker-cni-chaos-');
}

/** The plugin under test, whatever runs it. */
export class PluginHandle {
  /** Docker driver name, for both `-d` and `--ipam-driver`. */
  readonly driver: string;
  readonly dirs: PluginDirs;
  /** False for an externally run plugin: the harness cannot restart it. */
  readonly canRestart: boolean;
  /** Managed mode: the plugin's ID, whose lines dockerd's log carries. */
  private managedId: string | undefined;

  private constructor(
    private readonly mode: PluginMode,
    /** Child mode only. */
    readonly child: ChildPlugin | undefined,
  ) {
    if (child) {
      this.driver = child.driver;
      this.dirs = child.dirs;
      this.canRestart = true;
    } else {
      this.driver = mode.kind === 'child' ? '' : mode.driver;
      this.dirs = {
        stateDir: process.env.DOCKER_CNI_TEST_STATE_DIR ?? '/var/lib/docker-cni',
        runDir: process.env.DOCKER_CNI_TEST_RUN_DIR ?? '/run/docker-cni',
        confDir: process.env.DOCKER_CNI_TEST_CONF_DIR,
        cacheDir: '/var/lib/cni',
        hostLocalDir: '/var/lib/cni/networks',
      };
      this.canRestart = mode.kind === 'managed';
    }
  }

  static async create(options: StartPluginOptions = {}): Promise<PluginHandle> {
    const mode = pluginMode();
    if (mode.kind !== 'child') return new PluginHandle(mode, undefined);
    // Periodic reconciliation would act on other docker-cni instances' links and
    // rules on a shared host; the startup pass still runs.
    const env = { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0', ...options.env };
    const child = await ChildPlugin.create({
      env,
      ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      ...(options.runDir ? { runDir: options.runDir } : {}),
    });
    return new PluginHandle(mode, child);
  }

  get running(): boolean {
    return this.child ? this.child.running : true;
  }

  get socketPath(): string | undefined {
    return this.child?.socketPath;
  }

  get logFile(): string | undefined {
    return this.child?.logFile;
  }

  /** Set when a stop found the socket file still present (a plugin should remove it). */
  get leftSocketBehind(): boolean {
    return this.child?.leftSocketBehind ?? false;
  }

  /** Directories private to this harness-run plugin ([] for an installed plugin). */
  ownedDirs(): string[] {
    return this.child ? [this.child.root] : [];
  }

  /** Directories whose files are plugin state; leak checks list them. */
  watchedDirs(): string[] {
    return stateDirsOf(this.dirs);
  }

  async start(): Promise<void> {
    if (this.child) return this.child.start();
    if (this.mode.kind !== 'managed') return;
    const enabled = await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', this.mode.driver]);
    if (enabled !== 'true') await docker(['plugin', 'enable', this.mode.driver], 60_000);
    this.managedId = await docker(['plugin', 'inspect', '-f', '{{.Id}}', this.mode.driver]);
  }

  async stop(): Promise<void> {
    if (this.child) return this.child.stop();
    if (this.mode.kind === 'managed') await docker(['plugin', 'disable', '-f', this.mode.driver], 60_000);
  }

  async restart(): Promise<void> {
    if (!this.canRestart) throw new Error(`cannot restart a plugin run outside the harness (${this.driver})`);
    await this.stop();
    await this.start();
  }

  /** The whole plugin log: its own file (child mode) or its lines in dockerd's log (managed mode). */
  private logText(): string | undefined {
    if (this.child) return this.child.logText();
    return this.managedId ? managedPluginLog(this.managedId) : undefined;
  }

  /** Characters logged so far (0 without a log). */
  logSize(): number {
    return this.logText()?.length ?? 0;
  }

  /** The last lines of the plugin's log, optionally only what was written after position `from`. */
  logTail(lines = 60, from = 0): string {
    const text = this.logText();
    if (text === undefined) return `(no log of plugin ${this.driver} is readable)`;
    return lastLines(text.slice(from), lines);
  }

  /** Stops the plugin and removes its temp dirs (kept when DOCKER_CNI_TEST_KEEP=1). */
  async dispose(): Promise<void> {
    if (this.child) await this.child.dispose();
    else await this.stop();
  }
}

/** Starts the plugin under test in the mode chosen by the environment. */
export async function startPlugin(options: StartPluginOptions = {}): Promise<PluginHandle> {
  const plugin = await PluginHandle.create(options);
  try {
    await plugin.start();
  } catch (err) {
    await plugin.dispose();
    throw err;
  }
  return plugin;
}

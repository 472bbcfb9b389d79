/**
 * State survival across a dockerd restart with the managed plugin: dockerd is
 * stopped with SIGTERM (a clean shutdown: without live-restore it stops every
 * container, then its plugins) and started again exactly as it had been
 * (command line, environment and cwd read back from /proc/<pid>, detached,
 * output appended to its old log file when that was a file). Afterwards:
 *   - dockerd enables the plugin again by itself;
 *   - the network is still usable: a new container gets networking;
 *   - containers started with `--restart always` come back with working
 *     networking: their addresses answer and their names resolve;
 *   - removing everything leaves nothing behind (leak snapshot).
 *
 * WHICH dockerd restarts:
 *   - under CI=true, or with DOCKER_CNI_TEST_RESTART_HOST_DOCKERD=1: the
 *     host's own (found through its pidfile, else /proc). Every container on
 *     it stops and only `--restart always` ones come back: disposable hosts only.
 *   - otherwise a private dockerd this test starts (own data-root, exec-root,
 *     pidfile and socket, --bridge none, --iptables=false), so other work on a
 *     shared host survives; the plugin is created on that daemon, with its
 *     docker-run mount pointed at the private exec-root.
 * dockerd runs again at the end in every case (the private one is then removed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  engineSkipReason,
  ensureTestImage,
  freeSubnet,
  sharedHostMode,
  sleep,
  uniqueName,
  waitFor,
} from '../helpers/engine.js';
import { assertNoLeaks, takeSnapshot, type HostSnapshot } from '../helpers/host-snapshot.js';
import { DaemonUnderTest, commandLineOf, spawnDaemon, type DaemonCommandLine } from '../helpers/chaos.js';
import { ManagedPlugin, dockerOn, hostDocker, pluginSource, type DockerCli, type PluginSource } from './managed-plugin.js';

const TEST_TIMEOUT = 420_000;
const HOST_MODE = process.env.CI === 'true' || process.env.DOCKER_CNI_TEST_RESTART_HOST_DOCKERD === '1';
const HOST_SOCKET = '/var/run/docker.sock';
const skip = await engineSkipReason();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie has exited; only its parent's wait is missing.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The value of `--flag X` or `--flag=X` in argv. */
function flagValue(argv: readonly string[], ...names: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    for (const name of names) {
      if (arg === name) return argv[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

/** The dockerd serving `socket`: its pidfile first, else the dockerd in /proc whose -H names it (or, for the default socket, has none). */
function dockerdPid(socket: string, pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) return pid;
  } catch {
    // no pidfile
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'dockerd') continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const host = flagValue(argv, '-H', '--host');
      if (host === `unix://${socket}` || (host === undefined && socket === HOST_SOCKET)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** A dockerd that this test restarts: SIGTERM, then the same command line again. */
class RestartableDaemon {
  commandLine: DaemonCommandLine | undefined;
  private logFile: string | undefined;

  constructor(
    readonly socket: string,
    readonly pidFile: string,
    readonly cli: DockerCli,
    private readonly fallbackLog: string,
  ) {}

  get logsToFallback(): boolean {
    return this.logFile === this.fallbackLog;
  }

  pid(): number | undefined {
    return dockerdPid(this.socket, this.pidFile);
  }

  async answers(): Promise<boolean> {
    return this.cli(['info', '--format', '{{.ID}}'], 10_000).then(
      () => true,
      () => false,
    );
  }

  /** Stops dockerd with SIGTERM and waits for it to exit; remembers how it was started. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`no dockerd found for ${this.socket}`);
    this.commandLine = commandLineOf(pid);
    const out = readlinkOrUndefined(`/proc/${pid}/fd/1`);
    this.logFile = out?.startsWith('/') && !out.startsWith('/dev/') && existsSync(out) ? out : this.fallbackLog;
    process.kill(pid, 'SIGTERM');
    await waitFor(async () => !pidAlive(pid), { timeoutMs: 120_000, intervalMs: 300, what: `dockerd ${pid} to exit after SIGTERM` });
  }

  /** Starts dockerd again as it was started, detached into its own session, and waits for `docker info`. */
  async start(): Promise<void> {
    const cmd = this.commandLine;
    if (!cmd) throw new Error('dockerd was not stopped by this test; its command line is unknown');
    const child = spawnDaemon(cmd, this.logFile ?? this.fallbackLog);
    await waitFor(async () => child.exitCode === null && (await this.answers()), {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `dockerd (${cmd.argv.join(' ')}) to answer docker info again`,
    });
  }

  /** Leaves dockerd running: starts it again if this test stopped it and it is down. */
  async ensureRunning(): Promise<void> {
    if (await this.answers()) return;
    if (this.commandLine) await this.start();
  }

  /**
   * dockerd refuses to start while its pidfile names a live process, and
   * waits for "its" containerd while containerd's pidfile does; a process
   * that has exited (or is a zombie nobody reaps) makes both stale.
   */

}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** The path of a host socket as the plugin sees it through its host-run mount (host /run at /host/run). */
function pluginSidePath(hostPath: string): string {
  const relative = hostPath.replace(/^\/var\/run\//, '/run/');
  if (!relative.startsWith('/run/')) throw new Error(`${hostPath} is not under /run, which the plugin sees at /host/run`);
  return `/host${relative}`;
}

async function pingsVia(cli: DockerCli, from: string, target: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      await cli(['exec', from, 'ping', '-c', '1', '-W', '2', target], 15_000);
      return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(300);
  }
  throw new Error(`${from} cannot reach ${target}: ${last}`);
}

async function ipOn(cli: DockerCli, container: string, network: string): Promise<string> {
  return cli(['inspect', '-f', `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`, container]);
}

describe('managed plugin: dockerd restart', { skip }, () => {
  let privateDaemon: DaemonUnderTest | undefined;
  let daemon: RestartableDaemon | undefined;
  let source: PluginSource | undefined;
  let plugin: ManagedPlugin | undefined;
  let cli: DockerCli = hostDocker;
  /** Holds dockerd's log when its output was not a file; kept while that dockerd may still write to it. */
  let logRoot: string | undefined;

  before(async () => {
    await ensureTestImage();
    if (HOST_MODE) {
      logRoot = await mkdtemp('/tmp/dcni-dockerd-restart-');
      daemon = new RestartableDaemon(HOST_SOCKET, '/var/run/docker.pid', hostDocker, join(logRoot, 'dockerd.log'));
    } else {
      privateDaemon = await DaemonUnderTest.create();
      await privateDaemon.startPrivate();
      cli = dockerOn(privateDaemon.socket);
      const pid = privateDaemon.pid();
      const argv = pid === undefined ? [] : commandLineOf(pid).argv;
      daemon = new RestartableDaemon(privateDaemon.socket, flagValue(argv, '--pidfile') ?? '', cli, privateDaemon.logFile);
    }
    const daemonPid = daemon.pid();
    if (daemonPid === undefined) throw new Error(`no dockerd found for ${daemon.socket}`);
    const execRoot = flagValue(commandLineOf(daemonPid).argv, '--exec-root');
    source = await pluginSource();
    plugin = await ManagedPlugin.create(source.dir, {
      cli,
      ...(execRoot ? { dockerRunSource: execRoot } : {}),
      ...(HOST_MODE ? {} : { env: { DOCKER_SOCKET: pluginSidePath(daemon.socket) } }),
    });
    await plugin.enable();
  });

  after(async () => {
    const problems: string[] = [];
    try {
      await daemon?.ensureRunning();
    } catch (err) {
      problems.push(`dockerd is not running again: ${String(err)}`);
    }
    if (plugin) problems.push(...(await plugin.dispose()));
    await source?.dispose();
    await privateDaemon?.dispose();
    if (logRoot && !daemon?.logsToFallback) rmSync(logRoot, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(problems.join('\n'));
  });

  test('after SIGTERM and a start as before: plugin enabled, network usable, --restart always containers reachable by IP and name, nothing left after removal', { timeout: TEST_TIMEOUT }, async () => {
    const managed = plugin;
    const restartable = daemon;
    assert.ok(managed && restartable, 'the before hook did not finish');
    const driver = managed.alias;
    const runId = uniqueName('dcni-restart');
    const network = `${runId}-net`;
    const names = { first: `${runId}-a`, second: `${runId}-b`, late: `${runId}-c` };
    const snapshotOptions = { dirs: managed.watchedDirs() };
    const before: HostSnapshot = await takeSnapshot(snapshotOptions);
    const ownedTokens: string[] = [runId];
    let bodyError: unknown;
    try {
      const subnet = await freeSubnet();
      const networkId = await cli(['network', 'create', '-d', driver, '--ipam-driver', driver, '--subnet', subnet, network]);
      ownedTokens.push(networkId.slice(0, 12), `dcni-${networkId.slice(0, 10)}`, subnet.split('.').slice(0, 3).join('.') + '.');
      for (const name of [names.first, names.second]) {
        await cli(['run', '-d', '--name', name, '--restart', 'always', '--network', network, TEST_IMAGE, ...IDLE_COMMAND]);
      }
      await pingsVia(cli, names.first, names.second);

      const startedBefore = await cli(['inspect', '-f', '{{.State.StartedAt}}', names.first]);
      const pidBefore = restartable.pid();
      const restartStarted = Date.now();
      await restartable.stop();
      await restartable.start();
      const pidAfter = restartable.pid();
      assert.ok(pidAfter !== undefined && pidAfter !== pidBefore, `dockerd was not restarted (pid ${pidBefore} -> ${pidAfter})`);
      console.log(`dockerd ${HOST_MODE ? '(host)' : '(private)'} restarted in ${Date.now() - restartStarted} ms: pid ${pidBefore} -> ${pidAfter}`);

      await waitFor(async () => (await managed.inspect()).Enabled, { timeoutMs: 60_000, what: `${driver} to be enabled again` });
      for (const name of [names.first, names.second]) {
        await waitFor(async () => (await cli(['inspect', '-f', '{{.State.Running}}', name])) === 'true', {
          timeoutMs: 90_000,
          intervalMs: 500,
          what: `${name} (--restart always) to run again`,
        });
      }
      assert.notEqual(await cli(['inspect', '-f', '{{.State.StartedAt}}', names.first]), startedBefore, `${names.first} was not restarted with dockerd`);
      await cli(['run', '-d', '--name', names.late, '--network', network, TEST_IMAGE, ...IDLE_COMMAND]);
      const [firstIp, secondIp] = [await ipOn(cli, names.first, network), await ipOn(cli, names.second, network)];
      assert.ok(firstIp && secondIp, `the restarted containers have no address on ${network}: "${firstIp}" "${secondIp}"`);
      await pingsVia(cli, names.late, firstIp);
      await pingsVia(cli, names.late, secondIp);
      await pingsVia(cli, names.late, names.first);
      await pingsVia(cli, names.first, names.second);
      await pingsVia(cli, names.second, names.late);
    } catch (err) {
      bodyError = err;
    }

    const cleanup: string[] = [];
    for (const name of Object.values(names)) {
      await cli(['rm', '-f', name], 60_000).catch((err: unknown) => {
        if (!/No such container/i.test(String(err))) cleanup.push(String(err));
      });
    }
    await cli(['network', 'rm', network], 60_000).catch((err: unknown) => {
      if (!/No such network|not found/i.test(String(err))) cleanup.push(String(err));
    });
    if (bodyError !== undefined) {
      const id = await managed.inspect().then((p) => p.Id, () => '');
      console.error(`--- dockerd log (tail) ---\n${tail(restartable, 60)}\n(plugin id ${id})`);
      throw bodyError;
    }
    assert.deepEqual(cleanup, [], 'removing the test containers and network failed');
    await assertNoLeaks(before, {
      ...snapshotOptions,
      ...(sharedHostMode() ? { onlyMentioning: ownedTokens, ownedDirs: [managed.tempRoot] } : {}),
    });
  });
});

function tail(daemon: RestartableDaemon, lines: number): string {
  const pid = daemon.pid();
  const out = pid === undefined ? undefined : readlinkOrUndefined(`/proc/${pid}/fd/1`);
  if (!out?.startsWith('/') || !existsSync(out)) return '(no dockerd log file)';
  return readFileSync(out, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

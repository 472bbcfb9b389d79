/**
 * A dockerd for fault injection: SIGKILLed (a crash) or SIGTERMed (a clean
 * stop), then started again from the command line read back from /proc.
 *
 * The private one (default) has its own data-root, exec-root, pidfile and
 * socket, and neither touches iptables nor creates a default bridge, so
 * stopping it leaves the host's Docker and its containers alone. The host one
 * (`{ host: true }`, disposable hosts only) is found through its pidfile, else
 * /proc; restarted, it appends to the log file it wrote before.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_BIN, TEST_IMAGE, lastLines, randomHex, waitFor } from './common.js';
import { DockerClient } from './docker-cli.js';
import {
  HOST_DOCKER_PIDFILE,
  HOST_DOCKER_SOCKET,
  dockerdPid,
  hostDockerdBinary,
  killShimsOf,
  mountsUnder,
  outputFileOf,
  shimsOf,
  spawnDaemon,
  type Shim,
} from './dockerd-process.js';
import { commandLineOf, flagValue, pidAlive, type CommandLine } from './processes.js';

export interface DaemonUnderTestOptions {
  /** The host's own dockerd instead of a private one (disposable hosts only). */
  host?: boolean;
}

export class DaemonUnderTest {
  readonly socket: string;
  readonly docker: DockerClient;
  /** Where this harness lets a daemon it starts write, unless the daemon wrote to a file of its own before. */
  readonly logFile: string;
  kills = 0;
  /** How the daemon was started, from the last kill or terminate. */
  commandLine: CommandLine | undefined;
  readonly pidFile: string;
  readonly execRoot: string | undefined;
  private output: string | undefined;
  /** Set once this harness started the daemon writing to `logFile`, which must then stay. */
  private writesToLogFile = false;

  private constructor(
    readonly host: boolean,
    private readonly root: string,
  ) {
    this.logFile = join(root, 'dockerd.log');
    if (host) {
      this.socket = HOST_DOCKER_SOCKET;
      this.pidFile = HOST_DOCKER_PIDFILE;
      this.docker = new DockerClient(undefined);
    } else {
      const id = randomHex(6);
      this.socket = `/run/dcni-chaos-${id}.sock`;
      this.pidFile = `/run/dcni-chaos-${id}.pid`;
      this.docker = new DockerClient(this.socket);
      this.execRoot = `/run/dcni-chaos-${id}`;
    }
  }

  static async create(options: DaemonUnderTestOptions = {}): Promise<DaemonUnderTest> {
    return new DaemonUnderTest(options.host === true, await mkdtemp(join(tmpdir(), 'docker-cni-dockerd-')));
  }

  get dataRoot(): string | undefined {
    return this.host ? undefined : join(this.root, 'data');
  }

  /** The daemon's PID, when a live one serves the socket. */
  pid(): number | undefined {
    return dockerdPid(this.socket, this.pidFile);
  }

  /** The value of one flag on the running daemon's command line. */
  flag(...names: string[]): string | undefined {
    const pid = this.pid();
    return pid === undefined ? undefined : flagValue(commandLineOf(pid).argv, ...names);
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
    const archive = join(this.root, 'image.tar');
    const saved = await execa(DOCKER_BIN, ['save', '-o', archive, TEST_IMAGE], { reject: false, timeout: 120_000 });
    const loaded = saved.exitCode === 0 ? await this.docker.result(['load', '-i', archive]) : undefined;
    rmSync(archive, { force: true });
    if (saved.exitCode !== 0 || loaded?.exitCode !== 0) {
      throw new Error(`loading ${TEST_IMAGE} into the private dockerd failed: ${String(saved.stderr)} ${loaded?.stderr ?? ''}`);
    }
  }

  /** Starts dockerd as the given command line (see spawnDaemon) and waits for `docker info`. */
  async launch(cmd: CommandLine, timeoutMs = 120_000): Promise<void> {
    if (this.output === undefined) this.writesToLogFile = true;
    const child = spawnDaemon(cmd, this.output ?? this.logFile, this.pidFile);
    await waitFor(async () => child.exitCode === null && (await this.docker.answers()), {
      timeoutMs,
      intervalMs: 300,
      what: `dockerd on ${this.socket} to answer`,
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- dockerd log ---\n${this.logTail(15)}`, { cause: err });
    });
  }

  /** Signals the daemon, waits for it to exit, and remembers how it was started (for `launch`). */
  private async signal(signal: 'SIGKILL' | 'SIGTERM', timeoutMs: number): Promise<CommandLine> {
    const pid = this.pid();
    if (pid === undefined) throw new Error(`no live dockerd behind ${this.pidFile}`);
    const cmd = commandLineOf(pid);
    this.output ??= outputFileOf(pid);
    this.commandLine = cmd;
    process.kill(pid, signal);
    await waitFor(async () => !pidAlive(pid), { timeoutMs, intervalMs: 300, what: `dockerd ${pid} to exit after ${signal}` });
    return cmd;
  }

  /** SIGKILL: a crash. */
  async kill(): Promise<CommandLine> {
    const cmd = await this.signal('SIGKILL', 20_000);
    this.kills++;
    return cmd;
  }

  /** SIGTERM: a clean stop (without live-restore every container stops, then the plugins). */
  terminate(): Promise<CommandLine> {
    return this.signal('SIGTERM', 120_000);
  }

  /** SIGTERM, then a start as before; returns what the daemon logged from the stop on. */
  async restart(): Promise<string> {
    const pid = this.pid();
    const file = (pid === undefined ? undefined : outputFileOf(pid)) ?? this.output ?? this.logFile;
    const offset = fileSize(file);
    await this.ensureRunning(await this.terminate());
    return readFrom(file, offset);
  }

  /** Makes sure the daemon answers again, starting it from `cmd` (default: the last one stopped) when it does not. */
  async ensureRunning(cmd: CommandLine | undefined = this.commandLine): Promise<void> {
    if (await this.docker.answers()) return;
    if (!cmd) throw new Error(`dockerd on ${this.socket} is down and its command line is unknown`);
    await this.launch(cmd);
  }

  logTail(lines = 40): string {
    const pid = this.pid();
    const file = (pid === undefined ? undefined : outputFileOf(pid)) ?? this.output ?? this.logFile;
    try {
      return lastLines(readFileSync(file, 'utf8'), lines);
    } catch {
      return '(no dockerd log)';
    }
  }

  /** Shims (with their containers) of containers the daemon no longer knows, e.g. ones being started when dockerd died. */
  async orphanShims(): Promise<Shim[]> {
    const known = new Set((await this.docker.result(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean));
    const marker = this.host ? '/var/run/docker/containerd/' : `${this.execRoot}/`;
    return shimsOf(marker).filter((shim) => !known.has(shim.containerId));
  }

  /** Private daemon only: kills the given shims of this daemon and the container processes under them. */
  async killShims(shims: readonly Shim[]): Promise<void> {
    if (this.host || !this.execRoot) throw new Error('only the shims of a private dockerd may be killed');
    await killShimsOf(`${this.execRoot}/`, new Set(shims.map((s) => s.pid)));
  }

  /**
   * Private daemon: removes its containers, stops it (SIGTERM, it was started
   * by this test), unmounts what it left mounted and removes its dirs. Host
   * daemon: only the temp dir, unless the daemon now writes its log there.
   */
  async dispose(): Promise<void> {
    if (this.host) {
      if (!this.writesToLogFile) rmSync(this.root, { recursive: true, force: true });
      return;
    }
    if (await this.docker.answers()) {
      const all = (await this.docker.result(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
      await this.docker.forceRemove(all);
    }
    const pid = this.pid();
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      await waitFor(async () => !pidAlive(pid), { timeoutMs: 30_000, what: `private dockerd ${pid} to stop` }).catch(() => {
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

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

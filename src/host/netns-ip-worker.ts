/**
 * Long-lived `ip -n <netns> -force -batch -` processes, one per staging netns, for the link move on every
 * container start, and a few `ip -force -batch -` in the plugin's own netns, for the link delete on every stop.
 * A spawned `ip -n` per move cost 8-9 ms more than the kernel's move itself (17 ms here, `bench/move-cost.ts`):
 * the fork and exec, and the mount namespace `-n` sets up and tears down each time.
 *
 * ip reports nothing for a command that worked, so every command is followed by a marker command that always
 * fails (`link show dev <a name no netns has>`). Both report on stderr, in order: the marker's "Command failed
 * -:<line>" ends the command's answer, and a "Command failed" for the command's own line before it is its error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PluginError } from '../errors.js';

/** A name no link carries: docker-cni's links are all named by names.ts, and none looks like this. */
const MARKER_LINK = 'dcni-nolink';
/** What may go into a batch line: ip's batch reader splits on blanks and honours quotes, so neither may occur. */
const BATCH_ARG = /^[A-Za-z0-9_.:/-]{1,64}$/;
const DEFAULT_TIMEOUT_MS = 15_000;

/** The worker is gone or stuck: what it was asked to do may or may not have happened. Callers fall back to a spawn. */
export class IpWorkerUnavailable extends PluginError {
  override readonly name = 'IpWorkerUnavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super('HOST_FAILED', message, options);
  }
}

/** Runs ip commands inside a named netns, or in ours, without a spawn each; what HostLinks and the metrics decorator see. */
export interface NetnsCommands {
  run(netns: string, args: readonly string[]): Promise<void>;
  runOnHost(args: readonly string[]): Promise<void>;
}

/** The workers' key for the plugin's own netns: no netns name is empty. */
const HOST = '';
/**
 * Host workers side by side at most. Each veth delete waits in the kernel for its own RCU grace periods, so one
 * process running a burst's deletes one after another finished them 580-840 ms late (bench/RESULTS.md); spawned
 * deletes wait side by side, but each spawn costs the plugin a fork. A few workers keep both.
 */
export const MAX_HOST_WORKERS = 4;

interface Pending {
  commandLine: number;
  markerLine: number;
  describe: string;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One `ip -batch` process inside a netns (HOST: the plugin's own); commands run one at a time. Its arguments are
 * checked by NetnsIpWorkers.
 */
class NetnsIpWorker {
  private readonly child: ChildProcess;
  private lines = 0;
  private stderr = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private lost: Error | undefined;
  /** Commands asked of this worker that have not been answered yet. */
  private outstanding = 0;

  constructor(
    readonly netns: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    const where = netns === HOST ? [] : ['-n', netns];
    this.child = spawn('ip', [...where, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    // An idle worker must not keep the plugin's event loop (or a CLI run) alive; a busy one must.
    (this.child.stdin as { unref?: () => void } | null)?.unref?.();
    this.hold(false);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => this.onStderr(chunk));
    this.child.stdin?.on('error', (err) => this.fail(new IpWorkerUnavailable(`ip worker in ${netns}: ${err.message}`, { cause: err })));
    this.child.on('error', (err) => this.fail(new IpWorkerUnavailable(`ip worker in ${netns} could not start: ${err.message}`, { cause: err })));
    this.child.on('exit', (code, signal) => this.fail(new IpWorkerUnavailable(`ip worker in ${netns} exited (${signal ?? `code ${String(code)}`})`)));
  }

  get alive(): boolean {
    return this.lost === undefined;
  }

  get busy(): number {
    return this.outstanding;
  }

  /** Runs one ip command (e.g. ['link', 'set', …]) in the worker's netns. */
  run(args: readonly string[]): Promise<void> {
    this.outstanding++;
    const next = this.queue.then(() => this.send(args)).finally(() => this.outstanding--);
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.fail(new IpWorkerUnavailable(`ip worker in ${this.netns} was closed`));
  }

  private send(args: readonly string[]): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    const describe = `ip ${this.netns === HOST ? '' : `-n ${this.netns} `}${args.join(' ')}`;
    return new Promise<void>((resolve, reject) => {
      const commandLine = ++this.lines;
      const markerLine = ++this.lines;
      const timer = setTimeout(() => this.fail(new IpWorkerUnavailable(`${describe}: no answer from the ip worker in ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
      this.pending = { commandLine, markerLine, describe, resolve, reject, timer };
      this.hold(true);
      this.child.stdin?.write(`${args.join(' ')}\nlink show dev ${MARKER_LINK}\n`);
    });
  }

  private onStderr(chunk: string): void {
    this.stderr += chunk;
    const pending = this.pending;
    if (!pending) return;
    const end = `Command failed -:${pending.markerLine}\n`;
    const at = this.stderr.indexOf(end);
    if (at < 0) return;
    const answer = this.stderr.slice(0, at);
    this.stderr = this.stderr.slice(at + end.length);
    this.pending = undefined;
    clearTimeout(pending.timer);
    this.hold(false);
    const failedAt = answer.indexOf(`Command failed -:${pending.commandLine}\n`);
    if (failedAt < 0) {
      pending.resolve();
      return;
    }
    const why = answer.slice(0, failedAt).trim() || 'failed';
    pending.reject(new PluginError('HOST_FAILED', `${pending.describe}: ${why}`));
  }

  /** Keeps the event loop alive only while a command waits for its answer. */
  private hold(busy: boolean): void {
    const stderr = this.child.stderr as { ref?: () => void; unref?: () => void } | null;
    if (busy) {
      this.child.ref();
      stderr?.ref?.();
    } else {
      this.child.unref();
      stderr?.unref?.();
    }
  }

  private fail(err: Error): void {
    if (this.lost) return;
    this.lost = err;
    if (this.pending) {
      clearTimeout(this.pending.timer);
      this.pending.reject(err);
      this.pending = undefined;
    }
    this.hold(false);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function refusal(args: readonly string[]): PluginError | undefined {
  const bad = args.find((arg) => !BATCH_ARG.test(arg));
  return bad === undefined ? undefined : new PluginError('INVALID_ARGUMENT', `"${bad}" cannot be passed to an ip batch`);
}

/**
 * The workers of the staging namespaces, by netns name, and up to MAX_HOST_WORKERS of the plugin's own netns; the
 * staging pool forgets a staging netns's worker before it deletes the netns.
 */
export class NetnsIpWorkers implements NetnsCommands {
  private readonly workers = new Map<string, NetnsIpWorker>();
  private hostWorkers: NetnsIpWorker[] = [];

  constructor(private readonly timeoutMs = DEFAULT_TIMEOUT_MS) {}

  /** Runs `args` in `netns` through its worker, starting one if there is none (or the last one was lost). */
  run(netns: string, args: readonly string[]): Promise<void> {
    // Checked before a worker is started for them.
    const refused = refusal([netns, ...args]);
    if (refused) return Promise.reject(refused);
    let worker = this.workers.get(netns);
    if (!worker?.alive) {
      worker = new NetnsIpWorker(netns, this.timeoutMs);
      this.workers.set(netns, worker);
    }
    return worker.run(args);
  }

  /**
   * Runs `args` in the plugin's own netns through an idle host worker; a new one is started while all are busy and
   * there are fewer than MAX_HOST_WORKERS, else the least busy one queues it.
   */
  runOnHost(args: readonly string[]): Promise<void> {
    const refused = refusal(args);
    if (refused) return Promise.reject(refused);
    this.hostWorkers = this.hostWorkers.filter((worker) => worker.alive);
    let worker = this.hostWorkers.reduce<NetnsIpWorker | undefined>((best, w) => (best === undefined || w.busy < best.busy ? w : best), undefined);
    if (worker === undefined || (worker.busy > 0 && this.hostWorkers.length < MAX_HOST_WORKERS)) {
      worker = new NetnsIpWorker(HOST, this.timeoutMs);
      this.hostWorkers.push(worker);
    }
    return worker.run(args);
  }

  /**
   * Ends the netns's worker. A process inside a netns keeps it, and every link in it, alive after `ip netns del`,
   * so this comes before the delete.
   */
  forget(netns: string): void {
    this.workers.get(netns)?.close();
    this.workers.delete(netns);
  }

  /** Ends every worker (shutdown). A later command starts a new one. */
  closeAll(): void {
    for (const netns of [...this.workers.keys()]) this.forget(netns);
    for (const worker of this.hostWorkers) worker.close();
    this.hostWorkers = [];
  }
}

/**
 * Puts the express app on the unix socket Docker discovers plugins by
 * (e.g. /run/docker/plugins/cni.sock).
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import type { RequestListener } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { PluginError } from '../errors.js';

/** Only the owner (root) and its group may talk to the plugin: every call can reconfigure host networking. */
export const SOCKET_MODE = 0o660;
const SOCKET_DIR_MODE = 0o755;
/** How long a connect probe waits before deciding nobody serves an existing socket file. */
const PROBE_TIMEOUT_MS = 1000;

/** systemd socket activation (sd_listen_fds): the first passed descriptor is 3. */
const SD_LISTEN_FDS_START = 3;

/** The socket systemd passed us, if it passed exactly one to this very process. */
export function activationFd(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  if (env.LISTEN_PID !== String(pid)) return undefined;
  return env.LISTEN_FDS === '1' ? SD_LISTEN_FDS_START : undefined;
}

/** Servers listening on a socket systemd owns (it outlives this process). */
const activated = new WeakSet<http.Server>();

export async function serveUnixSocket(app: RequestListener, socketPath: string, fd = activationFd()): Promise<http.Server> {
  // Every reply ends its connection. Docker's client keeps idle connections and
  // writes the next call into one; if we close an idle connection as it does
  // (shutdown, keep-alive timeout), the call fails after its body was consumed
  // and Docker resends it EMPTY. A fresh dial per call costs ~0.1 ms on a unix socket.
  const server = http.createServer((req, res) => {
    res.setHeader('Connection', 'close');
    app(req, res);
  });
  if (fd !== undefined) {
    // systemd made the socket (path, mode, owner) and keeps it across our restarts.
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDNAMES;
    await listen(server, { fd }, `systemd socket fd ${fd}`);
    activated.add(server);
    return server;
  }
  await mkdir(path.dirname(socketPath), { recursive: true, mode: SOCKET_DIR_MODE });
  await removeStaleSocket(socketPath);
  await listen(server, { path: socketPath }, socketPath);
  // Between listen and chmod the socket has the umask's mode (0755 under the usual
  // 022), and connecting to a unix socket needs write permission, so nobody but the
  // owner can reach it in that window either.
  try {
    await chmod(socketPath, SOCKET_MODE);
  } catch (err) {
    server.close();
    throw new PluginError('HOST_FAILED', `cannot chmod ${socketPath}: ${(err as Error).message}`, { cause: err });
  }
  return server;
}

function listen(server: http.Server, where: net.ListenOptions | { fd: number }, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new PluginError('HOST_FAILED', `cannot listen on ${what}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(where, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * A socket file left by a crashed run blocks listen() with EADDRINUSE. Remove
 * it, but only when nothing answers on it: two live plugins on one socket
 * would split Docker's calls between two state stores.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PluginError('HOST_FAILED', `cannot inspect ${socketPath}: ${(err as Error).message}`, { cause: err });
  }
  if (!stats.isSocket()) {
    throw new PluginError('CONFLICT', `${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const probe = await probeSocket(socketPath);
  if (probe === 'alive') {
    throw new PluginError('CONFLICT', `another process is already serving ${socketPath}; refusing to start`);
  }
  try {
    await unlink(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PluginError('HOST_FAILED', `cannot remove stale socket ${socketPath}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

function probeSocket(socketPath: string): Promise<'alive' | 'stale'> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection({ path: socketPath });
    const finish = (outcome: 'alive' | 'stale' | Error): void => {
      conn.removeAllListeners();
      conn.on('error', () => {});
      conn.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    conn.setTimeout(PROBE_TIMEOUT_MS, () => {
      // A listener with a full backlog may leave us hanging; treat it as alive rather than steal its socket.
      finish(new PluginError('CONFLICT', `${socketPath} accepts no connection within ${PROBE_TIMEOUT_MS} ms but is not stale; refusing to start`));
    });
    conn.once('connect', () => finish('alive'));
    conn.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') finish('stale');
      else finish(new PluginError('HOST_FAILED', `cannot probe ${socketPath}: ${err.message}`, { cause: err }));
    });
  });
}

/** How long the accept queue must stay empty after the socket file is gone before we stop accepting. */
export const DRAIN_QUIET_MS = 150;
/** In-flight calls get this long (a CNI ADD with slow plugins) before their connections are cut. */
export const DRAIN_CAP_MS = 60_000;

/**
 * Stops serving without breaking a connection Docker may be writing to:
 * 1. the socket file goes first, so new dials fail with ENOENT, which Docker
 *    retries (backoff 1, 2, 4, 8 s) with the FULL body, reaching the next
 *    instance (under socket activation systemd keeps the socket and its queue
 *    for the next instance instead);
 * 2. connections already queued in the backlog are still accepted until the
 *    queue stays empty for quietMs: closing the listener would reset them
 *    after Docker wrote its call into them;
 * 3. the listener closes and every accepted connection is served to its end
 *    (each reply closes its connection); none is cut as "idle", since a fresh
 *    one is idle until its request is parsed.
 * Idle, this takes quietMs.
 */
export async function drainServer(
  server: http.Server,
  socketPath: string,
  opts: { quietMs?: number; capMs?: number } = {},
): Promise<void> {
  if (!server.listening) return;
  const quietMs = opts.quietMs ?? DRAIN_QUIET_MS;
  if (!activated.has(server)) {
    await unlink(socketPath).catch(() => undefined);
    await untilQuiet(server, quietMs);
  }
  // Node's close() also destroys connections it deems idle, which includes one
  // accepted a moment ago whose request is not parsed yet.
  server.closeIdleConnections = () => undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => server.closeAllConnections(), opts.capMs ?? DRAIN_CAP_MS);
    timer.unref();
    server.close((err) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    });
  });
}

function untilQuiet(server: http.Server, quietMs: number): Promise<void> {
  return new Promise((resolve) => {
    let timer = setTimeout(done, quietMs);
    function onConnection(): void {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    }
    function done(): void {
      server.off('connection', onConnection);
      resolve();
    }
    server.on('connection', onConnection);
  });
}

/** Stops a server whose callers are all known (tests): waits for calls in flight, cutting them after graceMs. */
export function closeServer(server: http.Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close((err) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    });
  });
}

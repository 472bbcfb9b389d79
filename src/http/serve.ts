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

export async function serveUnixSocket(app: RequestListener, socketPath: string): Promise<http.Server> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: SOCKET_DIR_MODE });
  await removeStaleSocket(socketPath);

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new PluginError('HOST_FAILED', `cannot listen on ${socketPath}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Between listen and chmod the socket has the umask's mode (0755 under the usual
  // 022), and connecting to a unix socket needs write permission, so nobody but the
  // owner can reach it in that window either.
  try {
    await chmod(socketPath, SOCKET_MODE);
  } catch (err) {
    await closeServer(server);
    throw new PluginError('HOST_FAILED', `cannot chmod ${socketPath}: ${(err as Error).message}`, { cause: err });
  }
  return server;
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

/**
 * Stops accepting calls and waits for in-flight ones (a half-done CNI teardown
 * is worse than a slow shutdown), cutting remaining connections after graceMs.
 * Node removes the socket file when the server closes.
 */
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
    server.closeIdleConnections();
  });
}

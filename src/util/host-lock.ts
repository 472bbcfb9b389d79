import { createServer, type Server } from 'node:net';
import { PluginError } from '../errors.js';

/**
 * A lock shared by every process on the host that shares its network
 * namespace: holding it means having bound a Linux abstract unix socket of
 * that name. The kernel frees the name when the holder exits, however it
 * exits, so a crash leaves no stale lock; and the managed plugin, which has
 * its own mount and PID namespaces but the host's network, contends with the
 * host's CLI and reconciler for the same name (a lock file or a PID would
 * need a shared path and a shared PID space).
 */
export async function withHostLock<T>(name: string, work: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const server = await acquire(name, timeoutMs);
  try {
    return await work();
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const RETRY_MIN_MS = 2;
const RETRY_MAX_MS = 50;

async function acquire(name: string, timeoutMs: number): Promise<Server> {
  const deadline = Date.now() + timeoutMs;
  let delay = RETRY_MIN_MS;
  for (;;) {
    const server = createServer();
    const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen(`\0${name}`, () => resolve(undefined));
    });
    if (!bound) {
      // A held lock must not keep the process alive by itself.
      server.unref();
      return server;
    }
    if (bound.code !== 'EADDRINUSE') throw new PluginError('HOST_FAILED', `host lock ${name}: ${bound.message}`, { cause: bound });
    if (Date.now() >= deadline) throw new PluginError('TIMEOUT', `host lock ${name}: still held by another process after ${timeoutMs} ms`);
    // Jittered backoff: waiters do not retry in lockstep.
    await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

/**
 * The opt-in metrics listener: GET /metrics (Prometheus text) and GET
 * /healthz, on a unix socket or a loopback TCP port, never on the plugin
 * socket and never on an outside address.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import type { Registry } from 'prom-client';
import { PluginError } from '../errors.js';

export type MetricsListen = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * `""` (off), `unix:/path` or an absolute path, or `<loopback host>:<port>`
 * (127.0.0.1:9464, [::1]:9464, localhost:9464).
 */
export function parseMetricsListen(raw: string): MetricsListen | undefined {
  const value = raw.trim();
  if (value === '' || value === 'off') return undefined;
  const unixPath = value.startsWith('unix:') ? value.slice('unix:'.length) : value.startsWith('/') ? value : undefined;
  if (unixPath !== undefined) {
    if (!unixPath.startsWith('/') || unixPath.includes('\0')) throw new PluginError('INVALID_ARGUMENT', `metrics listener: "${raw}" is not an absolute socket path`);
    return { kind: 'unix', path: unixPath };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new PluginError('INVALID_ARGUMENT', `metrics listener: "${raw}" is neither unix:/path nor <loopback address>:<port>`);
  }
  if (!LOOPBACK.has(host) && !(isIP(host) === 4 && host.startsWith('127.'))) {
    throw new PluginError('INVALID_ARGUMENT', `metrics listener: ${host} is not a loopback address; metrics are never served to the network`);
  }
  return { kind: 'tcp', host, port };
}

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

export async function serveMetrics(listen: MetricsListen, registry: Registry, health: () => Promise<Health>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    void answer(req.method ?? '', req.url ?? '', registry, health).then(({ status, type, body }) => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    });
  });
  if (listen.kind === 'unix') {
    await mkdir(dirname(listen.path), { recursive: true, mode: 0o755 });
    await rm(listen.path, { force: true });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new PluginError('HOST_FAILED', `metrics listener: ${err.message}`, { cause: err })));
    if (listen.kind === 'unix') server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  if (listen.kind === 'unix') await chmod(listen.path, 0o660);
  return server;
}

async function answer(method: string, url: string, registry: Registry, health: () => Promise<Health>): Promise<{ status: number; type: string; body: string }> {
  const path = url.split('?')[0];
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, type: 'text/plain', body: 'GET only\n' };
  try {
    if (path === '/metrics') return { status: 200, type: registry.contentType, body: await registry.metrics() };
    if (path === '/healthz') {
      const state = await health();
      return { status: state.ok ? 200 : 503, type: 'application/json', body: `${JSON.stringify({ status: state.ok ? 'ok' : 'unhealthy', ...state.detail })}\n` };
    }
    return { status: 404, type: 'text/plain', body: 'not found: try /metrics or /healthz\n' };
  } catch (err) {
    return { status: 500, type: 'text/plain', body: `${err instanceof Error ? err.message : String(err)}\n` };
  }
}

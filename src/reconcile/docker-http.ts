/**
 * A minimal Docker Engine API client over the unix socket: JSON in, JSON out,
 * any method. The plugin needs a handful of calls, and dockerode's dependency
 * tree (grpc-js, protobufjs) cost about 20 MB of resident memory for them.
 */
import { request } from 'node:http';
import { PluginError } from '../errors.js';

/** Docker answered with a non-2xx status; `status` tells a missing object (404) from a failure. */
export class DockerApiError extends PluginError {
  override readonly name = 'DockerApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('HOST_FAILED', message);
  }
}

export interface DockerHttp {
  /** Resolves with the parsed JSON body (undefined for an empty one) on 2xx; rejects with HOST_FAILED (Docker answered badly or not at all) otherwise. */
  call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown>;
}

const MAX_REPLY = 64 * 1024 * 1024;

export function dockerHttp(socketPath: string, timeoutMs = 10_000): DockerHttp {
  return {
    call(method, path, body) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      return new Promise((resolve, reject) => {
        const req = request(
          {
            socketPath,
            method,
            path,
            headers: { Host: 'docker', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_REPLY) req.destroy(new PluginError('HOST_FAILED', `${method} ${path}: reply over ${MAX_REPLY} bytes`));
              else chunks.push(chunk);
            });
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              const status = res.statusCode ?? 0;
              if (status < 200 || status >= 300) {
                reject(new DockerApiError(status, `${method} ${path}: HTTP ${status} ${text.trim().slice(0, 300)}`));
                return;
              }
              try {
                resolve(text.trim() === '' ? undefined : JSON.parse(text));
              } catch (err) {
                reject(new PluginError('HOST_FAILED', `${method} ${path}: reply is not JSON`, { cause: err }));
              }
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new PluginError('TIMEOUT', `${method} ${path}: no answer in ${timeoutMs} ms`)));
        req.on('error', (err) => reject(err instanceof PluginError ? err : new PluginError('HOST_FAILED', `${method} ${path}: ${err.message}`, { cause: err })));
        req.end(payload);
      });
    },
  };
}

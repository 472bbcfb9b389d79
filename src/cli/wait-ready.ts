/**
 * `docker-cni wait-ready`: returns once the plugin socket answers
 * Plugin.Activate with both drivers, or fails after a timeout. systemd's
 * ExecStartPost uses it as the readiness signal (no native sd_notify).
 */
import http from 'node:http';
import type { Command } from 'commander';
import type { Settings } from '../settings.js';
import { printJson } from './output.js';

const POLL_MS = 200;
const CALL_TIMEOUT_MS = 2_000;

/** True when the socket answers Plugin.Activate naming the NetworkDriver. */
export function answersActivate(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: '/Plugin.Activate', method: 'POST', timeout: CALL_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const reply = JSON.parse(body) as { Implements?: unknown };
          resolve(res.statusCode === 200 && Array.isArray(reply.Implements) && reply.Implements.includes('NetworkDriver'));
        } catch {
          resolve(false);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export async function waitReady(socketPath: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await answersActivate(socketPath)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export function registerWaitReady(program: Command, getSettings: () => Settings): void {
  program
    .command('wait-ready')
    .description('wait until the plugin socket answers Plugin.Activate (for systemd ExecStartPost)')
    .option('--timeout-ms <ms>', 'give up after this long', '60000')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { timeoutMs: string; json?: boolean }) => {
      const timeoutMs = Number(opts.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new Error('--timeout-ms must be a non-negative integer');
      const { socketPath } = getSettings();
      const started = Date.now();
      const ready = await waitReady(socketPath, timeoutMs);
      const waitedMs = Date.now() - started;
      if (opts.json) printJson({ ready, socket: socketPath, waitedMs });
      else process.stdout.write(ready ? `ready: ${socketPath} answers Plugin.Activate\n` : `not ready: ${socketPath} did not answer Plugin.Activate within ${timeoutMs} ms\n`);
      if (!ready) process.exitCode = 1;
    });
}

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersActivate, waitReady } from '../../../src/cli/wait-ready.js';

async function listen(socketPath: string, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

describe('wait-ready', () => {
  test('true once the socket answers Plugin.Activate with the NetworkDriver', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcni-wait-'));
    const socketPath = join(dir, 'p.sock');
    let calls = 0;
    const server = await listen(socketPath, (req, res) => {
      calls += 1;
      // Not ready for the first two calls, as a plugin still loading its state.
      if (calls <= 2) res.writeHead(503).end('{}');
      else res.writeHead(200).end(JSON.stringify({ Implements: ['NetworkDriver', 'IpamDriver'] }));
    });
    try {
      assert.equal(await waitReady(socketPath, 30_000), true);
      assert.equal(calls, 3);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('false for a socket nobody serves, and for a server that is not a network plugin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcni-wait-'));
    const socketPath = join(dir, 'p.sock');
    try {
      assert.equal(await waitReady(socketPath, 0), false);
      const server = await listen(socketPath, (_req, res) => res.writeHead(200).end(JSON.stringify({ Implements: ['VolumeDriver'] })));
      try {
        assert.equal(await answersActivate(socketPath), false);
      } finally {
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// What Docker sees while the plugin restarts: a drain that never cuts a call,
// replies that never leave an idle connection to be closed under a writer,
// empty-body resends (moby's plugin client resends a drained buffer) answered
// by a fixed per-RPC rule, and one instance per state dir.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RPC } from '../../../src/docker/api.js';
import { createApp } from '../../../src/http/app.js';
import { activationFd, drainServer, serveUnixSocket } from '../../../src/http/serve.js';
import { silentLogger } from '../../../src/log.js';
import { acquireStateLock, acquireStateLocks, STATE_LOCK_FILE } from '../../../src/state/state-lock.js';
import { createFakeDrivers } from '../../helpers/fake-drivers.js';

function call(socketPath: string, rpc: string, body = ''): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: rpc, method: 'POST', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('restart: drain, empty resends, state lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'docker-cni-restart-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('drain unlinks the socket first, finishes the call in flight, and every reply closes its connection', async () => {
    const socketPath = path.join(dir, 'drain.sock');
    const fakes = createFakeDrivers();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    fakes.network.respond('createEndpoint', async () => {
      started();
      await held;
      return {};
    });
    const server = await serveUnixSocket(createApp({ network: fakes.network, ipam: fakes.ipam, logger: silentLogger }), socketPath, undefined);
    const activate = await call(socketPath, RPC.activate);
    assert.equal(activate.connection, 'close');

    const pending = call(socketPath, RPC.network.createEndpoint, JSON.stringify({ NetworkID: 'n'.repeat(64), EndpointID: 'e'.repeat(64) }));
    await inFlight;
    const drained = drainServer(server, socketPath, { quietMs: 20 });
    // New dials now fail with ENOENT: Docker retries those with the full body.
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(existsSync(socketPath), false);
    await assert.rejects(call(socketPath, RPC.activate), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
    let drainDone = false;
    void drained.then(() => (drainDone = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(drainDone, false, 'drain must wait for the call in flight');
    release();
    const reply = await pending;
    assert.equal(reply.status, 200);
    await drained;
    assert.equal(server.listening, false);
  });

  test('a connection accepted but not yet written to is served, not cut as idle', async () => {
    const socketPath = path.join(dir, 'fresh.sock');
    const fakes = createFakeDrivers();
    const server = await serveUnixSocket(createApp({ network: fakes.network, ipam: fakes.ipam, logger: silentLogger }), socketPath, undefined);
    const conn = net.createConnection({ path: socketPath });
    await new Promise((resolve) => conn.once('connect', resolve));
    const drained = drainServer(server, socketPath, { quietMs: 20 });
    // The writer is slow: the drain has already stopped listening when the request arrives.
    await new Promise((resolve) => setTimeout(resolve, 60));
    let answer = '';
    conn.setEncoding('utf8');
    conn.on('data', (c: string) => (answer += c));
    conn.write(`POST ${RPC.activate} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    await new Promise((resolve) => conn.once('end', resolve));
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.match(answer, /NetworkDriver/);
    await drained;
  });

  test('an empty-body resend is acknowledged for removals and no-ops, refused with the reason where a reply needs data', async () => {
    const socketPath = path.join(dir, 'empty.sock');
    const fakes = createFakeDrivers();
    const server = await serveUnixSocket(createApp({ network: fakes.network, ipam: fakes.ipam, logger: silentLogger }), socketPath, undefined);
    try {
      const acked = [
        RPC.network.deleteEndpoint,
        RPC.network.deleteNetwork,
        RPC.network.leave,
        RPC.network.programExternalConnectivity,
        RPC.network.revokeExternalConnectivity,
        RPC.ipam.releaseAddress,
        RPC.ipam.releasePool,
      ];
      for (const rpc of acked) {
        const reply = await call(socketPath, rpc, '');
        assert.equal(reply.status, 200, `${rpc}: ${reply.body}`);
        assert.equal(reply.body, '{}');
      }
      const refused = [RPC.network.createEndpoint, RPC.network.createNetwork, RPC.network.join, RPC.ipam.requestAddress, RPC.ipam.requestPool];
      for (const rpc of refused) {
        const reply = await call(socketPath, rpc, '');
        assert.equal(reply.status, 400, rpc);
        assert.match((JSON.parse(reply.body) as { Err: string }).Err, /empty request body .*connection to the plugin broke/);
      }
      // None of them reached a driver: there was nothing to act on.
      assert.deepEqual(fakes.log.calls, []);
    } finally {
      await drainServer(server, socketPath, { quietMs: 1 });
    }
  });

  test('socket activation is used only when systemd passed exactly one fd to this process', () => {
    assert.equal(activationFd({ LISTEN_PID: String(process.pid), LISTEN_FDS: '1' }), 3);
    assert.equal(activationFd({ LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }), undefined);
    assert.equal(activationFd({ LISTEN_PID: String(process.pid), LISTEN_FDS: '2' }), undefined);
    assert.equal(activationFd({}), undefined);
  });

  test('the state lock waits for a live holder, takes over a dead one, and is removed on release', async () => {
    const stateDir = path.join(dir, 'state');
    const first = await acquireStateLock(stateDir, silentLogger);
    const lockPath = path.join(stateDir, STATE_LOCK_FILE);
    assert.equal((JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number }).pid, process.pid);
    // Held by a live process (the parent of this test, whose start time we record): a second taker waits, then gives up.
    const { processStartTime } = await import('../../../src/state/state-lock.js');
    await writeFile(lockPath, JSON.stringify({ pid: process.ppid, start: await processStartTime(process.ppid) }));
    await assert.rejects(acquireStateLock(stateDir, silentLogger, 100), /locked by docker-cni pid/);
    // Released by the holder while we wait: we get it.
    const waiting = acquireStateLock(stateDir, silentLogger, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await rm(lockPath);
    const second = await waiting;
    await second.release();
    assert.equal(existsSync(lockPath), false);
    // A PID that now belongs to another process (start time differs) is stale.
    await writeFile(lockPath, JSON.stringify({ pid: process.ppid, start: '1' }));
    const third = await acquireStateLock(stateDir, silentLogger, 100);
    await third.release();
    await first.release(); // no longer the owner: leaves the file alone (there is none)
    assert.equal(existsSync(lockPath), false);
  });

  test('state and run dir locks: a second instance sharing only the run dir fails naming it, and keeps no lock', async () => {
    const [stateA, stateB, runDir] = ['state-a', 'state-b', 'run'].map((name) => path.join(dir, name)) as [string, string, string];
    const first = await acquireStateLocks([stateA, runDir], silentLogger);
    // As if another live instance held the run dir (this process's own PID counts as a dead holder).
    const { processStartTime } = await import('../../../src/state/state-lock.js');
    await writeFile(path.join(runDir, STATE_LOCK_FILE), JSON.stringify({ pid: process.ppid, start: await processStartTime(process.ppid) }));
    await assert.rejects(acquireStateLocks([stateB, runDir], silentLogger, 100), (err: Error) => err.message.startsWith(`${runDir} is locked by docker-cni pid ${process.ppid}`));
    assert.equal(existsSync(path.join(stateB, STATE_LOCK_FILE)), false, 'the state dir it had taken is given back');
    await rm(path.join(runDir, STATE_LOCK_FILE));
    await first.release();
    for (const lockDir of [stateA, runDir]) assert.equal(existsSync(path.join(lockDir, STATE_LOCK_FILE)), false);
    const same = await acquireStateLocks([stateA, stateA], silentLogger, 100);
    await same.release();
  });
});

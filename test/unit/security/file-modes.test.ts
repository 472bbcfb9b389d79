// Security: who may reach the plugin and read its state.
//   - the plugin socket is created 0660, owned by the serving user, and only
//     a unix socket (no TCP listener);
//   - RecordStore keeps records 0600 in directories 0700, whatever the umask;
//   - CNI cache entries are written 0600.
// No root needed: everything happens under a temp dir.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCacheEntry } from '../../../src/cni/cache.js';
import { closeServer, serveUnixSocket, SOCKET_MODE } from '../../../src/http/serve.js';
import { RecordStore } from '../../../src/state/record-store.js';

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

/** Runs `work` with a permissive umask, so modes come from the code, not from the environment. */
async function withUmask<T>(umask: number, work: () => Promise<T>): Promise<T> {
  const previous = process.umask(umask);
  try {
    return await work();
  } finally {
    process.umask(previous);
  }
}

function post(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('security: socket and state file modes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'docker-cni-security-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('serveUnixSocket creates the socket 0660, owned by this user, and listens on no TCP port', async () => {
    assert.equal(SOCKET_MODE, 0o660);
    const socketPath = join(dir, 'plugins', 'sec.sock');
    const server = await withUmask(0o000, () =>
      serveUnixSocket((_req, res) => {
        res.statusCode = 200;
        res.end('{}');
      }, socketPath),
    );
    try {
      const info = await stat(socketPath);
      assert.ok(info.isSocket(), 'not a unix socket');
      assert.equal(info.mode & 0o777, 0o660, `socket mode ${(info.mode & 0o777).toString(8)}`);
      assert.equal(info.uid, process.getuid?.());
      assert.equal(info.gid, process.getgid?.());
      // The address is the socket path, not a host:port.
      assert.equal(typeof server.address(), 'string');
      assert.equal(server.address(), socketPath);
      assert.equal(await post(socketPath, '/Plugin.Activate'), 200);
    } finally {
      await closeServer(server);
    }
  });

  test('RecordStore writes records 0600 in a 0700 directory, with no temp files left', async () => {
    const stateDir = join(dir, 'state');
    const store = new RecordStore<{ secret: string }>(stateDir, 'endpoints', false);
    const durable = new RecordStore<{ secret: string }>(stateDir, 'networks');
    await withUmask(0o000, async () => {
      await store.ensureDir();
      await store.put('abc123', { secret: 'x' });
      await store.put('abc123', { secret: 'y' });
      await durable.put('net1', { secret: 'z' });
    });
    assert.equal(await mode(join(stateDir, 'endpoints')), 0o700);
    assert.equal(await mode(join(stateDir, 'endpoints', 'abc123.json')), 0o600);
    // put() alone (no ensureDir) must create the directory privately too.
    assert.equal(await mode(join(stateDir, 'networks')), 0o700);
    assert.equal(await mode(join(stateDir, 'networks', 'net1.json')), 0o600);
    assert.deepEqual(await readdir(join(stateDir, 'endpoints')), ['abc123.json']);
    assert.deepEqual(await store.get('abc123'), { secret: 'y' });
  });

  test('RecordStore refuses ids that would escape its directory', async () => {
    const store = new RecordStore<{ a: number }>(join(dir, 'state2'), 'pools');
    for (const id of ['../x', '..', 'a/b', '/etc/passwd', '', '.hidden', 'a\0b']) {
      await assert.rejects(store.put(id, { a: 1 }), /invalid pools record id/, `id ${JSON.stringify(id)} was accepted`);
    }
  });

  test('CNI cache entries are written 0600', async () => {
    const cacheDir = join(dir, 'cache');
    await withUmask(0o000, () =>
      writeCacheEntry(cacheDir, {
        kind: 'cniCacheV1',
        containerId: 'c0ffee',
        config: Buffer.from('{"cniVersion":"1.0.0","name":"n","plugins":[]}').toString('base64'),
        ifName: 'eth0',
        networkName: 'sec-net',
      }),
    );
    const file = join(cacheDir, 'results', 'sec-net-c0ffee-eth0');
    assert.equal(await mode(file), 0o600);
    assert.deepEqual(await readdir(join(cacheDir, 'results')), ['sec-net-c0ffee-eth0']);
    // The results dir holds every container's CNI result: private as well.
    assert.equal(await mode(join(cacheDir, 'results')), 0o700);
  });
});

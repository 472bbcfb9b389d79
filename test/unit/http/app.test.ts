import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import request from 'supertest';
import type { Response as TestResponse } from 'supertest';
import { MAX_BODY_BYTES, PLUGIN_CONTENT_TYPE, RPC } from '../../../src/docker/api.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import type { ErrorCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { Logger } from '../../../src/log.js';
import { MAX_JSON_DEPTH, createApp } from '../../../src/http/app.js';
import { closeServer, serveUnixSocket } from '../../../src/http/serve.js';
import { createFakeDrivers } from '../../helpers/fake-drivers.js';
import type { FakeDrivers } from '../../helpers/fake-drivers.js';
import { EP_ID, NET_ID, RPC_SAMPLES, allRpcPaths } from './rpc-samples.js';

function setup(logger: Logger = silentLogger): FakeDrivers & { app: ReturnType<typeof createApp> } {
  const fakes = createFakeDrivers();
  return { ...fakes, app: createApp({ network: fakes.network, ipam: fakes.ipam, logger }) };
}

/** POSTs bytes exactly as given: no Content-Type unless asked, like dockerd. */
function post(
  app: ReturnType<typeof createApp>,
  urlPath: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<TestResponse> {
  let req = request(app).post(urlPath);
  for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
  // superagent would JSON-encode a Buffer sent with a JSON Content-Type; keep the bytes as they are.
  if (body !== undefined) req = req.serialize((bytes: unknown) => bytes as string).send(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));
  return req.then((res) => res);
}

function jsonOf(res: TestResponse): Record<string, unknown> {
  assert.equal(res.headers['content-type'], PLUGIN_CONTENT_TYPE, `content-type of ${res.status} reply`);
  return JSON.parse(res.text) as Record<string, unknown>;
}

function assertErr(res: TestResponse, status: number, pattern?: RegExp): string {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  const body = jsonOf(res);
  assert.deepEqual(Object.keys(body), ['Err']);
  assert.equal(typeof body['Err'], 'string');
  const err = body['Err'] as string;
  assert.ok(!err.includes('\n'), 'Err is one line');
  if (pattern) assert.match(err, pattern);
  return err;
}

describe('routing: every RPC reaches the right driver method', () => {
  test('the samples cover every RPC path declared in src/docker/api.ts', () => {
    assert.deepEqual(RPC_SAMPLES.map((s) => s.path).sort(), allRpcPaths());
  });

  for (const sample of RPC_SAMPLES.filter((s) => s.target !== null)) {
    test(`${sample.path} -> ${sample.target!.api}.${sample.target!.method}`, async () => {
      const { app, network, ipam, log } = setup();
      const sent = sample.body === undefined ? undefined : JSON.stringify({ ...sample.body, Unknown: 'dropped' });
      const res = await post(app, sample.path, sent);
      assert.equal(res.status, 200, res.text);
      assert.equal(log.calls.length, 1);
      const call = log.calls[0]!;
      assert.equal(call.api, sample.target!.api);
      assert.equal(call.method, sample.target!.method);
      const expected = sample.schema ? sample.schema.parse(sample.body) : undefined;
      assert.deepEqual(call.request, expected, 'driver gets the validated body, unknown keys dropped');
      // The reply is whatever the fake answered by default.
      const fake = sample.target!.api === 'network' ? network : ipam;
      assert.ok(fake.calls.length === 1);
      jsonOf(res);
    });
  }

  test('Plugin.Activate announces both driver types without calling a driver', async () => {
    const { app, log } = setup();
    const res = await post(app, RPC.activate);
    assert.equal(res.status, 200);
    assert.deepEqual(jsonOf(res), { Implements: ['NetworkDriver', 'IpamDriver'] });
    assert.equal(log.length, 0);
  });

  test('capabilities and default address spaces come from the drivers', async () => {
    const { app, network, ipam } = setup();
    network.respond('getCapabilities', () => ({ Scope: 'local', ConnectivityScope: 'global' }));
    ipam.respond('getCapabilities', () => ({ RequiresMACAddress: true, RequiresRequestReplay: false }));
    ipam.respond('getDefaultAddressSpaces', () => ({ LocalDefaultAddressSpace: 'L', GlobalDefaultAddressSpace: 'G' }));
    assert.deepEqual(jsonOf(await post(app, RPC.network.getCapabilities)), { Scope: 'local', ConnectivityScope: 'global' });
    assert.deepEqual(jsonOf(await post(app, RPC.ipam.getCapabilities)), {
      RequiresMACAddress: true,
      RequiresRequestReplay: false,
    });
    assert.deepEqual(jsonOf(await post(app, RPC.ipam.getDefaultAddressSpaces)), {
      LocalDefaultAddressSpace: 'L',
      GlobalDefaultAddressSpace: 'G',
    });
  });

  test('driver results are encoded as the reply; nothing becomes {}', async () => {
    const { app, network, ipam } = setup();
    ipam.respond('requestAddress', async () => ({ Address: '10.231.1.7/24', Data: { k: 'v' } }));
    network.respond('endpointOperInfo', async () => ({ Value: { vlan: 3 } }));
    network.respond('join', async () => ({
      InterfaceName: { SrcName: 'dc0123', DstPrefix: 'eth' },
      Gateway: '10.231.1.1',
      StaticRoutes: [{ Destination: '10.232.0.0/16', RouteType: 0, NextHop: '10.231.1.254' }],
    }));
    const addr = await post(app, RPC.ipam.requestAddress, JSON.stringify({ PoolID: 'p' }));
    assert.deepEqual(jsonOf(addr), { Address: '10.231.1.7/24', Data: { k: 'v' } });
    const info = await post(app, RPC.network.endpointOperInfo, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }));
    assert.deepEqual(jsonOf(info), { Value: { vlan: 3 } });
    const join = await post(app, RPC.network.join, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }));
    assert.equal((jsonOf(join)['InterfaceName'] as { SrcName: string }).SrcName, 'dc0123');
    const del = await post(app, RPC.network.deleteEndpoint, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }));
    assert.equal(del.status, 200);
    assert.deepEqual(jsonOf(del), {});
  });

  test('swarm-only calls: Discover* are acknowledged, Allocate/Free are 404 not implemented', async () => {
    const { app, log } = setup();
    for (const p of [RPC.network.discoverNew, RPC.network.discoverDelete]) {
      const res = await post(app, p, JSON.stringify({ DiscoveryType: 1, DiscoveryData: { x: 1 } }));
      assert.equal(res.status, 200);
      assert.deepEqual(jsonOf(res), {});
    }
    for (const p of [RPC.network.allocateNetwork, RPC.network.freeNetwork]) {
      assertErr(await post(app, p, JSON.stringify({ NetworkID: NET_ID })), 404, /not implemented/);
    }
    assert.equal(log.length, 0);
  });
});

describe('request bodies', () => {
  test('an empty body is a resend after a broken connection: refused where the reply needs data, and never reaches a driver', async () => {
    const { app, ipam } = setup();
    for (const body of [undefined, '', '  \n', '{}']) {
      const res = await post(app, RPC.ipam.requestPool, body);
      assertErr(res, 400, /^IpamDriver\.RequestPool: empty request body \(Docker resends/);
    }
    assert.deepEqual(ipam.requestsOf('requestPool'), []);
    const activate = await post(app, RPC.activate, '');
    assert.equal(activate.status, 200);
  });

  test('the Content-Type is ignored: none, text/plain and json all parse as JSON', async () => {
    const { app, network } = setup();
    const body = JSON.stringify({ NetworkID: NET_ID });
    assert.equal((await post(app, RPC.network.deleteNetwork, body)).status, 200);
    assert.equal((await post(app, RPC.network.deleteNetwork, body, { 'Content-Type': 'text/plain' })).status, 200);
    assert.equal(
      (await post(app, RPC.network.deleteNetwork, body, { 'Content-Type': 'application/json; charset=latin1' })).status,
      200,
    );
    assert.equal(network.requestsOf('deleteNetwork').length, 3);
  });

  test('malformed JSON is a 400 "invalid JSON body" and reaches no driver', async () => {
    const { app, log } = setup();
    for (const body of ['{', '{"NetworkID": }', 'NetworkID=abc', "{'NetworkID':'x'}", '\u00ef\u00bb\u00bf{}']) {
      assertErr(await post(app, RPC.network.createNetwork, body), 400, /^invalid JSON body: /);
    }
    assertErr(await post(app, RPC.network.createNetwork, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 400, /UTF-8/);
    assert.equal(log.length, 0);
  });

  test('a JSON value that is not an object is a 400', async () => {
    const { app, log } = setup();
    for (const body of ['[]', '[{"NetworkID":"x"}]', '42', 'null', '"str"', 'true']) {
      assertErr(await post(app, RPC.network.deleteNetwork, body), 400, /expected an object/);
      assertErr(await post(app, RPC.activate, body), 400, /expected an object/);
    }
    assert.equal(log.length, 0);
  });

  test('wrong types and missing fields name the RPC and the field', async () => {
    const { app, log } = setup();
    const cases: Array<[string, unknown, RegExp]> = [
      [RPC.network.createNetwork, { NetworkID: 5 }, /^NetworkDriver\.CreateNetwork: invalid request: NetworkID: /],
      [RPC.network.createNetwork, {}, /^NetworkDriver\.CreateNetwork: empty request body /],
      [
        RPC.network.createNetwork,
        { NetworkID: NET_ID, IPv4Data: [{ Pool: 17 }] },
        /invalid request: IPv4Data\[0\]\.Pool: .*expected string/,
      ],
      [RPC.network.join, { NetworkID: NET_ID }, /^NetworkDriver\.Join: invalid request: EndpointID: /],
      [RPC.network.join, { NetworkID: NET_ID, EndpointID: EP_ID, Options: [] }, /Join: invalid request: Options: /],
      [RPC.ipam.requestPool, { V6: 'yes' }, /^IpamDriver\.RequestPool: invalid request: V6: /],
      [RPC.ipam.requestPool, { Options: { 'odd key\n': 1 } }, /invalid request: Options\["odd key\\n"\]: /],
      [RPC.ipam.releaseAddress, { PoolID: 'p' }, /^IpamDriver\.ReleaseAddress: invalid request: Address: /],
      [RPC.ipam.releasePool, { PoolID: '' }, /ReleasePool: invalid request: PoolID: /],
      [RPC.ipam.requestAddress, { PoolID: 'p', Address: 'x'.repeat(65) }, /RequestAddress: invalid request: Address: /],
    ];
    for (const [p, body, pattern] of cases) {
      assertErr(await post(app, p, JSON.stringify(body)), 400, pattern);
    }
    assert.equal(log.length, 0);
  });

  test('IDs that could escape a directory are rejected before any driver sees them', async () => {
    const { app, log } = setup();
    const hostile = ['../../etc', '..', '.', 'a/b', '/etc/passwd', 'abc\u0000def', '-rf', 'x'.repeat(129), '', ' id'];
    for (const id of hostile) {
      assertErr(await post(app, RPC.network.createNetwork, JSON.stringify({ NetworkID: id })), 400, /NetworkID/);
      assertErr(
        await post(app, RPC.network.createEndpoint, JSON.stringify({ NetworkID: NET_ID, EndpointID: id })),
        400,
        /EndpointID/,
      );
    }
    assert.equal(log.length, 0);
  });

  test('a body over the limit is a 413 with Err, and reaches no driver', async () => {
    const { app, log } = setup();
    const huge = JSON.stringify({ NetworkID: NET_ID, Options: { pad: 'x'.repeat(MAX_BODY_BYTES) } });
    assertErr(await post(app, RPC.network.createNetwork, huge), 413, /CreateNetwork: request body too large/);
    // A body just under the limit is still accepted.
    const justUnder = JSON.stringify({ NetworkID: NET_ID, Options: { pad: 'x'.repeat(MAX_BODY_BYTES - 200) } });
    assert.equal((await post(app, RPC.network.createNetwork, justUnder)).status, 200);
    assert.equal(log.length, 1);
  });

  test('a chunked body (no Content-Length) is cut off at the limit too; a body cut off by its client reaches no driver', async () => {
    const { app, log } = setup();
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: RPC.network.createNetwork }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (text: string) => (body += text));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        const piece = Buffer.alloc(64 * 1024, 0x20);
        for (let sent = 0; sent <= MAX_BODY_BYTES; sent += piece.length) req.write(piece);
        req.end('{}');
      });
      assert.equal(chunked.status, 413);
      assert.match(chunked.body, /CreateNetwork: request body too large/);

      // Declares more than it sends, then hangs up: the server answers nobody and keeps serving.
      await new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.end(`POST ${RPC.network.createNetwork} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"NetworkID":`);
        });
        socket.on('error', () => undefined).on('close', () => resolve()).resume();
      });
      const after = await post(app, RPC.network.createNetwork, JSON.stringify({ NetworkID: NET_ID }));
      assert.equal(after.status, 200);
      assert.equal(log.length, 1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test(`nesting deeper than ${MAX_JSON_DEPTH} levels is refused before validation`, async () => {
    const { app, network } = setup();
    const nested = (levels: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    // The body object itself is level 1 and Options level 2.
    const deepest = JSON.stringify({ NetworkID: NET_ID, Options: { x: nested(MAX_JSON_DEPTH - 2) } });
    assert.equal((await post(app, RPC.network.createNetwork, deepest)).status, 200);
    const tooDeep = JSON.stringify({ NetworkID: NET_ID, Options: { x: nested(MAX_JSON_DEPTH - 1) } });
    assertErr(await post(app, RPC.network.createNetwork, tooDeep), 400, /nested deeper than/);
    const absurd = `{"NetworkID":"${NET_ID}","Options":{"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}}`;
    assertErr(await post(app, RPC.network.createNetwork, absurd), 400, /nested deeper than/);
    assert.equal(network.requestsOf('createNetwork').length, 1);
  });

  test('compressed bodies are refused (415) rather than inflated', async () => {
    const { app, log } = setup();
    const res = await post(app, RPC.network.deleteNetwork, Buffer.from('junk'), { 'Content-Encoding': 'gzip' });
    assertErr(res, 415, /DeleteNetwork: could not read request body/);
    assert.equal(log.length, 0);
  });

  test('prototype keys in the body pollute nothing', async () => {
    const { app, network } = setup();
    const body = `{"NetworkID":"${NET_ID}","__proto__":{"polluted":1},"Options":{"__proto__":{"polluted":2},"constructor":{"prototype":{"polluted":3}}}}`;
    assert.equal((await post(app, RPC.network.createNetwork, body)).status, 200);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    const seen = network.requestsOf('createNetwork')[0]!;
    assert.equal((seen as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('error mapping', () => {
  const cases: Array<[ErrorCode, number]> = [
    ['INVALID_ARGUMENT', 400],
    ['NOT_FOUND', 500], // 404 would tell Docker "not implemented"
    ['CONFLICT', 409],
    ['EXHAUSTED', 409],
    ['CNI_FAILED', 500],
    ['HOST_FAILED', 500],
    ['STATE_FAILED', 500],
    ['TIMEOUT', 504],
    ['INTERNAL', 500],
  ];
  for (const [code, status] of cases) {
    test(`PluginError ${code} -> ${status}, message verbatim`, async () => {
      const { app, network } = setup();
      network.fail('deleteNetwork', new PluginError(code, `DeleteNetwork net=abc: went wrong (${code})`));
      const err = assertErr(await post(app, RPC.network.deleteNetwork, JSON.stringify({ NetworkID: NET_ID })), status);
      assert.equal(err, `DeleteNetwork net=abc: went wrong (${code})`);
    });
  }

  test('a CniPluginError message passes through word for word', async () => {
    const { app, network } = setup();
    const cniErr = new CniPluginError('bridge', 'ADD', 11, 'failed to set bridge addr: "cni0" already has an IP', 'details: x');
    network.fail('createEndpoint', cniErr);
    const err = assertErr(
      await post(app, RPC.network.createEndpoint, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID })),
      500,
    );
    assert.equal(err, cniErr.message);
  });

  test('NOT_FOUND from an optional method is never a 404', async () => {
    const { app, network } = setup();
    network.fail('programExternalConnectivity', new PluginError('NOT_FOUND', 'endpoint xyz not found'));
    const res = await post(
      app,
      RPC.network.programExternalConnectivity,
      JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }),
    );
    assertErr(res, 500, /^endpoint xyz not found$/);
  });

  test('a plain Error is a 500 that names the RPC and keeps the message', async () => {
    const { app, ipam } = setup();
    ipam.fail('requestPool', new TypeError('cannot read properties of undefined'));
    assertErr(
      await post(app, RPC.ipam.requestPool, '{"AddressSpace":"LocalDefault"}'),
      500,
      /^IpamDriver\.RequestPool: internal error: cannot read properties of undefined$/,
    );
  });

  test('thrown non-Errors (string, object, undefined, sync throw) are 500s and the server keeps serving', async () => {
    const { app, network, ipam } = setup();
    network.fail('leave', 'just a string');
    assertErr(await post(app, RPC.network.leave, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID })), 500, /just a string/);
    network.fail('leave', { weird: true });
    assertErr(await post(app, RPC.network.leave, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID })), 500, /weird/);
    network.fail('leave', undefined);
    assertErr(await post(app, RPC.network.leave, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID })), 500, /non-Error/);
    ipam.fail('getCapabilities', new RangeError('sync boom'));
    assertErr(await post(app, RPC.ipam.getCapabilities), 500, /IpamDriver\.GetCapabilities: internal error: sync boom/);
    assert.equal((await post(app, RPC.activate)).status, 200);
  });

  test('a driver reply JSON cannot encode becomes a clean 500', async () => {
    const { app, network } = setup();
    network.respond('endpointOperInfo', async () => ({ Value: { n: 10n } }));
    assertErr(
      await post(app, RPC.network.endpointOperInfo, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID })),
      500,
      /EndpointOperInfo: internal error: .*BigInt/,
    );
  });

  test('unknown paths are 404 "not implemented"; wrong method is 405', async () => {
    const { app, log } = setup();
    assertErr(await post(app, '/NetworkDriver.Frobnicate', '{}'), 404, /NetworkDriver\.Frobnicate: not implemented$/);
    assertErr(await post(app, '/plugin.activate'), 404, /not implemented$/);
    assertErr(await post(app, `${RPC.activate}/`), 404, /not implemented$/);
    assertErr(await post(app, '/'), 404, /not implemented$/);
    // An unknown path wins over a malformed body: Docker probes optional methods.
    assertErr(await post(app, '/IpamDriver.Nope', '{{{'), 404, /not implemented$/);
    const get = await request(app).get(RPC.activate);
    assertErr(get, 405, /use POST/);
    assert.equal(get.headers['allow'], 'POST');
    assert.equal(log.length, 0);
  });
});

describe('logging', () => {
  function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return { logger: pino({ level: 'debug' }, sink), lines };
  }

  test('each call is logged at debug with name, duration and outcome; bodies are not logged', async () => {
    const { logger, lines } = capturingLogger();
    const { app } = setup(logger);
    await post(app, RPC.network.deleteNetwork, JSON.stringify({ NetworkID: NET_ID }));
    await post(app, RPC.network.deleteNetwork, JSON.stringify({ NetworkID: '../x' }));
    const calls = lines.filter((l) => l['msg'] === 'plugin call');
    assert.equal(calls.length, 2);
    assert.equal(calls[0]!['level'], 20);
    assert.equal(calls[0]!['rpc'], 'NetworkDriver.DeleteNetwork');
    assert.equal(calls[0]!['outcome'], 'ok');
    assert.equal(typeof calls[0]!['ms'], 'number');
    assert.equal(calls[1]!['outcome'], 'rejected');
    assert.equal(calls[1]!['status'], 400);
    assert.ok(!JSON.stringify(lines).includes(NET_ID), 'request bodies stay out of the log');
  });

  test("a call's time ends when its reply is handed over, not after work the reply set off", async () => {
    const { logger, lines } = capturingLogger();
    const { app, network } = setup(logger);
    const busyMs = 300;
    // Stands for a background teardown's spawn: a few microtask hops after the reply (a lock handed on),
    // so before the socket reports the write done, it holds the event loop.
    network.respond('deleteEndpoint', async () => {
      let later = Promise.resolve();
      for (let hop = 0; hop < 10; hop++) later = later.then(() => undefined);
      void later.then(() => {
        const until = performance.now() + busyMs;
        while (performance.now() < until) {
          // the event loop is held, as by a fork
        }
      });
    });
    await post(app, RPC.network.deleteEndpoint, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }));
    const call = lines.find((l) => l['msg'] === 'plugin call');
    assert.ok(call, 'the call was logged');
    assert.ok(Number(call['ms']) < busyMs, `logged ${String(call['ms'])} ms, which includes the work after the reply`);
  });

  test('an unexpected error is logged at error level with its stack', async () => {
    const { logger, lines } = capturingLogger();
    const { app, network } = setup(logger);
    network.fail('leave', new Error('kaboom'));
    await post(app, RPC.network.leave, JSON.stringify({ NetworkID: NET_ID, EndpointID: EP_ID }));
    const errors = lines.filter((l) => l['level'] === 50);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]!['stack']), /kaboom[\s\S]*at /);
    assert.equal(errors[0]!['rpc'], 'NetworkDriver.Leave');
  });
});

describe('serveUnixSocket', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'docker-cni-serve-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function activateOver(socketPath: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, path: RPC.activate, method: 'POST' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('creates the parent dir, serves the app, socket is 0660 and owned by us, removed on close', async () => {
    const socketPath = path.join(dir, 'nested', 'plugins', 'cni.sock');
    const { app } = setup();
    const server = await serveUnixSocket(app, socketPath);
    try {
      const st = await stat(socketPath);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.uid, process.getuid!());
      assert.equal((await stat(path.dirname(socketPath))).mode & 0o777, 0o755);
      const reply = await activateOver(socketPath);
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.body), { Implements: ['NetworkDriver', 'IpamDriver'] });
    } finally {
      await closeServer(server);
    }
    assert.equal(existsSync(socketPath), false);
  });

  test('a stale socket left by a dead process is replaced', async () => {
    const socketPath = path.join(dir, 'stale.sock');
    // A child that exits without closing leaves its socket file behind, as a crash would.
    const leaveSocket = `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.exit(0))`;
    await promisify(execFile)(process.execPath, ['-e', leaveSocket]);
    assert.ok((await stat(socketPath)).isSocket(), 'precondition: stale socket file exists');
    const { app } = setup();
    const server = await serveUnixSocket(app, socketPath);
    try {
      assert.equal((await activateOver(socketPath)).status, 200);
    } finally {
      await closeServer(server);
    }
  });

  test('a socket someone is serving is left alone and startup is refused', async () => {
    const socketPath = path.join(dir, 'live.sock');
    const other = net.createServer((conn) => conn.end());
    await new Promise<void>((resolve) => other.listen(socketPath, resolve));
    try {
      const { app } = setup();
      await assert.rejects(serveUnixSocket(app, socketPath), /another process is already serving .*live\.sock/);
      assert.ok((await stat(socketPath)).isSocket(), 'the live socket file is untouched');
      await new Promise<void>((resolve, reject) => {
        const probe = net.createConnection({ path: socketPath }, () => {
          probe.destroy();
          resolve();
        });
        probe.on('error', reject);
      });
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  test('a regular file at the socket path is not deleted', async () => {
    const socketPath = path.join(dir, 'not-a-socket');
    await writeFile(socketPath, 'precious');
    const { app } = setup();
    await assert.rejects(serveUnixSocket(app, socketPath), /exists and is not a socket/);
    assert.equal((await stat(socketPath)).isFile(), true);
  });
});

/**
 * Throws many random and malformed requests at the real HTTP stack (createApp
 * behind serveUnixSocket on a temp socket, keep-alive client) and checks, for
 * every one, the status an independent oracle predicts from the wire contract:
 *
 *   known path + non-POST -> 405; unknown path -> 404; Content-Encoding -> 415;
 *   body > MAX_BODY_BYTES -> 413; not UTF-8 / not JSON / not an object / too
 *   deep -> 400; schema violation -> 400; Allocate/FreeNetwork -> 404; else 200.
 *
 * Then it checks that the fake drivers saw exactly the validated bodies of the
 * accepted requests (so no rejected request reached a driver), that nothing
 * crashed, and that valid requests still succeed afterwards.
 *
 * Reproduce a run with FUZZ_SEED=<seed printed below>; FUZZ_COUNT sets the size.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { MAX_BODY_BYTES, PLUGIN_CONTENT_TYPE, RPC } from '../../../src/docker/api.js';
import { MAX_JSON_DEPTH, createApp } from '../../../src/http/app.js';
import { closeServer, serveUnixSocket } from '../../../src/http/serve.js';
import { silentLogger } from '../../../src/log.js';
import { createFakeDrivers } from '../../helpers/fake-drivers.js';
import { EP_ID, NET_ID, RPC_SAMPLES } from '../http/rpc-samples.js';
import type { RpcSample } from '../http/rpc-samples.js';

const SEED = Number.parseInt(process.env['FUZZ_SEED'] ?? '', 10) || (Date.now() ^ (process.pid << 16)) >>> 0;
const COUNT = Number.parseInt(process.env['FUZZ_COUNT'] ?? '', 10) || 12_000;
const IN_FLIGHT = 16;
const REPLY_TIMEOUT_MS = 5000;

// ---- a small, seedable PRNG (splitmix32) ---------------------------------------
class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform uint32. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

// ---- value generators ---------------------------------------------------------
const HOSTILE_STRINGS = [
  '',
  ' ',
  '../../etc',
  '../../../../etc/passwd',
  '..',
  '.',
  '/',
  'a/b',
  '..\\..\\windows',
  '%2e%2e%2f%2e%2e%2f',
  'abc\u0000def',
  '\u0000',
  'line\nbreak',
  '$(reboot)',
  '`id`',
  '; rm -rf /',
  '-rf',
  '--help',
  'eth0',
  'ünïcödé',
  '网络',
  '🐳🐳🐳',
  '\u202eevil',
  '\ud800',
  '\udfff\ud800',
  '\ufeffBOM',
  'null',
  'true',
  '0',
  '-1',
  '10.231.0.0/16',
  '10.231.0.0/99',
  '::1/129',
  'fd7d:c11d:4e7::/48',
  '999.1.1.1/24',
  '__proto__',
  'constructor',
  'prototype',
  NET_ID,
  EP_ID,
  'a'.repeat(128),
  'a'.repeat(129),
];
const HOSTILE_NUMBERS = [0, -0, 1, -1, 1.5, 255, 256, 65535, 65536, -65536, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1e308, -1e308, 5e-324];
const KEYS = [
  'NetworkID',
  'EndpointID',
  'Options',
  'IPv4Data',
  'IPv6Data',
  'Pool',
  'Gateway',
  'AuxAddresses',
  'AddressSpace',
  'Interface',
  'Address',
  'AddressIPv6',
  'MacAddress',
  'SandboxKey',
  'PoolID',
  'SubPool',
  'V6',
  '__proto__',
  'constructor',
  'toString',
  '',
  'com.docker.network.generic',
  'com.docker.network.portmap',
];

function randomString(rng: Prng): string {
  switch (rng.int(6)) {
    case 0:
    case 1:
      return rng.pick(HOSTILE_STRINGS);
    case 2: {
      // Random code points, including control characters and astral planes.
      let s = '';
      const n = rng.int(40);
      for (let i = 0; i < n; i++) {
        const codePoint = rng.chance(0.7) ? rng.int(0x80) : rng.chance(0.5) ? rng.int(0xd800) : 0xe000 + rng.int(0x110000 - 0xe000);
        s += String.fromCodePoint(codePoint);
      }
      return s;
    }
    case 3:
      // Huge strings: longer than every schema limit, occasionally near the body limit.
      return rng.pick(['x', '/', 'é', '🐳', '\\']).repeat(rng.chance(0.02) ? 200_000 + rng.int(100_000) : 65 + rng.int(5000));
    case 4:
      return rng.bytes(rng.int(32)).toString('hex');
    default:
      return rng.bytes(rng.int(24)).toString('base64');
  }
}

function randomNumber(rng: Prng): number {
  return rng.chance(0.6) ? rng.pick(HOSTILE_NUMBERS) : (rng.next() | 0) / (rng.chance(0.5) ? 1 : 7);
}

function randomJson(rng: Prng, depth = 0): unknown {
  const leafOnly = depth > 4;
  switch (rng.int(leafOnly ? 4 : 7)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return randomNumber(rng);
    case 3:
      return randomString(rng);
    case 4: {
      const n = rng.int(5);
      return Array.from({ length: n }, () => randomJson(rng, depth + 1));
    }
    case 5:
      return nestedJunk(rng);
    default: {
      const obj: Record<string, unknown> = {};
      const n = rng.int(6);
      for (let i = 0; i < n; i++) obj[rng.chance(0.7) ? rng.pick(KEYS) : randomString(rng)] = randomJson(rng, depth + 1);
      return obj;
    }
  }
}

/** Deep nesting around the app's depth limit. */
function nestedJunk(rng: Prng): unknown {
  const depth = rng.chance(0.5) ? rng.int(10) : MAX_JSON_DEPTH - 3 + rng.int(6);
  let value: unknown = rng.chance(0.5) ? 'core' : 1;
  for (let i = 0; i < depth; i++) value = rng.chance(0.5) ? [value] : { k: value };
  return value;
}

/** Paths to every field of a sample body, so mutations hit real fields as well as new ones. */
function fieldPaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => fieldPaths(v, [...prefix, k]))];
}

function mutate(rng: Prng, body: Record<string, unknown>): unknown {
  const copy = structuredClone<Record<string, unknown>>(body);
  const mutations = 1 + rng.int(3);
  for (let m = 0; m < mutations; m++) {
    const paths = fieldPaths(copy).filter((p) => p.length > 0);
    const target = paths.length > 0 && rng.chance(0.85) ? rng.pick(paths) : [rng.pick(KEYS)];
    let parent: Record<string, unknown> = copy;
    for (const key of target.slice(0, -1)) {
      const next = parent[key];
      if (typeof next !== 'object' || next === null) break;
      parent = next as Record<string, unknown>;
    }
    const key = target[target.length - 1]!;
    switch (rng.int(8)) {
      case 0:
        delete parent[key];
        break;
      case 1:
        parent[key] = randomString(rng);
        break;
      case 2:
        parent[key] = randomNumber(rng);
        break;
      case 3:
        parent[key] = rng.pick([null, true, false, [], {}, [1, 2], { a: 1 }]);
        break;
      case 4:
        parent[key] = nestedJunk(rng);
        break;
      case 5:
        parent[rng.chance(0.5) ? rng.pick(KEYS) : randomString(rng)] = randomJson(rng);
        break;
      default:
        parent[key] = randomJson(rng);
    }
  }
  return copy;
}

/** Corrupts JSON text: truncation, a stray byte, a duplicated brace... */
function corruptText(rng: Prng, text: string): string {
  const at = rng.int(text.length + 1);
  switch (rng.int(4)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + rng.pick(['{', '}', '"', ',', ':', '\\', '\u0000', 'x', ']']) + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1 + rng.int(5));
    default:
      return `${text}${rng.pick(['}', ' garbage', '\n{}', ','])}`;
  }
}

// ---- requests and the oracle --------------------------------------------------
interface FuzzRequest {
  index: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  chunked: boolean;
}

const SAMPLE_BY_PATH = new Map<string, RpcSample>(RPC_SAMPLES.map((s) => [s.path, s]));
const ODD_PATHS = [
  '/',
  '/Plugin.Deactivate',
  '/plugin.activate',
  '/NetworkDriver.Join/',
  '/NetworkDriver.Join/../Plugin.Activate',
  '/NetworkDriver.%4Aoin',
  '/IpamDriver.RequestPool?x=1',
  '/NetworkDriver.Frobnicate',
  '//NetworkDriver.Join',
  '/%E0%A4%A',
  '/../../etc/passwd',
];
const CONTENT_TYPES = [
  undefined,
  undefined,
  undefined,
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  '\u00ff/garbage',
  '',
];

function generate(rng: Prng, index: number): FuzzRequest {
  const samplePath = rng.pick(RPC_SAMPLES).path;
  const sample = SAMPLE_BY_PATH.get(samplePath)!;
  const pathChoice = rng.chance(0.04) ? rng.pick(ODD_PATHS) : samplePath;
  const method = rng.chance(0.02) ? rng.pick(['GET', 'PUT', 'DELETE', 'PATCH']) : 'POST';
  const headers: Record<string, string> = {};
  const contentType = rng.pick(CONTENT_TYPES);
  if (contentType !== undefined) headers['Content-Type'] = contentType.replace(/[^\t\x20-\x7e]/g, '?');
  if (rng.chance(0.01)) headers['Content-Encoding'] = rng.pick(['gzip', 'deflate', 'br', 'x-junk']);

  const base = sample.body ?? {};
  let body: Buffer;
  const kind = rng.int(100);
  if (kind < 8) body = rng.bytes(rng.int(600));
  else if (kind < 20) body = Buffer.from(JSON.stringify(randomJson(rng)) ?? '', 'utf8');
  else if (kind < 26) body = Buffer.from(corruptText(rng, JSON.stringify(rng.chance(0.5) ? base : mutate(rng, base))), 'utf8');
  else if (kind < 28) body = Buffer.from(rng.pick(['', ' ', '\n\t\r ', '\u00a0', '{}', '[]', 'null', '0', '""']), 'utf8');
  else if (kind < 29) body = Buffer.from(JSON.stringify({ ...base, Pad: 'p'.repeat(MAX_BODY_BYTES) }), 'utf8');
  else if (kind < 88) body = Buffer.from(JSON.stringify(mutate(rng, base)), 'utf8');
  else body = sample.body === undefined && rng.chance(0.5) ? Buffer.alloc(0) : Buffer.from(JSON.stringify(base), 'utf8');
  return { index, method, path: pathChoice, headers, body, chunked: rng.chance(0.1) };
}

/** Routing ignores the query string. */
const routeOf = (urlPath: string): string => urlPath.split('?')[0]!;

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child));
  return deepest + 1;
}

interface Expectation {
  status: number;
  /** The request the driver must receive when status is 200 and the RPC has a driver method. */
  driverRequest?: unknown;
}

/** What the wire contract says must happen, derived without looking at the app's code paths. */
function expect(req: FuzzRequest): Expectation {
  const sample = SAMPLE_BY_PATH.get(routeOf(req.path));
  if (!sample) return { status: 404 };
  if (req.method !== 'POST') return { status: 405 };
  if (req.headers['Content-Encoding']) return { status: 415 };
  if (req.body.length > MAX_BODY_BYTES) return { status: 413 };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(req.body);
  } catch {
    return { status: 400 };
  }
  let parsed: unknown = {};
  if (!/^[\t\n\r ]*$/.test(text)) {
    try {
      parsed = JSON.parse(text);
    } catch {
      return { status: 400 };
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { status: 400 };
  if (depthOf(parsed) > MAX_JSON_DEPTH) return { status: 400 };
  if (sample.okStatus !== 200) return { status: sample.okStatus };
  if (!sample.schema) return { status: 200 };
  const validated = sample.schema.safeParse(parsed);
  return validated.success ? { status: 200, driverRequest: validated.data } : { status: 400 };
}

// ---- transport ----------------------------------------------------------------
interface Reply {
  status: number;
  contentType: string | undefined;
  text: string;
}

function send(socketPath: string, agent: http.Agent, req: FuzzRequest): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers };
    // Said explicitly: for DELETE/GET node would otherwise stream the body unframed.
    if (req.chunked) headers['Transfer-Encoding'] = 'chunked';
    else headers['Content-Length'] = req.body.length;
    let gotResponse = false;
    const outgoing = http.request({ socketPath, agent, method: req.method, path: req.path, headers }, (res) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'],
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    // The server may answer (404, 413) before it has read the whole body; once the
    // reply is in, a write error on the rest of the body is not a failure.
    outgoing.on('error', (err: NodeJS.ErrnoException) => {
      if (gotResponse && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) return;
      reject(err);
    });
    // A hang is a finding too: turn it into a failure that names the request.
    outgoing.setTimeout(REPLY_TIMEOUT_MS, () => outgoing.destroy(new Error(`no reply within ${REPLY_TIMEOUT_MS} ms`)));
    if (req.chunked && req.body.length > 1) {
      const cut = Math.floor(req.body.length / 2);
      outgoing.write(req.body.subarray(0, cut));
      outgoing.end(req.body.subarray(cut));
    } else {
      outgoing.end(req.body);
    }
  });
}

/** Runs `worker` over `items` with at most `limit` in flight. */
async function runPool<T>(items: readonly T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await worker(item);
    }
  });
  await Promise.all(lanes);
}

function describeRequest(req: FuzzRequest): string {
  const excerpt = req.body.length > 300 ? `${req.body.subarray(0, 300).toString('utf8')}... (${req.body.length} bytes)` : req.body.toString('utf8');
  return `#${req.index} ${req.method} ${req.path} headers=${JSON.stringify(req.headers)} chunked=${req.chunked} body=${JSON.stringify(excerpt)}`;
}

// ---- the test -----------------------------------------------------------------
let dir: string;
let socketPath: string;
let server: http.Server;
let agent: http.Agent;
const fakes = createFakeDrivers();
const crashes: unknown[] = [];
const onCrash = (err: unknown): void => {
  crashes.push(err);
};

before(async () => {
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  dir = await mkdtemp(path.join(os.tmpdir(), 'docker-cni-fuzz-'));
  socketPath = path.join(dir, 'fuzz.sock');
  server = await serveUnixSocket(createApp({ network: fakes.network, ipam: fakes.ipam, logger: silentLogger }), socketPath);
  agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
});

after(async () => {
  agent?.destroy();
  if (server) await closeServer(server, 2000);
  if (dir) await rm(dir, { recursive: true, force: true });
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
});

test(`fuzz: ${COUNT} random and malformed requests across every endpoint (seed ${SEED})`, async (t) => {
  console.log(`fuzz seed: ${SEED} (reproduce with FUZZ_SEED=${SEED} FUZZ_COUNT=${COUNT})`);
  const rng = new Prng(SEED);
  const requests = Array.from({ length: COUNT }, (_, i) => generate(rng, i));

  const failures: string[] = [];
  const statusCounts = new Map<number, number>();
  /** JSON of every request each driver method must have received, from the accepted requests. */
  const expectedDriverCalls = new Map<string, string[]>();
  const started = Date.now();

  await runPool(requests, IN_FLIGHT, async (req) => {
    const expected = expect(req);
    let reply: Reply;
    try {
      reply = await send(socketPath, agent, req);
    } catch (err) {
      failures.push(`${describeRequest(req)}: transport error ${(err as Error).message}`);
      return;
    }
    statusCounts.set(reply.status, (statusCounts.get(reply.status) ?? 0) + 1);
    const problems: string[] = [];
    if (reply.status !== expected.status) problems.push(`status ${reply.status}, expected ${expected.status}`);
    if (reply.contentType !== PLUGIN_CONTENT_TYPE) problems.push(`content-type ${reply.contentType}`);
    let body: unknown;
    try {
      body = JSON.parse(reply.text);
    } catch {
      problems.push('reply is not JSON');
    }
    const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
    if (!isObject) problems.push('reply is not a JSON object');
    else if (reply.status !== 200) {
      const keys = Object.keys(body as object);
      const err = (body as Record<string, unknown>)['Err'];
      if (keys.length !== 1 || typeof err !== 'string' || err === '') problems.push('error reply is not {"Err": "<message>"}');
      else if (err.includes('\n')) problems.push('Err spans lines');
    }
    if (problems.length > 0) failures.push(`${describeRequest(req)}: ${problems.join('; ')}: ${reply.text.slice(0, 300)}`);

    const sample = SAMPLE_BY_PATH.get(routeOf(req.path));
    if (expected.status === 200 && reply.status === 200 && sample?.target) {
      const key = `${sample.target.api}.${sample.target.method}`;
      const list = expectedDriverCalls.get(key) ?? [];
      list.push(JSON.stringify(expected.driverRequest) ?? 'undefined');
      expectedDriverCalls.set(key, list);
    }
  });

  const elapsed = Date.now() - started;
  t.diagnostic(`${COUNT} requests in ${elapsed} ms; statuses ${JSON.stringify(Object.fromEntries([...statusCounts].sort()))}`);

  assert.deepEqual(crashes, [], 'no uncaught exception or unhandled rejection');
  assert.equal(failures.length, 0, `seed ${SEED}: ${failures.length} bad replies, first ones:\n${failures.slice(0, 8).join('\n')}`);
  for (const status of statusCounts.keys()) assert.ok(status < 500, `seed ${SEED}: got a ${status}`);
  // Every status class the oracle knows should have been exercised by a run this size.
  for (const status of [200, 400, 404, 405, 413, 415]) {
    assert.ok(statusCounts.has(status), `seed ${SEED}: no request produced ${status}; generator lost coverage`);
  }

  // The drivers saw exactly the validated bodies of the accepted requests: none
  // of the rejected ones, none twice, none altered on the way.
  const actualDriverCalls = new Map<string, string[]>();
  for (const call of fakes.log.calls) {
    const key = `${call.api}.${call.method}`;
    const list = actualDriverCalls.get(key) ?? [];
    list.push(JSON.stringify(call.request) ?? 'undefined');
    actualDriverCalls.set(key, list);
  }
  const keys = new Set([...expectedDriverCalls.keys(), ...actualDriverCalls.keys()]);
  for (const key of keys) {
    const want = (expectedDriverCalls.get(key) ?? []).sort();
    const got = (actualDriverCalls.get(key) ?? []).sort();
    assert.equal(got.length, want.length, `seed ${SEED}: ${key} called ${got.length} times, expected ${want.length}`);
    assert.deepEqual(got, want, `seed ${SEED}: ${key} received bodies other than the validated accepted ones`);
  }
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.keys(Object.prototype).length, 0, 'Object.prototype untouched');

  // After all that, the server still answers every valid request normally.
  const before = fakes.log.length;
  let index = COUNT;
  for (const sample of RPC_SAMPLES) {
    const body = sample.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(sample.body), 'utf8');
    const reply = await send(socketPath, agent, { index: index++, method: 'POST', path: sample.path, headers: {}, body, chunked: false });
    assert.equal(reply.status, sample.okStatus, `replay of ${sample.path}: ${reply.text}`);
    assert.equal(reply.contentType, PLUGIN_CONTENT_TYPE);
  }
  assert.equal(fakes.log.length - before, RPC_SAMPLES.filter((s) => s.target !== null).length, 'replay reached the drivers');
  assert.equal(
    (await send(socketPath, agent, { index, method: 'POST', path: RPC.activate, headers: {}, body: Buffer.alloc(0), chunked: false })).text,
    '{"Implements":["NetworkDriver","IpamDriver"]}',
  );
});

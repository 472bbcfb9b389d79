// Property-based fuzzing (fast-check, with shrinking) of every layer that
// parses user input: network and endpoint options, port bindings, conflists
// and records read from disk. The oracles do not reuse the zod schemas or
// parsers under test; they state what must hold whatever the input:
// - only a typed PluginError escapes (never a TypeError, never a crash);
// - a rejection names the option (or key) that caused it;
// - an accepted option round-trips into the generated conflist / result;
// - reading state never writes outside the state dir.
// Each property prints its run count and seed. Reproduce a run with
// FC_SEED=<seed> (and FC_RUNS=<n> for more runs) node test/run.mjs unit fuzz.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { confListBytes, confListFromBytes } from '../../../src/cni/conf.js';
import { PluginError } from '../../../src/errors.js';
import { generatedConfList } from '../../../src/network/conflist.js';
import { parseEndpointOptions, parseNetworkOptions } from '../../../src/network/options.js';
import { allocatePortMappings, readPortBindings } from '../../../src/network/ports.js';
import { ENDPOINT_CODEC, NETWORK_CODEC } from '../../../src/network/records.js';
import { POOL_CODEC } from '../../../src/ipam/pool-record.js';
import { RecordStore } from '../../../src/state/record-store.js';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
const RUNS = Number(process.env.FC_RUNS ?? 300);

async function check<Ts extends [unknown, ...unknown[]]>(name: string, property: fc.IAsyncPropertyWithHooks<Ts> | fc.IPropertyWithHooks<Ts>, runs = RUNS): Promise<void> {
  // fast-check reports seed and the shrunk counterexample on failure; log it on success too.
  await fc.assert(property, { seed: SEED, numRuns: runs });
  console.log(`fuzz ${name}: ${runs} runs passed, seed ${SEED} (FC_SEED=${SEED} reproduces)`);
}

/** Only typed errors may escape a parser. */
function typedOnly(err: unknown): PluginError {
  if (!(err instanceof PluginError)) throw new Error(`untyped error escaped: ${String(err)}`, { cause: err });
  return err;
}

const NET_KEYS = [
  'cni.network', 'cni.bridge', 'com.docker.network.bridge.name', 'cni.mtu', 'com.docker.network.driver.mtu',
  'cni.masquerade', 'com.docker.network.bridge.enable_ip_masquerade', 'cni.icc', 'com.docker.network.bridge.enable_icc',
  'cni.isolation', 'cni.host_binding_ip', 'com.docker.network.bridge.host_binding_ipv4',
  'cni.bandwidth.ingress_rate', 'cni.bandwidth.ingress_burst', 'cni.bandwidth.egress_rate', 'cni.bandwidth.egress_burst',
  'com.docker.network.bridge.default_bridge', 'cni.bogus', 'cni.bandwidth.sideways', '',
];
const VALUES = ['true', 'false', 'on', 'no', '1', '0', 'maybe', '1500', '67', '68', '65535', '65536', '-1', '1e3', ' 1400', 'br0',
  'dcni-x', 'a'.repeat(16), '../etc', '10.0.0.1', '256.1.1.1', 'mynet', '', '1000000', '\u0000', '💥'];
const anyValue = fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 20 }), fc.integer().map(String));
const keyOf = (pool: string[]): fc.Arbitrary<string> => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: fc.string({ maxLength: 24 }) });

// Independent of options.ts: what the documentation promises for each spelling.
const TRUTHY = new Set(['true', '1', 'yes', 'on']);
const FALSY = new Set(['false', '0', 'no', 'off']);
const MTU_KEYS = new Set(['cni.mtu', 'com.docker.network.driver.mtu']);
const BRIDGE_KEYS = new Set(['cni.bridge', 'com.docker.network.bridge.name']);
const ICC_KEYS = new Set(['cni.icc', 'com.docker.network.bridge.enable_icc']);
const MASQ_KEYS = new Set(['cni.masquerade', 'com.docker.network.bridge.enable_ip_masquerade']);
const NET_ID = 'f'.repeat(64);
/** A parsed conflist keeps the bytes and the path it was read from; compare the data. */
const withoutBytes = <T extends object>(list: T): Omit<T, 'bytes' | 'sourcePath'> => {
  const { bytes: _bytes, sourcePath: _path, ...rest } = list as T & { bytes?: unknown; sourcePath?: unknown };
  return rest;
};

describe('property: network options (docker network create -o)', () => {
  test('typed errors only; a rejection names an option given; an accepted option reaches the conflist', async () => {
    await check(
      'network options',
      fc.property(fc.dictionary(keyOf(NET_KEYS), anyValue, { maxKeys: 6 }), (raw) => {
        let opts;
        try {
          opts = parseNetworkOptions(raw);
        } catch (err) {
          const e = typedOnly(err);
          assert.equal(e.code, 'INVALID_ARGUMENT');
          assert.ok(Object.keys(raw).some((k) => e.message.includes(k)), `rejection "${e.message}" names none of ${JSON.stringify(Object.keys(raw))}`);
          return;
        }
        const bridgeName = opts.bridge ?? 'dcni-default';
        const conflist = generatedConfList(NET_ID, opts, bridgeName, true);
        const bridgePlugin = conflist.plugins[0]!;
        for (const [key, value] of Object.entries(raw)) {
          if (MTU_KEYS.has(key)) assert.equal(bridgePlugin.mtu, Number(value), `${key}=${value} is not the conflist's mtu`);
          if (BRIDGE_KEYS.has(key)) assert.equal(bridgePlugin.bridge, value);
          const v = value.trim().toLowerCase();
          if (ICC_KEYS.has(key)) assert.equal(opts.icc, TRUTHY.has(v) ? true : FALSY.has(v) ? false : 'rejected');
          if (MASQ_KEYS.has(key)) assert.equal(opts.masquerade, TRUTHY.has(v) ? true : FALSY.has(v) ? false : 'rejected');
        }
        // The conflist is data a plugin reads: it survives the CNI codec unchanged.
        assert.deepEqual(withoutBytes(confListFromBytes(confListBytes(conflist))), conflist);
      }),
    );
  });
});

const EP_KEYS = ['cni.args.FOO', 'cni.args.foo', 'cni.args.IP', 'cni.args.K8S_POD_NAME', 'cni.args.', 'cni.args.1X',
  'cni.bandwidth.ingress_rate', 'cni.bandwidth.egress_burst', 'cni.nope', 'com.docker.network.endpoint.exposedports', 'other'];

describe('property: endpoint options (--driver-opt)', () => {
  test('typed errors only; rejections name the key; accepted cni.args reach CNI_ARGS verbatim', async () => {
    await check(
      'endpoint options',
      fc.property(fc.dictionary(keyOf(EP_KEYS), fc.oneof(anyValue, fc.anything({ maxDepth: 1 })), { maxKeys: 5 }), (raw) => {
        let opts;
        try {
          opts = parseEndpointOptions(raw);
        } catch (err) {
          const e = typedOnly(err);
          assert.ok(Object.keys(raw).some((k) => e.message.includes(k)), `rejection "${e.message}" names no key`);
          return;
        }
        const given = Object.entries(raw).filter(([k]) => k.startsWith('cni.args.'));
        assert.deepEqual(opts.cniArgs, given.map(([k, v]) => [k.slice('cni.args.'.length).toUpperCase(), v]));
        for (const [, value] of opts.cniArgs) assert.doesNotMatch(value, /[;=\0]/, 'a CNI_ARGS value would split the list');
      }),
    );
  });
});

const PROTO = { 6: 'tcp', 17: 'udp', 132: 'sctp' } as const;
const binding = fc.record({
  Proto: fc.oneof(fc.constantFrom(6, 17, 132), fc.integer({ min: -1, max: 300 })),
  Port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.integer()),
  HostIP: fc.constantFrom('', '0.0.0.0', '127.0.0.1', '::', 'bogus'),
  HostPort: fc.oneof(fc.integer({ min: 20000, max: 20100 }), fc.integer({ min: -5, max: 70000 })),
  HostPortEnd: fc.oneof(fc.constant(0), fc.integer({ min: 20000, max: 20200 })),
});

describe('property: port bindings (-p)', () => {
  test('typed errors only; every accepted binding gets one mapping inside its range, and no two mappings clash', async () => {
    await check(
      'port bindings',
      fc.asyncProperty(fc.oneof(fc.array(binding, { maxLength: 6 }), fc.anything({ maxDepth: 2 })), async (value) => {
        let mappings;
        let bindings;
        try {
          bindings = readPortBindings(value);
          mappings = await allocatePortMappings(bindings, { inUse: [], probe: async () => true });
        } catch (err) {
          typedOnly(err);
          return;
        }
        assert.equal(mappings.length, bindings.length);
        bindings.forEach((b, i) => {
          const m = mappings[i]!;
          assert.equal(m.protocol, PROTO[b.Proto as keyof typeof PROTO]);
          assert.equal(m.containerPort, b.Port);
          if (b.HostPort > 0) {
            assert.ok(m.hostPort >= b.HostPort && m.hostPort <= Math.max(b.HostPort, b.HostPortEnd), `host port ${m.hostPort} outside ${b.HostPort}-${b.HostPortEnd}`);
          }
        });
        const wild = (ip?: string): boolean => !ip || ip === '0.0.0.0' || ip === '::';
        for (const [i, a] of mappings.entries()) {
          for (const b of mappings.slice(i + 1)) {
            const clash = a.protocol === b.protocol && a.hostPort === b.hostPort && (wild(a.hostIP) || wild(b.hostIP) || a.hostIP === b.hostIP);
            assert.ok(!clash, `two mappings on ${a.protocol}/${a.hostPort}`);
          }
        }
      }),
      150,
    );
  });
});

const PLUGIN_TYPES = ['bridge', 'portmap', 'host-local', '../../bin/sh', '', 'a/b', 'tuning'];
const confLike = fc.record(
  {
    cniVersion: fc.constantFrom('0.3.1', '0.4.0', '1.0.0', '1.1.0', '9.9.9', ''),
    name: fc.oneof(fc.constantFrom('net1', 'bad name', '../x', ''), fc.string({ maxLength: 12 })),
    plugins: fc.array(fc.record({ type: fc.constantFrom(...PLUGIN_TYPES), mtu: fc.integer() }, { requiredKeys: ['type'] }), { maxLength: 3 }),
    disableCheck: fc.boolean(),
  },
  { requiredKeys: [] },
);

describe('property: conflists from the conf dir', () => {
  test('typed errors only; an accepted conflist round-trips and names no plugin path', async () => {
    await check(
      'conflists',
      fc.property(fc.oneof(confLike.map((c) => Buffer.from(JSON.stringify(c))), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j))), (bytes) => {
        let list;
        try {
          list = confListFromBytes(bytes, '/etc/cni/net.d/fuzz.conflist');
        } catch (err) {
          typedOnly(err);
          return;
        }
        for (const plugin of list.plugins) assert.ok(!plugin.type.includes('/') && plugin.type !== '', `plugin type "${plugin.type}" accepted`);
        assert.deepEqual(withoutBytes(confListFromBytes(confListBytes(list))), withoutBytes(list));
      }),
    );
  });
});

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    out.push(`${path.relative(dir, full)} ${(await stat(full)).mtimeMs}`);
  }
  return out.sort();
}

describe('property: records read from disk', () => {
  test('corrupt or hostile records are reported as typed errors and nothing is written outside the state dir', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'docker-cni-fuzz-'));
    const stateDir = path.join(root, 'state');
    const outside = path.join(root, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'sentinel'), 'x');
    const stores = [
      new RecordStore(stateDir, 'networks', false, NETWORK_CODEC),
      new RecordStore(stateDir, 'endpoints', false, ENDPOINT_CODEC),
      new RecordStore(stateDir, 'pools', false, POOL_CODEC),
    ];
    const id = 'a'.repeat(64);
    const before = await tree(outside);
    try {
      await check(
        'records from disk',
        fc.asyncProperty(
          fc.constantFrom(0, 1, 2),
          fc.oneof(fc.json().map((j) => Buffer.from(j)), fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b)),
            fc.record({ version: fc.oneof(fc.integer(), fc.string()), id: fc.constantFrom(id, '../../outside/sentinel'), path: fc.constant('../../outside/x') }).map((r) => Buffer.from(JSON.stringify(r)))),
          fc.constantFrom(id, '../outside/sentinel', 'x/../../y', ''),
          async (which, bytes, askedId) => {
            const store = stores[which]!;
            await store.ensureDir();
            await writeFile(path.join(store.dir, `${id}.json`), bytes);
            try {
              await store.get(askedId);
            } catch (err) {
              typedOnly(err);
            }
            const corrupt: string[] = [];
            await store.list((bad, err) => {
              typedOnly(err);
              corrupt.push(bad);
            });
          },
        ),
        200,
      );
      assert.deepEqual(await tree(outside), before, 'something was written outside the state dir');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

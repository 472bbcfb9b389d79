import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { CniPortMapping } from '../../../src/cni/types.js';
import { IP_PROTO, type PortBinding } from '../../../src/docker/api.js';
import { PluginError, type ErrorCode } from '../../../src/errors.js';
import { allocatePortMappings, readPortBindings, type PortProbe } from '../../../src/network/ports.js';

const binding = (fields: Partial<PortBinding> & Pick<PortBinding, 'Proto' | 'Port'>): PortBinding => ({
  IP: '',
  HostIP: '',
  HostPort: 0,
  HostPortEnd: fields.HostPort ?? 0,
  ...fields,
});

/** A probe answering from a set of busy ports, recording every question. */
function probe(busy: (port: number) => boolean = () => false): PortProbe & { asked: Array<[string, string, number]> } {
  const asked: Array<[string, string, number]> = [];
  const fn = (async (protocol, hostIP, port) => {
    asked.push([protocol, hostIP, port]);
    return !busy(port);
  }) as PortProbe & { asked: Array<[string, string, number]> };
  fn.asked = asked;
  return fn;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PluginError, String(err));
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

async function localPortRange(): Promise<[number, number]> {
  try {
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (low && high) return [low, high];
  } catch {
    // not Linux: the documented fallback
  }
  return [49153, 60999];
}

describe('readPortBindings', () => {
  test('absent means no bindings; Docker\'s JSON array is parsed with defaults', () => {
    assert.deepEqual(readPortBindings(undefined), []);
    assert.deepEqual(readPortBindings(null), []);
    assert.deepEqual(readPortBindings([{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8081, HostPortEnd: 8081 }]), [
      { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8081, HostPortEnd: 8081 },
    ]);
    assert.deepEqual(readPortBindings([{ Proto: 17, Port: 53 }]), [{ Proto: 17, IP: '', Port: 53, HostIP: '', HostPort: 0, HostPortEnd: 0 }]);
  });

  test('malformed bindings are INVALID_ARGUMENT', () => {
    for (const bad of ['80:80', [{ Proto: 6, Port: 70000 }], [{ Port: 80 }], { Proto: 6, Port: 80 }]) {
      assert.throws(
        () => readPortBindings(bad),
        (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT' && /invalid port bindings/.test(err.message),
      );
    }
  });
});

describe('allocatePortMappings', () => {
  test('tcp, udp and sctp map to CNI portmap entries; no HostIP means no hostIP key', async () => {
    const out = await allocatePortMappings(
      [
        binding({ Proto: IP_PROTO.tcp, Port: 80, HostPort: 8080 }),
        binding({ Proto: IP_PROTO.udp, Port: 53, HostPort: 5353 }),
        binding({ Proto: IP_PROTO.sctp, Port: 9, HostPort: 9999 }),
      ],
      { inUse: [], probe: probe() },
    );
    assert.deepEqual(out, [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp' },
      { hostPort: 9999, containerPort: 9, protocol: 'sctp' },
    ]);
  });

  test('an unsupported protocol or container port 0 is INVALID_ARGUMENT', async () => {
    await rejectsWith(allocatePortMappings([binding({ Proto: 1, Port: 80, HostPort: 80 })], { inUse: [], probe: probe() }), 'INVALID_ARGUMENT', /protocol number 1/);
    await rejectsWith(allocatePortMappings([binding({ Proto: 6, Port: 0, HostPort: 80 })], { inUse: [], probe: probe() }), 'INVALID_ARGUMENT', /container port 0/);
  });

  test('HostIP: the binding\'s own wins, else the network\'s default host IP', async () => {
    const p = probe();
    const out = await allocatePortMappings(
      [binding({ Proto: 6, Port: 80, HostPort: 8080 }), binding({ Proto: 6, Port: 81, HostPort: 8081, HostIP: '10.231.0.1' })],
      { defaultHostIp: '127.0.0.1', inUse: [], probe: p },
    );
    assert.deepEqual(out, [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' },
      { hostPort: 8081, containerPort: 81, protocol: 'tcp', hostIP: '10.231.0.1' },
    ]);
    assert.deepEqual(p.asked, [
      ['tcp', '127.0.0.1', 8080],
      ['tcp', '10.231.0.1', 8081],
    ]);
  });

  test('HostPort 0 picks a free port in the local ephemeral range', async () => {
    const [low, high] = await localPortRange();
    let answered = 0;
    const p = probe(() => ++answered <= 3); // the first three candidates are busy
    const [mapping] = await allocatePortMappings([binding({ Proto: 6, Port: 80 })], { inUse: [], probe: p });
    assert.ok(mapping);
    assert.equal(p.asked.length, 4);
    assert.equal(mapping.hostPort, p.asked[3]?.[2]);
    assert.ok(mapping.hostPort >= low && mapping.hostPort <= high, `${mapping.hostPort} in ${low}-${high}`);
    assert.equal(new Set(p.asked.map((a) => a[2])).size, 4, 'never asks twice about one port');
  });

  test('an ephemeral range with nothing free is EXHAUSTED', async () => {
    await rejectsWith(allocatePortMappings([binding({ Proto: 6, Port: 80 })], { inUse: [], probe: probe(() => true) }), 'EXHAUSTED', /ephemeral/);
  });

  test('a range picks the first free port; a fully taken range is a CONFLICT naming the range', async () => {
    const out = await allocatePortMappings([binding({ Proto: 6, Port: 80, HostPort: 8000, HostPortEnd: 8003 })], {
      inUse: [{ hostPort: 8000, containerPort: 1, protocol: 'tcp' }],
      probe: probe((port) => port === 8001),
    });
    assert.deepEqual(out, [{ hostPort: 8002, containerPort: 80, protocol: 'tcp' }]);
    await rejectsWith(
      allocatePortMappings([binding({ Proto: 6, Port: 80, HostPort: 8000, HostPortEnd: 8001 })], {
        inUse: [{ hostPort: 8000, containerPort: 1, protocol: 'tcp' }],
        probe: probe((port) => port === 8001),
      }),
      'CONFLICT',
      /8000-8001\/tcp is already in use/,
    );
  });

  test('ports mapped by another endpoint are refused without probing, by host IP overlap', async () => {
    const inUse = (hostIP?: string): CniPortMapping[] => [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', ...(hostIP ? { hostIP } : {}) }];
    const want = (HostIP = ''): PortBinding[] => [binding({ Proto: 6, Port: 80, HostPort: 8080, HostIP })];
    const clash: Array<[string | undefined, string]> = [
      [undefined, ''],
      [undefined, '127.0.0.1'],
      ['127.0.0.1', ''],
      ['127.0.0.1', '127.0.0.1'],
      ['0.0.0.0', '10.231.0.1'],
      ['10.231.0.1', '0.0.0.0'],
      ['::', '10.231.0.1'],
    ];
    for (const [taken, requested] of clash) {
      const p = probe();
      await rejectsWith(allocatePortMappings(want(requested), { inUse: inUse(taken), probe: p }), 'CONFLICT', /8080\/tcp/);
      assert.deepEqual(p.asked, [], 'bookkeeping decides before the probe');
    }
    // Different specific IPs, or another protocol, do not clash.
    assert.equal((await allocatePortMappings(want('127.0.0.2'), { inUse: inUse('127.0.0.1'), probe: probe() })).length, 1);
    assert.equal(
      (await allocatePortMappings([binding({ Proto: IP_PROTO.udp, Port: 80, HostPort: 8080 })], { inUse: inUse(), probe: probe() })).length,
      1,
    );
  });

  test('a port a host process holds is a CONFLICT', async () => {
    await rejectsWith(
      allocatePortMappings([binding({ Proto: 6, Port: 80, HostPort: 8080 })], { inUse: [], probe: probe((port) => port === 8080) }),
      'CONFLICT',
      /host process/,
    );
  });

  test('the same host port twice in one request is a CONFLICT; a range moves on to the next port', async () => {
    await rejectsWith(
      allocatePortMappings([binding({ Proto: 6, Port: 80, HostPort: 8080 }), binding({ Proto: 6, Port: 81, HostPort: 8080 })], {
        inUse: [],
        probe: probe(),
      }),
      'CONFLICT',
    );
    const out = await allocatePortMappings(
      [binding({ Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8081 }), binding({ Proto: 6, Port: 81, HostPort: 8080, HostPortEnd: 8081 })],
      { inUse: [], probe: probe() },
    );
    assert.deepEqual(
      out.map((m) => m.hostPort),
      [8080, 8081],
    );
  });

  test('HostPortEnd 0 with a fixed HostPort means just that port', async () => {
    const out = await allocatePortMappings([{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 0 }], { inUse: [], probe: probe() });
    assert.deepEqual(out, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  });

  test('inUse is not modified', async () => {
    const inUse: CniPortMapping[] = [{ hostPort: 1, containerPort: 1, protocol: 'tcp' }];
    await allocatePortMappings([binding({ Proto: 6, Port: 80, HostPort: 8080 })], { inUse, probe: probe() });
    assert.deepEqual(inUse, [{ hostPort: 1, containerPort: 1, protocol: 'tcp' }]);
  });
});

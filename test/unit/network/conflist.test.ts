import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CniResult, NetConfList } from '../../../src/cni/types.js';
import {
  GENERATED_CNI_VERSION,
  chainHasIngressPolicy,
  endpointConfList,
  gatewayFromResult,
  generatedConfList,
  publicationConfList,
  staticRoutesFromResult,
} from '../../../src/network/conflist.js';
import { bridgeNameFor, generatedCniName, hostLinkNameFor } from '../../../src/names.js';
import { hexId } from './driver-harness.js';

/** Freezes a value deeply, so any mutation by the code under test throws. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const USER_TEMPLATE: NetConfList = {
  cniVersion: '1.0.0',
  name: 'usernet',
  sourcePath: '/etc/cni/net.d/10-usernet.conflist',
  bytes: Buffer.from('{}'),
  plugins: [
    {
      type: 'bridge',
      bridge: 'cni0',
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.232.7.0/24' }]],
        dataDir: '/var/lib/cni/networks',
        routes: [{ dst: '0.0.0.0/0' }],
        dns: { nameservers: ['10.232.7.53'] },
      },
    },
    { type: 'tuning', sysctl: { 'net.ipv4.conf.IFNAME.arp_notify': '1' } },
    { type: 'macvlan', master: 'eth1', ipam: { type: 'dhcp' } },
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'weird', ipam: {} },
  ],
};

describe('endpointConfList', () => {
  test('replaces every IPAM section with static holding Docker\'s addresses, keeping routes and dns only', () => {
    const template = deepFreeze(structuredClone(USER_TEMPLATE));
    const list = endpointConfList(template, false, {
      addresses: ['10.232.7.9/24', 'fd7d:c11d:4e7:7::9/64'],
      gatewayV4: '10.232.7.1',
      gatewayV6: 'fd7d:c11d:4e7:7::1',
    });
    const addresses = [
      { address: '10.232.7.9/24', gateway: '10.232.7.1' },
      { address: 'fd7d:c11d:4e7:7::9/64', gateway: 'fd7d:c11d:4e7:7::1' },
    ];
    assert.deepEqual(list.plugins[0]?.ipam, {
      type: 'static',
      addresses,
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.232.7.53'] },
    });
    assert.deepEqual(list.plugins[2]?.ipam, { type: 'static', addresses });
    assert.equal(list.plugins[2]?.master, 'eth1');
    assert.equal(list.plugins[1]?.ipam, undefined, 'no IPAM is added where there was none');
    assert.deepEqual(list.plugins[3]?.ipam, {}, 'an IPAM section without a type is left alone');
    assert.deepEqual(
      list.plugins.map((p) => p.type),
      ['bridge', 'tuning', 'macvlan', 'weird'],
      'portmap runs apart from the chain, when Docker names the endpoint the gateway',
    );
    assert.equal(list.name, 'usernet');
    assert.equal(list.cniVersion, '1.0.0');
    assert.equal('bytes' in list, false, 'the stored chain is not the file: its bytes must not be reused for the cache');
    assert.equal('sourcePath' in list, false);
  });

  test('an address without a gateway for its family gets none', () => {
    const list = endpointConfList(generatedConfList(hexId(), { masquerade: true, icc: true, isolate: true }, 'br0', false), true, {
      addresses: ['10.231.1.5/24', 'fd7d:c11d:4e7:1::5/64'],
      gatewayV4: '10.231.1.1',
    });
    assert.deepEqual(list.plugins[0]?.ipam?.addresses, [{ address: '10.231.1.5/24', gateway: '10.231.1.1' }, { address: 'fd7d:c11d:4e7:1::5/64' }]);
  });

  test('plugins declaring portMappings leave the endpoint chain and form the publication list', () => {
    const id = hexId();
    const template = deepFreeze(generatedConfList(id, { masquerade: true, icc: true, isolate: true }, 'br0', true));
    const base = { addresses: ['10.231.1.5/24'], gatewayV4: '10.231.1.1' };
    assert.deepEqual(endpointConfList(template, true, base).plugins.map((p) => p.type), ['bridge']);
    const publication = publicationConfList(template);
    assert.equal(publication?.name, `${generatedCniName(id)}-ports`);
    assert.equal(publication?.cniVersion, template.cniVersion);
    assert.deepEqual(publication?.plugins, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }]);
    const user = publicationConfList(deepFreeze(structuredClone(USER_TEMPLATE)));
    assert.deepEqual(user?.plugins.map((p) => p.type), ['portmap']);
    assert.equal(user?.name, 'usernet-ports');
    assert.equal(publicationConfList({ cniVersion: '1.0.0', name: 'plain', plugins: [{ type: 'bridge' }] }), undefined);
  });

  test('never mutates the template; plugins of the result are copies', () => {
    const template = structuredClone(USER_TEMPLATE);
    const before = structuredClone(template);
    const list = endpointConfList(template, false, { addresses: ['10.232.7.9/24'] });
    assert.deepEqual(template, before);
    (list.plugins[1]?.sysctl as Record<string, string>)['x'] = 'y';
    list.plugins[0]!.capabilities = { mac: false };
    assert.deepEqual(template, before);
  });
});

describe('names', () => {
  test('hostLinkNameFor: ≤ 15 chars, deterministic, distinct, and of the form the reconciler recognises', () => {
    const ids = [hexId(), hexId(), 'ABCDEF0123456789', 'my-endpoint', 'x', `${'f'.repeat(12)}g`];
    const names = ids.map(hostLinkNameFor);
    for (const [i, name] of names.entries()) {
      assert.ok(name.length <= 15, name);
      assert.match(name, /^dc[0-9a-f]{13}$/);
      assert.equal(hostLinkNameFor(ids[i]!), name, 'deterministic');
    }
    assert.equal(new Set(names).size, names.length);
    const id = hexId();
    assert.equal(hostLinkNameFor(id), `dc${id.slice(0, 13)}`);
  });

  test('bridge and CNI names of generated networks derive from the network ID', () => {
    const id = hexId();
    assert.equal(bridgeNameFor(id), `dcni-${id.slice(0, 10)}`);
    assert.ok(bridgeNameFor(id).length <= 15);
    assert.match(bridgeNameFor(id), /^dcni-[0-9a-f]{10}$/);
    assert.equal(generatedCniName(id), `dcni-${id.slice(0, 12)}`);
  });
});

describe('generatedConfList', () => {
  test('a bridge with static IPAM and the mac capability, then portmap; no per-container masquerade', () => {
    const id = hexId();
    const list = generatedConfList(id, { masquerade: true, icc: true, isolate: true }, 'dcni-br', true);
    assert.deepEqual(list, {
      cniVersion: GENERATED_CNI_VERSION,
      name: generatedCniName(id),
      plugins: [
        {
          type: 'bridge',
          bridge: 'dcni-br',
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          capabilities: { mac: true },
          ipam: { type: 'static' },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
  });

  test('mtu appears only when set; isGateway follows hasGateway', () => {
    const list = generatedConfList(hexId(), { masquerade: true, icc: true, isolate: true, mtu: 1400 }, 'br0', false);
    assert.equal(list.plugins[0]?.mtu, 1400);
    assert.equal(list.plugins[0]?.isGateway, false);
    assert.equal('mtu' in (generatedConfList(hexId(), { masquerade: true, icc: true, isolate: true }, 'br0', true).plugins[0] ?? {}), false);
  });
});

describe('routes and gateways from a CNI result', () => {
  const result: CniResult = {
    cniVersion: '1.0.0',
    routes: [
      { dst: '0.0.0.0/0', gw: '10.232.7.1' },
      { dst: '::/0', gw: 'fd7d:c11d:4e7:7::1' },
      { dst: '10.99.0.0/16', gw: '10.232.7.254' },
      { dst: '10.98.0.0/16' },
      { dst: 'fd7d:c11d:4e7:99::/64', gw: 'fd7d:c11d:4e7:7::fe' },
    ],
  };

  test('staticRoutesFromResult: default routes skipped, next-hop vs connected', () => {
    assert.deepEqual(staticRoutesFromResult(result), [
      { Destination: '10.99.0.0/16', RouteType: 0, NextHop: '10.232.7.254' },
      { Destination: '10.98.0.0/16', RouteType: 1 },
      { Destination: 'fd7d:c11d:4e7:99::/64', RouteType: 0, NextHop: 'fd7d:c11d:4e7:7::fe' },
    ]);
    assert.deepEqual(staticRoutesFromResult(undefined), []);
    assert.deepEqual(staticRoutesFromResult({ cniVersion: '1.0.0' }), []);
  });

  test('gatewayFromResult: the default route of each family', () => {
    assert.equal(gatewayFromResult(result, false), '10.232.7.1');
    assert.equal(gatewayFromResult(result, true), 'fd7d:c11d:4e7:7::1');
    assert.equal(gatewayFromResult({ cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/0' }] }, false), undefined);
    assert.equal(gatewayFromResult(undefined, false), undefined);
  });
});

describe('chainHasIngressPolicy', () => {
  test('a firewall plugin with same-bridge or isolated isolates its bridge; open, none or no firewall does not', () => {
    const chain = (firewall: Record<string, unknown> | undefined) => ({ plugins: [{ type: 'bridge' }, ...(firewall ? [{ type: 'firewall', ...firewall }] : [])] });
    assert.equal(chainHasIngressPolicy(chain({ ingressPolicy: 'same-bridge' })), true);
    assert.equal(chainHasIngressPolicy(chain({ ingressPolicy: 'isolated' })), true);
    assert.equal(chainHasIngressPolicy(chain({ ingressPolicy: 'open' })), false);
    assert.equal(chainHasIngressPolicy(chain({})), false);
    assert.equal(chainHasIngressPolicy(chain(undefined)), false);
  });
});

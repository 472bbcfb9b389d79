import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IP_PROTO, OPT } from '../../../src/docker/api.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import { bridgeNameFor, generatedCniName, hostLinkNameFor } from '../../../src/names.js';
import type { NetworkDriver } from '../../../src/network/network-driver.js';
import type { EndpointRecord } from '../../../src/network/records.js';
import {
  CONTAINER_MAC,
  createDriverHarness,
  endpointRequest,
  gate,
  hexId,
  networkRequest,
  settle,
  staticAddressesOf,
  type DriverHarness,
} from './driver-harness.js';
import { rejectsWith } from '../../helpers/plugin-errors.js';


const USER_CONFLIST = {
  cniVersion: '1.0.0',
  name: 'usernet',
  plugins: [
    {
      type: 'bridge',
      bridge: 'cni-user0',
      isGateway: true,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.232.7.0/24' }]],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '10.99.0.0/16', gw: '10.232.7.254' }],
        dns: { nameservers: ['10.232.7.53'] },
      },
    },
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'firewall' },
  ],
};

let h: DriverHarness;
let driver: NetworkDriver;
let net: string;

beforeEach(async () => {
  h = await createDriverHarness();
  driver = await h.start();
  net = hexId();
});

afterEach(async () => {
  await h.cleanup();
});

async function storedEndpoints(): Promise<string[]> {
  return (await h.endpointsStore.list()).map((e) => e.id);
}

describe('createNetwork', () => {
  test('generated network: record persisted, bridge chain with static IPAM, firewall rules for the bridge', async () => {
    await driver.createNetwork(networkRequest(net));
    const record = await h.networksStore.get(net);
    assert.ok(record);
    assert.equal(record.mode, 'generated');
    assert.equal(record.bridge, bridgeNameFor(net));
    assert.equal(record.cniName, generatedCniName(net));
    assert.deepEqual(record.ipv4, [{ pool: '10.231.1.0/24', gateway: '10.231.1.1' }]);
    assert.deepEqual(record.ipv6, []);
    assert.equal(record.conflist.name, generatedCniName(net));
    assert.deepEqual(
      record.conflist.plugins.map((p) => p.type),
      ['bridge', 'portmap'],
    );
    const bridge = record.conflist.plugins[0];
    assert.equal(bridge?.bridge, bridgeNameFor(net));
    assert.equal(bridge?.isGateway, true);
    assert.equal(bridge?.ipMasq, false);
    assert.deepEqual(bridge?.ipam, { type: 'static' });
    assert.deepEqual(h.firewall.ensured, [
      {
        networkId: net,
        bridge: bridgeNameFor(net),
        subnetsV4: ['10.231.1.0/24'],
        subnetsV6: [],
        internal: false,
        icc: true,
        masquerade: true,
        isolate: true,
      },
    ]);
    assert.deepEqual(
      driver.listNetworks().map((n) => n.id),
      [net],
    );
  });

  test('a repeated CreateNetwork for a known network does nothing', async () => {
    await driver.createNetwork(networkRequest(net));
    await driver.createNetwork(networkRequest(net));
    assert.equal(h.firewall.ensured.length, 1);
  });

  test('-o options shape the bridge chain and the firewall spec', async () => {
    await driver.createNetwork(
      networkRequest(net, {
        generic: {
          [OPT.bridgeName]: 'mybr0',
          'cni.mtu': '1400',
          [OPT.enableIcc]: 'false',
          'cni.masquerade': 'false',
          'cni.isolation': 'false',
        },
      }),
    );
    const record = await h.networksStore.get(net);
    assert.equal(record?.bridge, 'mybr0');
    assert.equal(record?.conflist.plugins[0]?.mtu, 1400);
    assert.equal(record?.conflist.plugins[0]?.bridge, 'mybr0');
    assert.deepEqual(record?.options, {
      [OPT.bridgeName]: 'mybr0',
      'cni.mtu': '1400',
      [OPT.enableIcc]: 'false',
      'cni.masquerade': 'false',
      'cni.isolation': 'false',
    });
    const spec = h.firewall.ensured[0];
    assert.equal(spec?.bridge, 'mybr0');
    assert.equal(spec?.icc, false);
    assert.equal(spec?.masquerade, false);
    assert.equal(spec?.isolate, false);
  });

  test('internal network: no gateway, no masquerade, bridge is not a gateway', async () => {
    await driver.createNetwork(networkRequest(net, { internal: true }));
    const record = await h.networksStore.get(net);
    assert.equal(record?.internal, true);
    assert.deepEqual(record?.ipv4, [{ pool: '10.231.1.0/24' }]);
    assert.equal(record?.masquerade, false);
    assert.equal(record?.conflist.plugins[0]?.isGateway, false);
    assert.equal(h.firewall.ensured[0]?.internal, true);
    assert.equal(h.firewall.ensured[0]?.masquerade, false);
  });

  test('two networks asking for the same bridge name: the second is a CONFLICT and leaves nothing behind', async () => {
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.bridge': 'shared0' } }));
    const second = hexId();
    await rejectsWith(driver.createNetwork(networkRequest(second, { generic: { [OPT.bridgeName]: 'shared0' } })), 'CONFLICT', /shared0/);
    assert.equal(await h.networksStore.get(second), undefined);
    assert.ok(h.firewall.removed.includes(second));
    assert.ok(h.firewall.rules.has(net.slice(0, 12)), 'the first network keeps its rules');
  });

  test('cni.network: the user conflist is stored (without raw bytes) and its bridge gets forwarding rules but no masquerade', async () => {
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'usernet' }, v4: [{ pool: '10.232.7.0/24', gateway: '10.232.7.1/24' }] }));
    const record = await h.networksStore.get(net);
    assert.ok(record);
    assert.equal(record.mode, 'conflist');
    assert.equal(record.cniName, 'usernet');
    assert.equal(record.bridge, 'cni-user0');
    assert.equal('bytes' in record.conflist, false);
    assert.deepEqual(
      record.conflist.plugins.map((p) => p.type),
      ['bridge', 'portmap', 'firewall'],
    );
    assert.equal(h.firewall.ensured[0]?.bridge, 'cni-user0');
    assert.equal(h.firewall.ensured[0]?.masquerade, false, 'a user conflist masquerades itself if it wants to');
  });

  test('GwAllocChecker: declared; Docker reserves no gateway for internal networks and macvlan/ipvlan chains, and keeps it for bridges and ptp', async () => {
    assert.equal(driver.getCapabilities().GwAllocChecker, true);
    const check = (generic: Record<string, string>, internal = false) =>
      driver.gwAllocCheck({ Options: networkRequest(net, { generic, internal }).Options });
    assert.deepEqual(await check({}), { SkipIPv4: false, SkipIPv6: false });
    assert.deepEqual(await check({}, true), { SkipIPv4: true, SkipIPv6: true });
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    assert.deepEqual(await check({ 'cni.network': 'usernet' }), { SkipIPv4: false, SkipIPv6: false });
    await h.writeConfList('20-mv.conflist', { cniVersion: '1.0.0', name: 'mvnet', plugins: [{ type: 'macvlan', master: 'eth0', ipam: { type: 'host-local' } }] });
    assert.deepEqual(await check({ 'cni.network': 'mvnet' }), { SkipIPv4: true, SkipIPv6: true });
    await h.writeConfList('21-p2p.conflist', { cniVersion: '1.0.0', name: 'p2pnet', plugins: [{ type: 'ptp', ipam: { type: 'host-local' } }] });
    assert.deepEqual(await check({ 'cni.network': 'p2pnet' }), { SkipIPv4: false, SkipIPv6: false }, 'ptp puts the gateway on its host end');
    // Options CreateNetwork refuses are left to it (its message names them).
    assert.deepEqual(await check({ 'cni.network': 'nosuchnet' }), { SkipIPv4: false, SkipIPv6: false });
    assert.equal(await h.networksStore.get(net), undefined, 'the check records nothing');
  });

  test('on an engine docker-cni cannot isolate on (Docker\'s nftables backend) CreateNetwork fails saying so, and records nothing', async () => {
    const guarded = await h.start({ deps: { engineProblem: () => 'dockerd runs its nftables firewall backend' } });
    await rejectsWith(guarded.createNetwork(networkRequest(net)), 'INVALID_ARGUMENT', /nftables firewall backend/);
    assert.equal(await h.networksStore.get(net), undefined);
    assert.equal(h.firewall.rules.size, 0);
  });

  test('an IPv6-only network (Docker ≥ 28, enable_ipv4=false, IPv4Data empty): a bridge with the IPv6 pool and gateway only', async () => {
    const request = networkRequest(net, { v4: [], v6: [{ pool: 'fd7d:c11d:4e7:90::/64', gateway: 'fd7d:c11d:4e7:90::1/64' }] });
    request.Options = { ...request.Options, [OPT.enableIPv4]: 'false' };
    await driver.createNetwork(request);
    const record = await h.networksStore.get(net);
    assert.deepEqual(record?.ipv4, []);
    assert.deepEqual(record?.ipv6, [{ pool: 'fd7d:c11d:4e7:90::/64', gateway: 'fd7d:c11d:4e7:90::1' }]);
    assert.equal(record?.conflist.plugins[0]?.isGateway, true);
    assert.deepEqual(h.firewall.ensured[0]?.subnetsV4, []);
    assert.deepEqual(h.firewall.ensured[0]?.subnetsV6, ['fd7d:c11d:4e7:90::/64']);
  });

  test('cni.network with a subnet the conflist does not declare: refused naming both, no record', async () => {
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    await rejectsWith(
      driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'usernet' }, v4: [{ pool: '10.231.1.0/24', gateway: '10.231.1.1/24' }] })),
      'INVALID_ARGUMENT',
      /subnet 10\.231\.1\.0\/24 contradicts conflist "usernet", whose IPv4 range is 10\.232\.7\.0\/24/,
    );
    assert.equal(await h.networksStore.get(net), undefined);
  });

  test('cni.network naming a missing conflist: NOT_FOUND naming it, no record, no firewall rules', async () => {
    const err = await rejectsWith(driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'nosuchnet' } })), 'NOT_FOUND');
    assert.match(err.message, /^CreateNetwork: /);
    assert.match(err.message, /"nosuchnet"/);
    assert.equal(await h.networksStore.get(net), undefined);
    assert.deepEqual(driver.listNetworks(), []);
    assert.equal(h.firewall.rules.size, 0);
  });

  test('a conflist using a plugin binary that is not installed fails early, naming the plugin', async () => {
    await h.writeConfList('20-odd.conflist', { cniVersion: '1.0.0', name: 'oddnet', plugins: [{ type: 'macvlan', master: 'eth0' }] });
    await rejectsWith(driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'oddnet' } })), 'NOT_FOUND', /"macvlan"/);
    assert.equal(await h.networksStore.get(net), undefined);
  });

  test('a conflist with an IPAM section needs the static plugin (IPAM is replaced by static)', async () => {
    await rm(join(h.binDir, 'static'));
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    await rejectsWith(driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'usernet' } })), 'NOT_FOUND', /"static"/);
  });

  test('a generated network needs bridge, static and portmap binaries', async () => {
    await rm(join(h.binDir, 'portmap'));
    await rejectsWith(driver.createNetwork(networkRequest(net)), 'NOT_FOUND', /"portmap"/);
    assert.equal(await h.networksStore.get(net), undefined);
    assert.equal(h.firewall.rules.size, 0);
  });

  test('a bad -o option is INVALID_ARGUMENT: no record written and the network\'s firewall rules removed', async () => {
    const err = await rejectsWith(driver.createNetwork(networkRequest(net, { generic: { 'cni.mtu': 'huge' } })), 'INVALID_ARGUMENT', /cni\.mtu/);
    assert.match(err.message, /^CreateNetwork: /);
    assert.equal(await h.networksStore.get(net), undefined);
    assert.deepEqual(await readdir(h.networksStore.dir), []);
    assert.deepEqual(h.firewall.ensured, []);
    assert.deepEqual(h.firewall.removed, [net]);
  });

  test('an unknown -o option is rejected and named', async () => {
    await rejectsWith(driver.createNetwork(networkRequest(net, { generic: { 'cni.colour': 'blue' } })), 'INVALID_ARGUMENT', /cni\.colour/);
    assert.equal(await h.networksStore.get(net), undefined);
  });

  test('a malformed pool is INVALID_ARGUMENT', async () => {
    await rejectsWith(driver.createNetwork(networkRequest(net, { v4: [{ pool: '10.231.1.0' }] })), 'INVALID_ARGUMENT', /CIDR/);
  });
});

describe('createEndpoint', () => {
  beforeEach(async () => {
    await driver.createNetwork(networkRequest(net));
  });

  test('runs the chain once in a staging netns with static IPAM carrying Docker\'s address and gateway', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    const adds = h.cni.of('ADD');
    assert.equal(adds.length, 1);
    const [add] = adds;
    assert.ok(add);
    assert.deepEqual(
      add.list.plugins.map((p) => p.type),
      ['bridge'],
      'portmap is dropped when nothing is published',
    );
    assert.deepEqual(add.list.plugins[0]?.ipam, { type: 'static', addresses: [{ address: '10.231.1.5/24', gateway: '10.231.1.1' }] });
    assert.equal(add.list.name, generatedCniName(net));
    assert.equal(add.rt.containerId, ep);
    assert.equal(add.rt.ifName, 'eth0');
    assert.equal(add.rt.netns, `/run/netns/${h.staging.acquired[0]}`);
    assert.deepEqual(add.rt.args, [
      ['IgnoreUnknown', '1'],
      ['DOCKER_NETWORK_ID', net],
      ['DOCKER_ENDPOINT_ID', ep],
    ]);
    assert.deepEqual(add.rt.capabilityArgs, {});
    assert.deepEqual(h.links.calls, [`moveToHost ${h.staging.acquired[0]} eth0 ${hostLinkNameFor(ep)}`]);
    assert.deepEqual(h.staging.released, [{ name: h.staging.acquired[0], dirty: false }]);
    const record = await h.endpointsStore.get(ep);
    assert.equal(record?.status, 'ready');
    assert.equal(record?.stagingNetns, undefined);
  });

  test('CreateEndpoint publishes nothing, even with ports; Docker\'s MAC goes in as the mac capability', async () => {
    const ep = hexId();
    const reply = await driver.createEndpoint(
      endpointRequest(net, ep, {
        mac: '02:42:0a:e7:01:05',
        ports: [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 8080 }],
      }),
    );
    assert.deepEqual(reply, {}, 'Docker supplied the MAC, so the reply must not touch it');
    const add = h.cni.of('ADD')[0];
    assert.deepEqual(
      add?.list.plugins.map((p) => p.type),
      ['bridge'],
    );
    assert.deepEqual(add?.rt.capabilityArgs, { mac: '02:42:0a:e7:01:05' });
    const info = await driver.endpointOperInfo({ NetworkID: net, EndpointID: ep });
    assert.deepEqual(info.Value['cni.ports'], []);
    assert.equal(info.Value['cni.link'], hostLinkNameFor(ep));
    assert.equal(info.Value['cni.network'], generatedCniName(net));
  });

  test('the reply fills MacAddress from the CNI result only when Docker left it empty', async () => {
    const reply = await driver.createEndpoint(endpointRequest(net, hexId()));
    assert.deepEqual(reply, { Interface: { MacAddress: CONTAINER_MAC } });
  });

  test('Join returns the host link, the eth prefix, the gateway and non-default routes', async () => {
    h.cni.routes = [
      { dst: '0.0.0.0/0', gw: '10.231.1.1' },
      { dst: '10.99.0.0/16', gw: '10.231.1.254' },
      { dst: '10.98.0.0/16' },
    ];
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    const reply = await driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '/var/run/docker/netns/abc', Options: {} });
    assert.deepEqual(reply, {
      InterfaceName: { SrcName: hostLinkNameFor(ep), DstPrefix: 'eth' },
      Gateway: '10.231.1.1',
      StaticRoutes: [
        { Destination: '10.99.0.0/16', RouteType: 0, NextHop: '10.231.1.254' },
        { Destination: '10.98.0.0/16', RouteType: 1 },
      ],
    });
    await driver.leave({ NetworkID: net, EndpointID: ep });
  });

  test('Join of an unknown endpoint, or on the wrong network, is NOT_FOUND', async () => {
    const ep = hexId();
    await rejectsWith(driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '', Options: {} }), 'NOT_FOUND', /^Join: /);
    await driver.createEndpoint(endpointRequest(net, ep));
    await rejectsWith(driver.join({ NetworkID: hexId(), EndpointID: ep, SandboxKey: '', Options: {} }), 'NOT_FOUND');
  });

  test('dual stack: each address gets its family\'s gateway; Join returns both gateways', async () => {
    const v6net = hexId();
    await driver.createNetwork(
      networkRequest(v6net, {
        v4: [{ pool: '10.231.2.0/24', gateway: '10.231.2.1/24' }],
        v6: [{ pool: 'fd7d:c11d:4e7:2::/64', gateway: 'fd7d:c11d:4e7:2::1/64' }],
      }),
    );
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(v6net, ep, { address: '10.231.2.9/24', addressV6: 'fd7d:c11d:4e7:2::9/64' }));
    assert.deepEqual(staticAddressesOf(h.cni.of('ADD')[0]!.list), [
      { address: '10.231.2.9/24', gateway: '10.231.2.1' },
      { address: 'fd7d:c11d:4e7:2::9/64', gateway: 'fd7d:c11d:4e7:2::1' },
    ]);
    const reply = await driver.join({ NetworkID: v6net, EndpointID: ep, SandboxKey: '', Options: {} });
    assert.equal(reply.Gateway, '10.231.2.1');
    assert.equal(reply.GatewayIPv6, 'fd7d:c11d:4e7:2::1');
  });

  test('a cni.network endpoint: IPAM becomes static with Docker\'s address (routes and dns kept), gateway comes from the result', async () => {
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    const userNet = hexId();
    await driver.createNetwork(
      networkRequest(userNet, { generic: { 'cni.network': 'usernet' }, v4: [{ pool: '10.232.7.0/24', gateway: '10.232.7.1/24' }] }),
    );
    h.cni.routes = [{ dst: '0.0.0.0/0', gw: '10.232.7.1' }];
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(userNet, ep, { address: '10.232.7.20/24' }));
    const add = h.cni.of('ADD')[0];
    assert.deepEqual(
      add?.list.plugins.map((p) => p.type),
      ['bridge', 'firewall'],
      'portmap runs apart, when Docker names the endpoint the gateway',
    );
    assert.equal(add?.list.name, 'usernet');
    assert.deepEqual(add?.list.plugins[0]?.ipam, {
      type: 'static',
      addresses: [{ address: '10.232.7.20/24', gateway: '10.232.7.1' }],
      routes: USER_CONFLIST.plugins[0]?.ipam?.routes,
      dns: USER_CONFLIST.plugins[0]?.ipam?.dns,
    });
    const reply = await driver.join({ NetworkID: userNet, EndpointID: ep, SandboxKey: '', Options: {} });
    assert.equal(reply.Gateway, '10.232.7.1');
  });

  test('Join for a gateway-less chain (macvlan) with no gateway: DisableGatewayService, so Docker adds no docker_gwbridge', async () => {
    const macvlan = join(h.binDir, 'macvlan');
    await writeFile(macvlan, '#!/bin/false\n');
    await chmod(macvlan, 0o755);
    await h.writeConfList('20-mv.conflist', { cniVersion: '1.0.0', name: 'mvnet', plugins: [{ type: 'macvlan', master: 'eth0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.232.9.0/24' }]] } }] });
    const mvNet = hexId();
    await driver.createNetwork(networkRequest(mvNet, { generic: { 'cni.network': 'mvnet' }, v4: [{ pool: '10.232.9.0/24' }] }));
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(mvNet, ep, { address: '10.232.9.20/24' }));
    const reply = await driver.join({ NetworkID: mvNet, EndpointID: ep, SandboxKey: '', Options: {} });
    assert.equal(reply.Gateway, undefined);
    assert.equal(reply.DisableGatewayService, true);
  });

  test('no address from Docker is INVALID_ARGUMENT before any CNI or netns work', async () => {
    const ep = hexId();
    await rejectsWith(driver.createEndpoint(endpointRequest(net, ep, { address: '' })), 'INVALID_ARGUMENT', /IPAM/);
    assert.deepEqual(h.cni.calls, []);
    assert.deepEqual(h.staging.acquired, []);
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });

  test('an unknown network is NOT_FOUND; a malformed MAC is INVALID_ARGUMENT', async () => {
    await rejectsWith(driver.createEndpoint(endpointRequest(hexId(), hexId())), 'NOT_FOUND', /^CreateEndpoint [0-9a-f]{12}: /);
    await rejectsWith(driver.createEndpoint(endpointRequest(net, hexId(), { mac: '02:42:zz:00:00:01' })), 'INVALID_ARGUMENT', /MAC/);
    assert.deepEqual(h.cni.calls, []);
  });

  test('a repeated CreateEndpoint for a ready endpoint runs nothing and answers the same', async () => {
    const ep = hexId();
    const first = await driver.createEndpoint(endpointRequest(net, ep));
    const second = await driver.createEndpoint(endpointRequest(net, ep));
    assert.deepEqual(second, first);
    assert.equal(h.cni.of('ADD').length, 1);
  });

  test('rollback when moving the link fails: DEL replays the ADD, record gone, staging lease released dirty', async () => {
    h.links.moveToHostError = new PluginError('HOST_FAILED', 'ip link set: RTNETLINK answers: File exists');
    const ep = hexId();
    await rejectsWith(driver.createEndpoint(endpointRequest(net, ep)), 'HOST_FAILED', /^CreateEndpoint [0-9a-f]{12}: ip link set/);
    const [add, del, ...more] = h.cni.calls;
    assert.equal(add?.verb, 'ADD');
    assert.equal(del?.verb, 'DEL');
    assert.deepEqual(more, []);
    assert.deepEqual(del?.list, add?.list);
    assert.deepEqual(del?.rt, add?.rt);
    assert.deepEqual(await storedEndpoints(), []);
    assert.deepEqual(driver.listEndpoints(), []);
    assert.deepEqual(h.staging.released, [{ name: h.staging.acquired[0], dirty: true }]);
    await rejectsWith(driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '', Options: {} }), 'NOT_FOUND');
  });

  test('a failing CNI ADD surfaces the plugin error with context, and leaves no record', async () => {
    h.cni.onAdd = () => {
      throw new CniPluginError('bridge', 'ADD', 11, 'failed to set bridge addr', 'could not add IP address');
    };
    const ep = hexId();
    const err = await rejectsWith(driver.createEndpoint(endpointRequest(net, ep)), 'CNI_FAILED');
    assert.match(err.message, /^CreateEndpoint [0-9a-f]{12}: bridge failed \(ADD\): failed to set bridge addr/);
    assert.deepEqual(await storedEndpoints(), []);
    assert.deepEqual(h.staging.released, [{ name: h.staging.acquired[0], dirty: true }]);
  });

  test('a CreateEndpoint for an endpoint a crash left half-made tears the leftover down first', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    const record = await h.endpointsStore.get(ep);
    assert.ok(record);
    await h.endpointsStore.put(ep, { ...record, status: 'creating', stagingNetns: 'stage-old' });
    const fresh = await h.start({ recover: false });
    h.cni.calls.length = 0;
    await fresh.createEndpoint(endpointRequest(net, ep));
    assert.deepEqual(
      h.cni.calls.map((c) => c.verb),
      ['DEL', 'ADD'],
    );
    assert.equal((await h.endpointsStore.get(ep))?.status, 'ready');
  });

  test('EndpointOperInfo of an unknown endpoint is empty', async () => {
    assert.deepEqual(await driver.endpointOperInfo({ NetworkID: net, EndpointID: hexId() }), { Value: {} });
  });

  test('concurrent CreateEndpoints on different endpoints lease different staging namespaces', async () => {
    const otherNet = hexId();
    await driver.createNetwork(networkRequest(otherNet, { v4: [{ pool: '10.231.3.0/24', gateway: '10.231.3.1/24' }] }));
    // A network's first ADD (it makes the bridge) runs alone; after it, chains of one network run side by side.
    await driver.createEndpoint(endpointRequest(net, hexId(), { address: '10.231.1.9/24' }));
    await driver.createEndpoint(endpointRequest(otherNet, hexId(), { address: '10.231.3.9/24' }));
    const addsBefore = h.cni.of('ADD').length;
    const hold = gate();
    let inFlight = 0;
    let maxInFlight = 0;
    h.cni.onAdd = async (list, rt) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await hold.promise;
      inFlight--;
      return { cniVersion: '1.0.0', interfaces: [{ name: rt.ifName, mac: CONTAINER_MAC, sandbox: rt.netns }], ips: [] };
    };
    const a = hexId();
    const b = hexId();
    const c = hexId();
    const done = Promise.all([
      driver.createEndpoint(endpointRequest(net, a, { address: '10.231.1.10/24' })),
      driver.createEndpoint(endpointRequest(net, b, { address: '10.231.1.11/24' })),
      driver.createEndpoint(endpointRequest(otherNet, c, { address: '10.231.3.10/24' })),
    ]);
    for (let i = 0; i < 100 && h.cni.of('ADD').length < addsBefore + 3; i++) await settle(5);
    hold.open();
    await done;
    assert.equal(maxInFlight, 3, 'the three chains ran at the same time');
    const netnsPaths = h.cni.of('ADD').slice(addsBefore).map((call) => call.rt.netns);
    assert.equal(new Set(netnsPaths).size, 3, `each operation had its own staging netns: ${netnsPaths.join(', ')}`);
    assert.equal(h.staging.leased.size, 0);
    assert.deepEqual(
      h.staging.released.slice(-3).map((r) => r.dirty),
      [false, false, false],
    );
  });

});

describe('deleteEndpoint', () => {
  beforeEach(async () => {
    await driver.createNetwork(networkRequest(net));
  });

  test('DEL replays the ADD\'s conflist, args and capabilities; link and record removed; a second delete is a no-op', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep, { ports: [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 8080 }] }));
    assert.ok(h.links.host.has(hostLinkNameFor(ep)));
    await driver.leave({ NetworkID: net, EndpointID: ep });
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    const add = h.cni.of('ADD')[0];
    const dels = h.cni.of('DEL');
    assert.equal(dels.length, 1);
    assert.deepEqual(dels[0]?.list, add?.list);
    assert.equal(dels[0]?.rt.containerId, ep);
    assert.equal(dels[0]?.rt.ifName, add?.rt.ifName);
    assert.deepEqual(dels[0]?.rt.args, add?.rt.args);
    assert.deepEqual(dels[0]?.rt.capabilityArgs, add?.rt.capabilityArgs);
    assert.match(dels[0]?.rt.netns ?? '', /^\/run\/netns\/stage-\d+$/);
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), false);
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.deepEqual(driver.listEndpoints(), []);
    assert.equal(h.staging.leased.size, 0);
    assert.ok(h.staging.released.every((r) => !r.dirty));

    const callsBefore = h.cni.calls.length;
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.equal(h.cni.calls.length, callsBefore);
  });

  test('deleting an endpoint never seen succeeds without doing anything', async () => {
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: hexId() });
    assert.deepEqual(h.cni.calls, []);
    assert.deepEqual(h.staging.acquired, []);
  });

  test('a chain that masquerades per container gets its link back (ADD-time name and address) before DEL', async () => {
    await h.writeConfList('30-masq.conflist', {
      cniVersion: '1.0.0',
      name: 'masqnet',
      plugins: [{ type: 'bridge', bridge: 'cni-masq0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.232.9.0/24' } }],
    });
    const masqNet = hexId();
    await driver.createNetwork(networkRequest(masqNet, { generic: { 'cni.network': 'masqnet' }, v4: [{ pool: '10.232.9.0/24', gateway: '10.232.9.1/24' }] }));
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(masqNet, ep, { address: '10.232.9.4/24' }));
    h.links.calls.length = 0;
    let linkCallsAtDel: string[] = [];
    h.cni.onDel = () => {
      linkCallsAtDel = [...h.links.calls];
    };
    await driver.deleteEndpoint({ NetworkID: masqNet, EndpointID: ep });
    const lease = h.staging.acquired.at(-1);
    assert.deepEqual(linkCallsAtDel, [`moveToNetns ${hostLinkNameFor(ep)} ${lease} eth0`, `addAddresses ${lease} eth0 10.232.9.4/24`]);
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });

  test('a failing DEL keeps the record as deleting so a retry replays it', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    h.cni.onDel = () => {
      throw new CniPluginError('bridge', 'DEL', 999, 'boom');
    };
    await rejectsWith(driver.deleteEndpoint({ NetworkID: net, EndpointID: ep }), 'CNI_FAILED', /^DeleteEndpoint [0-9a-f]{12}: bridge failed \(DEL\)/);
    assert.equal((await h.endpointsStore.get(ep))?.status, 'deleting');
    assert.equal(h.staging.released.at(-1)?.dirty, true);
    h.cni.onDel = undefined;
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.equal(await h.endpointsStore.get(ep), undefined);
    const dels = h.cni.of('DEL');
    assert.equal(dels.length, 2);
    assert.deepEqual(dels[1]?.list, dels[0]?.list);
    assert.deepEqual(dels[1]?.rt.capabilityArgs, dels[0]?.rt.capabilityArgs);
  });

  test('removeStaleNetwork tears down the network\'s endpoints, then the network', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    await driver.removeStaleNetwork(net);
    assert.equal(h.cni.of('DEL').length, 1);
    assert.deepEqual(driver.listEndpoints(), []);
    assert.deepEqual(driver.listNetworks(), []);
    assert.equal(await h.networksStore.get(net), undefined);
    assert.ok(h.firewall.removed.includes(net));
  });
});

describe('deleteNetwork', () => {
  test('removes the record, the firewall rules and the generated bridge; idempotent', async () => {
    await driver.createNetwork(networkRequest(net));
    h.links.host.add(bridgeNameFor(net));
    await driver.deleteNetwork({ NetworkID: net });
    assert.equal(await h.networksStore.get(net), undefined);
    assert.deepEqual(h.firewall.removed, [net]);
    assert.equal(h.links.host.has(bridgeNameFor(net)), false);
    await driver.deleteNetwork({ NetworkID: net });
    assert.deepEqual(driver.listNetworks(), []);
  });

  test('never deletes the bridge of a user conflist (other networks may share it)', async () => {
    await h.writeConfList('10-usernet.conflist', USER_CONFLIST);
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'usernet' }, v4: [{ pool: '10.232.7.0/24', gateway: '10.232.7.1/24' }] }));
    h.links.host.add('cni-user0');
    await driver.deleteNetwork({ NetworkID: net });
    assert.ok(h.links.host.has('cni-user0'));
    assert.ok(!h.links.calls.includes('deleteIfExists cni-user0'));
  });
});

describe('restart and recovery', () => {
  test('a new driver on the same state dir knows networks and endpoints, joins and deletes them', async () => {
    h.cni.routes = [{ dst: '10.99.0.0/16', gw: '10.231.1.254' }];
    await driver.createNetwork(networkRequest(net));
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep, { ports: [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 8080 }] }));
    const joinBefore = await driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '', Options: {} });

    const restarted = await h.start();
    assert.deepEqual(
      restarted.listNetworks().map((n) => n.id),
      [net],
    );
    assert.deepEqual(
      restarted.listEndpoints().map((e) => e.id),
      [ep],
    );
    assert.deepEqual(await restarted.join({ NetworkID: net, EndpointID: ep, SandboxKey: '', Options: {} }), joinBefore);
    h.firewall.ensured.length = 0;
    await restarted.ensureAllNetworkRules();
    assert.deepEqual(
      h.firewall.ensured.map((s) => s.networkId),
      [net],
    );

    await restarted.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    const add = h.cni.of('ADD')[0];
    const del = h.cni.of('DEL')[0];
    assert.deepEqual(del?.list, add?.list);
    assert.deepEqual(del?.rt.capabilityArgs, add?.rt.capabilityArgs);
    assert.deepEqual(del?.rt.args, add?.rt.args);
    await restarted.deleteNetwork({ NetworkID: net });
    assert.deepEqual(await h.networksStore.list(), []);
    assert.deepEqual(await h.endpointsStore.list(), []);
  });

  /** Creates a ready endpoint, then rewrites its record as a crash at `status` would have left it. */
  async function interruptedEndpoint(status: EndpointRecord['status'], stagingNetns?: string): Promise<string> {
    await driver.createNetwork(networkRequest(net));
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    const record = await h.endpointsStore.get(ep);
    assert.ok(record);
    record.status = status;
    if (stagingNetns) record.stagingNetns = stagingNetns;
    await h.endpointsStore.put(ep, record);
    h.cni.calls.length = 0;
    h.staging.released.length = 0;
    return ep;
  }

  test('init() undoes an endpoint left in creating, in the staging netns it was using', async () => {
    const ep = await interruptedEndpoint('creating', 'stage-crashed');
    h.staging.existing = ['stage-crashed'];
    const restarted = await h.start();
    const dels = h.cni.of('DEL');
    assert.equal(dels.length, 1);
    assert.equal(dels[0]?.rt.netns, '/run/netns/stage-crashed');
    assert.equal(dels[0]?.rt.containerId, ep);
    assert.deepEqual(h.staging.released, [{ name: 'stage-crashed', dirty: true }]);
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.deepEqual(restarted.listEndpoints(), []);
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), false);
  });

  test('init() undoes a creating endpoint whose staging netns is gone, using a fresh lease', async () => {
    const ep = await interruptedEndpoint('creating', 'stage-vanished');
    await h.start();
    const dels = h.cni.of('DEL');
    assert.equal(dels.length, 1);
    assert.notEqual(dels[0]?.rt.netns, '/run/netns/stage-vanished');
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });

  test('init() finishes an endpoint left in deleting', async () => {
    const ep = await interruptedEndpoint('deleting');
    const restarted = await h.start();
    assert.equal(h.cni.of('DEL').length, 1);
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.deepEqual(restarted.listEndpoints(), []);
  });

  test('init({recover:false}) loads interrupted records without touching them', async () => {
    const ep = await interruptedEndpoint('deleting');
    const restarted = await h.start({ recover: false });
    assert.deepEqual(h.cni.calls, []);
    assert.equal(restarted.listEndpoints()[0]?.id, ep);
    assert.equal((await h.endpointsStore.get(ep))?.status, 'deleting');
  });

  test('a recovery that fails keeps the record for reconciliation and does not fail init()', async () => {
    const ep = await interruptedEndpoint('deleting');
    h.cni.onDel = () => {
      throw new CniPluginError('bridge', 'DEL', 999, 'still broken');
    };
    const restarted = await h.start();
    assert.equal(restarted.listEndpoints()[0]?.id, ep);
    assert.ok(await h.endpointsStore.get(ep));
  });

  test('a corrupt record is skipped, not fatal', async () => {
    await driver.createNetwork(networkRequest(net));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(h.networksStore.dir, `${hexId()}.json`), '{"id": "trunc');
    const restarted = await h.start();
    assert.deepEqual(
      restarted.listNetworks().map((n) => n.id),
      [net],
    );
  });
});

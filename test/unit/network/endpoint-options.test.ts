import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../../../src/errors.js';
import { pointToPointRoutes, splitInHalves } from '../../../src/network/conflist.js';
import type { NetworkDriver } from '../../../src/network/network-driver.js';
import { mergeBandwidth, parseBandwidth, parseEndpointOptions, parseNetworkOptions } from '../../../src/network/options.js';
import { RESERVED_CNI_ARGS } from '../../../src/names.js';
import { createDriverHarness, endpointRequest, hexId, networkRequest, type DriverHarness } from './driver-harness.js';

const isInvalid =
  (pattern: RegExp) =>
  (err: unknown): boolean =>
    err instanceof PluginError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message);

describe('bandwidth options', () => {
  test('cni.bandwidth.* become the CNI bandwidth capability (rates and bursts as numbers)', () => {
    assert.deepEqual(
      parseNetworkOptions({
        'cni.bandwidth.ingress_rate': '1000000',
        'cni.bandwidth.ingress_burst': '20000',
        'cni.bandwidth.egress_rate': '2000000',
        'cni.bandwidth.egress_burst': '40000',
      }).bandwidth,
      { ingressRate: 1_000_000, ingressBurst: 20_000, egressRate: 2_000_000, egressBurst: 40_000 },
    );
    assert.equal(parseNetworkOptions({}).bandwidth, undefined);
    assert.equal(parseBandwidth({}), undefined);
  });

  test('a direction needs its rate and its burst; values must be positive integers; unknown fields are rejected', () => {
    assert.throws(() => parseBandwidth({ 'cni.bandwidth.ingress_rate': '1000' }), isInvalid(/ingress_rate and cni\.bandwidth\.ingress_burst must be given together/));
    for (const bad of ['0', '-1', '1.5', 'fast', '', String(2 ** 51)]) {
      assert.throws(
        () => parseBandwidth({ 'cni.bandwidth.egress_rate': bad, 'cni.bandwidth.egress_burst': '1' }),
        isInvalid(/egress_rate.*positive integer/),
        bad,
      );
    }
    assert.throws(() => parseNetworkOptions({ 'cni.bandwidth.sideways_rate': '1' }), isInvalid(/unsupported option "cni\.bandwidth\.sideways_rate"/));
    assert.throws(() => parseNetworkOptions({ 'cni.bandwidth.': '1' }), isInvalid(/unsupported option/));
  });

  test('mergeBandwidth: endpoint fields override the network\'s; the merged result must still pair up', () => {
    assert.equal(mergeBandwidth(undefined, undefined), undefined);
    const network = { ingressRate: 1000, ingressBurst: 100 };
    assert.deepEqual(mergeBandwidth(network, { ingressRate: 5000 }), { ingressRate: 5000, ingressBurst: 100 });
    assert.deepEqual(mergeBandwidth(undefined, { egressRate: 1, egressBurst: 2 }), { egressRate: 1, egressBurst: 2 });
    assert.throws(() => mergeBandwidth(network, { egressRate: 1 }), isInvalid(/egress_rate and cni\.bandwidth\.egress_burst/));
    assert.deepEqual(network, { ingressRate: 1000, ingressBurst: 100 }, 'the network\'s limits are not modified');
  });
});

describe('parseEndpointOptions', () => {
  test('only cni.* keys are read; Docker\'s own keys pass untouched', () => {
    assert.deepEqual(
      parseEndpointOptions({
        'com.docker.network.portmap': [],
        'com.docker.network.endpoint.exposedports': [],
        'com.docker.network.endpoint.macaddress': 'AkIKAAAC',
      }),
      { cniArgs: [] },
    );
    assert.deepEqual(parseEndpointOptions(undefined), { cniArgs: [] });
    assert.deepEqual(parseEndpointOptions(null), { cniArgs: [] });
  });

  test('cni.args.<KEY> become extra CNI_ARGS in order; partial bandwidth is allowed here', () => {
    assert.deepEqual(
      parseEndpointOptions({ 'cni.args.K8S_POD_NAME': 'web-0', 'cni.args.K8S_POD_NAMESPACE': 'default', 'cni.bandwidth.ingress_rate': '1000' }),
      { cniArgs: [['K8S_POD_NAME', 'web-0'], ['K8S_POD_NAMESPACE', 'default']], bandwidth: { ingressRate: 1000 } },
    );
  });

  test('CNI_ARGS that could inject or override are rejected', () => {
    for (const reserved of RESERVED_CNI_ARGS) {
      assert.throws(() => parseEndpointOptions({ [`cni.args.${reserved}`]: 'x' }), isInvalid(/is set by docker-cni/), reserved);
    }
    for (const value of ['a;IgnoreUnknown=0', 'a=b', 'a\0b']) {
      assert.throws(() => parseEndpointOptions({ 'cni.args.FOO': value }), isInvalid(/cannot contain/), JSON.stringify(value));
    }
    for (const key of ['cni.args.', 'cni.args.1ABC', 'cni.args.A-B', 'cni.args.A B']) {
      assert.throws(() => parseEndpointOptions({ [key]: 'x' }), isInvalid(/CNI_ARGS key must match/), key);
    }
    assert.throws(() => parseEndpointOptions({ 'cni.args.FOO': 1 }), isInvalid(/expected a string/));
    assert.throws(() => parseEndpointOptions({ 'cni.network': 'x' }), isInvalid(/unsupported endpoint option "cni\.network"/));
  });
});

describe('point-to-point routes', () => {
  test('splitInHalves splits the network of an interface address', () => {
    assert.deepEqual(splitInHalves('10.231.1.77/24'), ['10.231.1.0/25', '10.231.1.128/25']);
    assert.deepEqual(splitInHalves('10.231.0.5/16'), ['10.231.0.0/17', '10.231.128.0/17']);
    assert.deepEqual(splitInHalves('fd7d:c11d:4e7:1::9/64'), ['fd7d:c11d:4e7:1::/65', 'fd7d:c11d:4e7:1:8000::/65']);
    assert.deepEqual(splitInHalves('10.0.0.1/31'), []);
    assert.deepEqual(splitInHalves('10.0.0.1/32'), []);
    assert.deepEqual(splitInHalves('10.0.0.1'), []);
  });

  test('pointToPointRoutes only for chains with ptp: gateway on-link, pool via the gateway', () => {
    const result = { cniVersion: '1.0.0', ips: [{ address: '10.232.3.9/24', gateway: '10.232.3.1' }] };
    const ptp = { cniVersion: '1.0.0', name: 'p', plugins: [{ type: 'ptp' }] };
    assert.deepEqual(pointToPointRoutes(ptp, result), [
      { Destination: '10.232.3.1/32', RouteType: 1 },
      { Destination: '10.232.3.0/25', RouteType: 0, NextHop: '10.232.3.1' },
      { Destination: '10.232.3.128/25', RouteType: 0, NextHop: '10.232.3.1' },
    ]);
    assert.deepEqual(pointToPointRoutes({ ...ptp, plugins: [{ type: 'bridge' }] }, result), []);
    assert.deepEqual(pointToPointRoutes(ptp, { cniVersion: '1.0.0', ips: [{ address: '10.232.3.9/24' }] }), []);
  });
});

describe('NetworkDriver with endpoint options', () => {
  let h: DriverHarness;
  let driver: NetworkDriver;
  beforeEach(async () => {
    h = await createDriverHarness();
    driver = await h.start();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  test('network bandwidth limits add the bandwidth plugin and capability to a generated chain', async () => {
    const net = hexId();
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.bandwidth.egress_rate': '1000000', 'cni.bandwidth.egress_burst': '10000' } }));
    const req = endpointRequest(net, hexId());
    req.Options = { ...req.Options, 'cni.bandwidth.egress_rate': '2000000', 'cni.args.APP': 'web' };
    await driver.createEndpoint(req);
    const add = h.cni.of('ADD')[0];
    assert.deepEqual(
      add?.list.plugins.map((p) => p.type),
      ['bridge', 'bandwidth'],
    );
    assert.deepEqual(add?.rt.capabilityArgs?.bandwidth, { egressRate: 2_000_000, egressBurst: 10_000 });
    assert.deepEqual(add?.rt.args?.slice(-1), [['APP', 'web']]);
    assert.deepEqual(add?.rt.args?.[0], ['IgnoreUnknown', '1']);
    // Endpoints without limits on a network without limits run no bandwidth plugin.
    const plain = hexId();
    await driver.createNetwork(networkRequest(plain, { v4: [{ pool: '10.231.2.0/24', gateway: '10.231.2.1/24' }] }));
    await driver.createEndpoint(endpointRequest(plain, hexId(), { address: '10.231.2.5/24' }));
    assert.deepEqual(
      h.cni.of('ADD')[1]?.list.plugins.map((p) => p.type),
      ['bridge'],
    );
    assert.equal(h.cni.of('ADD')[1]?.rt.capabilityArgs?.bandwidth, undefined);
  });

  test('a generated network with limits needs the bandwidth binary', async () => {
    await rm(join(h.binDir, 'bandwidth'));
    await assert.rejects(
      driver.createNetwork(networkRequest(hexId(), { generic: { 'cni.bandwidth.ingress_rate': '1', 'cni.bandwidth.ingress_burst': '1' } })),
      (err: unknown) => err instanceof PluginError && err.code === 'NOT_FOUND' && /"bandwidth"/.test(err.message),
    );
  });

  test('limits on a user conflist need a plugin declaring the bandwidth capability', async () => {
    await h.writeConfList('10-plain.conflist', { cniVersion: '1.0.0', name: 'plain', plugins: [{ type: 'bridge', bridge: 'cni-p0' }] });
    const limits = { 'cni.bandwidth.ingress_rate': '1000', 'cni.bandwidth.ingress_burst': '100' };
    const rejected = hexId();
    await assert.rejects(driver.createNetwork(networkRequest(rejected, { generic: { 'cni.network': 'plain', ...limits } })), isInvalid(/bandwidth/));
    assert.equal(await h.networksStore.get(rejected), undefined);
    const net = hexId();
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'plain' } }));
    const req = endpointRequest(net, hexId());
    req.Options = { ...req.Options, ...limits };
    await assert.rejects(driver.createEndpoint(req), isInvalid(/bandwidth/));
    assert.deepEqual(h.cni.calls, []);
  });

  test('a bad endpoint option fails CreateEndpoint before any work', async () => {
    const net = hexId();
    await driver.createNetwork(networkRequest(net));
    const req = endpointRequest(net, hexId());
    req.Options = { ...req.Options, 'cni.args.DOCKER_ENDPOINT_ID': 'spoof' };
    await assert.rejects(driver.createEndpoint(req), isInvalid(/^CreateEndpoint [0-9a-f]{12}: .*DOCKER_ENDPOINT_ID/));
    assert.deepEqual(h.cni.calls, []);
    assert.deepEqual(h.staging.acquired, []);
  });

  test('a ptp conflist endpoint gets routes that keep the pool off-link', async () => {
    await h.writeConfList('10-p2p.conflist', {
      cniVersion: '1.0.0',
      name: 'p2p',
      plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: '10.232.3.0/24' } }],
    });
    const net = hexId();
    await driver.createNetwork(networkRequest(net, { generic: { 'cni.network': 'p2p' }, v4: [{ pool: '10.232.3.0/24', gateway: '10.232.3.1/24' }] }));
    h.cni.routes = [{ dst: '0.0.0.0/0' }];
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep, { address: '10.232.3.9/24' }));
    const reply = await driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '', Options: {} });
    assert.equal(reply.Gateway, '10.232.3.1', 'a default route without gw means via the address\'s gateway');
    assert.deepEqual(reply.StaticRoutes, [
      { Destination: '10.232.3.1/32', RouteType: 1 },
      { Destination: '10.232.3.0/25', RouteType: 0, NextHop: '10.232.3.1' },
      { Destination: '10.232.3.128/25', RouteType: 0, NextHop: '10.232.3.1' },
    ]);
  });
});

/* CreateEndpoint answered once `creating` is journaled; the chain runs after, and Join waits for it. */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostLinkNameFor } from '../../../src/names.js';
import type { NetworkDriver } from '../../../src/network/network-driver.js';
import type { CniResult } from '../../../src/cni/types.js';
import { PluginError } from '../../../src/errors.js';
import { CONTAINER_MAC, driverWithNetwork, endpointRequest, gate, hexId, networkRequest, settle, type DriverHarness } from './driver-harness.js';

describe('background set-up', () => {
  let h: DriverHarness;
  let driver: NetworkDriver;
  let net: string;
  let held: ReturnType<typeof gate>;

  beforeEach(async () => {
    ({ h, driver, net } = await driverWithNetwork({ backgroundSetup: true, backgroundTeardown: true }));
    held = gate();
    const defaultAdd = h.cni.addNetworkList.bind(h.cni);
    h.cni.onAdd = async (list, rt): Promise<CniResult> => {
      await held.promise;
      h.cni.onAdd = undefined;
      const result = await defaultAdd(list, rt);
      h.cni.calls.pop(); // the default path recorded this ADD a second time
      return result;
    };
  });
  afterEach(async () => {
    held.open();
    await driver.drain();
    await h.cleanup();
  });

  const join = (ep: string) => driver.join({ NetworkID: net, EndpointID: ep, SandboxKey: '/var/run/docker/netns/abc', Options: {} });

  test('the reply carries the MAC the chain is then given; Join waits for the link', async () => {
    const ep = hexId();
    const reply = await driver.createEndpoint(endpointRequest(net, ep));
    const mac = reply.Interface?.MacAddress;
    assert.match(mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(parseInt((mac ?? '').slice(0, 2), 16) & 0x03, 0x02, 'unicast, locally administered');
    assert.equal((await h.endpointsStore.get(ep))?.status, 'creating', 'journaled before the reply');
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), false);

    let joined = false;
    const joining = join(ep).then((r) => ((joined = true), r));
    await settle();
    assert.equal(joined, false, 'Join waits for the chain');
    held.open();
    const answer = await joining;
    assert.equal(answer.InterfaceName.SrcName, hostLinkNameFor(ep));
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), true);
    assert.deepEqual(h.cni.of('ADD')[0]?.rt.capabilityArgs, { mac });
    assert.equal((await h.endpointsStore.get(ep))?.status, 'ready');
  });

  test('the chain starts only once the reply is out, not in the microtasks before it', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    assert.equal(h.cni.of('ADD').length, 0, 'no step of the chain ran before the caller had the reply');
    await settle();
    assert.equal(h.cni.of('ADD').length, 1, 'the chain runs right after');
  });

  test('a chain that fails after the reply: Join reports its error, nothing is left, DeleteEndpoint twice is fine', async () => {
    h.cni.onAdd = async () => {
      await held.promise;
      throw new PluginError('CNI_FAILED', 'bridge failed (ADD): no space');
    };
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    held.open();
    await assert.rejects(join(ep), (err: Error) => err instanceof PluginError && err.code === 'CNI_FAILED' && /Join: CreateEndpoint [0-9a-f]+: bridge failed \(ADD\): no space/.test(err.message));
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.deepEqual(h.staging.released.at(-1)?.dirty, true, 'the staging netns that may hold the half-made link is dropped');
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await driver.drain();
    assert.deepEqual(driver.listEndpoints(), []);
    assert.equal(h.links.host.size, 0);
  });

  test('DeleteEndpoint without a Join waits for the chain, then tears it down', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    const deleting = driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await settle();
    held.open();
    await deleting;
    await driver.drain();
    assert.equal(h.cni.of('ADD').length, 1);
    assert.equal(h.cni.of('DEL').length, 1);
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), false);
  });

  test('a chain with no mac capability runs before the reply, which carries the MAC it made', async () => {
    await h.writeConfList('nomac.conflist', {
      cniVersion: '1.0.0',
      name: 'nomac',
      plugins: [{ type: 'bridge', bridge: 'nomac0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.9.0/24' }]] } }],
    });
    const userNet = hexId();
    await driver.createNetwork(networkRequest(userNet, { generic: { 'cni.network': 'nomac' }, v4: [{ pool: '10.231.9.0/24', gateway: '10.231.9.1/24' }] }));
    held.open();
    const ep = hexId();
    const reply = await driver.createEndpoint(endpointRequest(userNet, ep, { address: '10.231.9.5/24' }));
    assert.equal((await h.endpointsStore.get(ep))?.status, 'ready', 'the chain ran before the reply');
    assert.equal(reply.Interface?.MacAddress, CONTAINER_MAC);
    assert.deepEqual(h.cni.of('ADD')[0]?.rt.capabilityArgs, {});
  });

  test('the sandbox Join names reaches the journal after the reply', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    held.open();
    await join(ep);
    await driver.drain();
    await settle();
    assert.equal((await h.endpointsStore.get(ep))?.sandboxKey, '/var/run/docker/netns/abc');
  });

  test("a network's first ADD runs alone (it makes the bridge); later ones run side by side", async () => {
    let running = 0;
    let release = gate();
    h.cni.onAdd = async (_list, rt) => {
      running++;
      await release.promise;
      running--;
      return { cniVersion: '1.0.0', interfaces: [{ name: rt.ifName, mac: CONTAINER_MAC, sandbox: rt.netns }], ips: [] };
    };
    const create = (n: number) => driver.createEndpoint(endpointRequest(net, hexId(), { address: `10.231.1.${n}/24` }));
    for (const n of [11, 12, 13]) await create(n);
    await settle();
    assert.equal(running, 1, 'only the first chain runs while the network has no bridge yet');
    release.open();
    await driver.drain();
    release = gate();
    for (const n of [14, 15, 16]) await create(n);
    await settle();
    assert.equal(running, 3, 'once one ADD made the bridge, chains run at once');
    release.open();
    await driver.drain();
  });
});

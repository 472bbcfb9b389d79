/* DeleteEndpoint answered once `deleting` is journaled; what depends on the finished teardown waits for it. */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hostLinkNameFor } from '../../../src/names.js';
import type { NetworkDriver } from '../../../src/network/network-driver.js';
import { driverWithNetwork, endpointRequest, gate, hexId, settle, type DriverHarness } from './driver-harness.js';

describe('background teardown', () => {
  let h: DriverHarness;
  let driver: NetworkDriver;
  let net: string;
  let held: ReturnType<typeof gate>;

  beforeEach(async () => {
    ({ h, driver, net } = await driverWithNetwork({ backgroundTeardown: true }));
    held = gate();
    h.cni.onDel = () => held.promise;
  });
  afterEach(async () => {
    held.open();
    await driver.drain();
    await h.cleanup();
  });

  test('DeleteEndpoint returns with the record journaled as deleting; the DEL finishes after', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.equal((await h.endpointsStore.get(ep))?.status, 'deleting');
    held.open();
    await driver.drain();
    assert.equal(h.cni.of('DEL').length, 1);
    assert.equal(await h.endpointsStore.get(ep), undefined);
    assert.equal(h.links.host.has(hostLinkNameFor(ep)), false);
    assert.deepEqual(driver.listEndpoints(), []);
  });

  test('a new endpoint with the address of one being torn down waits for that teardown, then succeeds', async () => {
    const old = hexId();
    await driver.createEndpoint(endpointRequest(net, old, { address: '10.231.1.9/24' }));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: old });
    let created = false;
    const next = driver.createEndpoint(endpointRequest(net, hexId(), { address: '10.231.1.9/24' })).then(() => (created = true));
    const other = driver.createEndpoint(endpointRequest(net, hexId(), { address: '10.231.1.10/24' }));
    await other;
    await settle();
    assert.equal(created, false, 'the same address waits');
    held.open();
    await next;
    assert.equal(await h.endpointsStore.get(old), undefined);
  });

  test('DeleteNetwork waits for the teardowns of its endpoints', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    let deleted = false;
    const removal = driver.deleteNetwork({ NetworkID: net }).then(() => (deleted = true));
    await settle();
    assert.equal(deleted, false);
    held.open();
    await removal;
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });

  test('a DEL that fails leaves the record deleting, and a restart finishes it', async () => {
    const ep = hexId();
    await driver.createEndpoint(endpointRequest(net, ep));
    h.cni.onDel = () => Promise.reject(new Error('plugin failed'));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await driver.drain();
    assert.equal((await h.endpointsStore.get(ep))?.status, 'deleting');
    h.cni.onDel = undefined;
    await h.start();
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });
});

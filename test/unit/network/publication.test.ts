import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IP_PROTO, OPT, type ExternalConnectivityRequest } from '../../../src/docker/api.js';
import type { PluginError } from '../../../src/errors.js';
import { generatedCniName } from '../../../src/names.js';
import type { NetworkDriver } from '../../../src/network/network-driver.js';
import { createDriverHarness, endpointRequest, fakeProbe, hexId, networkRequest, type DriverHarness, type EndpointRequestOptions } from './driver-harness.js';
import { rejectsWith } from '../../helpers/plugin-errors.js';

type Ports = NonNullable<EndpointRequestOptions['ports']>;

let h: DriverHarness;
let driver: NetworkDriver;
let net: string;
let other: string;
let publicationName: string;

beforeEach(async () => {
  h = await createDriverHarness();
  driver = await h.start();
  net = hexId();
  other = hexId();
  publicationName = `${generatedCniName(net)}-ports`;
  await driver.createNetwork(networkRequest(net));
  await driver.createNetwork(networkRequest(other, { v4: [{ pool: '10.231.3.0/24', gateway: '10.231.3.1/24' }] }));
});

afterEach(async () => {
  await h.cleanup();
});

/** CreateEndpoint + Join, as Docker does for every network of a container. */
async function attach(network: string, sandbox: string, ports: Ports, address?: string): Promise<string> {
  const ep = hexId();
  await driver.createEndpoint(endpointRequest(network, ep, { ports, ...(address ? { address } : {}) }));
  await driver.join({ NetworkID: network, EndpointID: ep, SandboxKey: sandbox, Options: {} });
  return ep;
}

/** ProgramExternalConnectivity carries the container's whole port list, as CreateEndpoint did. */
function pec(network: string, ep: string, ports?: Ports): ExternalConnectivityRequest {
  const req = endpointRequest(network, ep, ports ? { ports } : {});
  return { NetworkID: network, EndpointID: ep, Options: ports ? { [OPT.portMap]: req.Options?.[OPT.portMap] } : {} };
}

const WEB: Ports = [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 8080 }];
const publications = (verb: 'ADD' | 'DEL') => h.cni.of(verb).filter((c) => c.list.name.endsWith('-ports'));

describe('publishing at ProgramExternalConnectivity', () => {
  test('CreateEndpoint and Join publish nothing; PEC runs portmap alone from the endpoint\'s result', async () => {
    const ep = await attach(net, '/var/run/docker/netns/sb1', WEB);
    assert.deepEqual(publications('ADD'), []);
    const chainResult = (await h.endpointsStore.get(ep))?.result;
    await driver.programExternalConnectivity(pec(net, ep, WEB));
    const [add, ...more] = publications('ADD');
    assert.equal(more.length, 0);
    assert.equal(add?.list.name, publicationName);
    assert.deepEqual(add?.list.plugins, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }]);
    assert.deepEqual(add?.rt.capabilityArgs, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(add?.rt.containerId, ep);
    assert.equal(add?.rt.ifName, 'eth0');
    assert.equal(add?.rt.netns, '/var/run/docker/netns/sb1');
    assert.deepEqual(add?.prevResult, chainResult);
    const record = await h.endpointsStore.get(ep);
    assert.equal(record?.publication?.status, 'published');
    assert.deepEqual(record?.portMappings, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    // Docker repeating PEC changes nothing.
    await driver.programExternalConnectivity(pec(net, ep, WEB));
    assert.equal(publications('ADD').length, 1);
  });

  test('a PEC without a port list publishes what CreateEndpoint carried', async () => {
    const ep = await attach(net, 'sb', WEB);
    await driver.programExternalConnectivity(pec(net, ep));
    assert.deepEqual(publications('ADD')[0]?.rt.capabilityArgs, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
  });

  test('an endpoint Docker never makes the gateway never publishes, and its removal deletes no publication', async () => {
    const ep = await attach(net, 'sb', WEB);
    await driver.revokeExternalConnectivity(pec(net, ep));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.deepEqual(publications('ADD'), []);
    assert.deepEqual(publications('DEL'), []);
  });

  test('Revoke removes the publication with the args it was made with; Revoke and DeleteEndpoint again are no-ops', async () => {
    const ep = await attach(net, 'sb', WEB);
    await driver.programExternalConnectivity(pec(net, ep, WEB));
    await driver.revokeExternalConnectivity(pec(net, ep));
    const [del, ...more] = publications('DEL');
    assert.equal(more.length, 0);
    assert.equal(del?.list.name, publicationName);
    assert.deepEqual(del?.rt.capabilityArgs, publications('ADD')[0]?.rt.capabilityArgs);
    assert.deepEqual((await h.endpointsStore.get(ep))?.portMappings, []);
    assert.equal((await h.endpointsStore.get(ep))?.publication, undefined);
    await driver.revokeExternalConnectivity(pec(net, ep));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.equal(publications('DEL').length, 1);
    await driver.revokeExternalConnectivity(pec(net, ep));
  });

  test('DeleteEndpoint of the gateway removes the publication before the chain; deleting twice is fine', async () => {
    const ep = await attach(net, 'sb', WEB);
    await driver.programExternalConnectivity(pec(net, ep, WEB));
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    await driver.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    assert.deepEqual(
      h.cni.of('DEL').map((c) => c.list.name),
      [publicationName, generatedCniName(net)],
    );
    assert.equal(await h.endpointsStore.get(ep), undefined);
  });
});

describe('conflicts are per container', () => {
  test('the gateway moving between two endpoints of one container republishes the same port without a CONFLICT', async () => {
    const a = await attach(net, 'sb', WEB);
    const b = await attach(other, 'sb', WEB, '10.231.3.5/24');
    await driver.programExternalConnectivity(pec(net, a, WEB));
    // A PEC on b without a Revoke on a (a Revoke lost to a restart): a's publication goes first.
    await driver.programExternalConnectivity(pec(other, b, WEB));
    assert.deepEqual(
      h.cni.calls.filter((c) => c.list.name.endsWith('-ports')).map((c) => `${c.verb} ${c.rt.containerId === a ? 'a' : 'b'}`),
      ['ADD a', 'DEL a', 'ADD b'],
    );
    assert.deepEqual((await h.endpointsStore.get(b))?.portMappings, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual((await h.endpointsStore.get(a))?.portMappings, []);
  });

  test('another container\'s published port is a CONFLICT until it is revoked; another protocol is not', async () => {
    const first = await attach(net, 'sb1', WEB);
    await driver.programExternalConnectivity(pec(net, first, WEB));
    const second = await attach(other, 'sb2', [{ Proto: IP_PROTO.tcp, Port: 8000, HostPort: 8080 }], '10.231.3.5/24');
    await rejectsWith(driver.programExternalConnectivity(pec(other, second, [{ Proto: IP_PROTO.tcp, Port: 8000, HostPort: 8080 }])), 'CONFLICT', /8080\/tcp/);
    assert.equal((await h.endpointsStore.get(second))?.publication, undefined);
    const udp = await attach(net, 'sb3', [{ Proto: IP_PROTO.udp, Port: 80, HostPort: 8080 }], '10.231.1.7/24');
    await driver.programExternalConnectivity(pec(net, udp, [{ Proto: IP_PROTO.udp, Port: 80, HostPort: 8080 }]));
    await driver.revokeExternalConnectivity(pec(net, first));
    await driver.programExternalConnectivity(pec(other, second, [{ Proto: IP_PROTO.tcp, Port: 8000, HostPort: 8080 }]));
    assert.deepEqual((await h.endpointsStore.get(second))?.portMappings, [{ hostPort: 8080, containerPort: 8000, protocol: 'tcp' }]);
  });

  test('a host port a host process holds is a CONFLICT at PEC', async () => {
    const busy = await h.start({ deps: { probePort: fakeProbe([9090]) } });
    const ep = hexId();
    const ports: Ports = [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 9090 }];
    await busy.createEndpoint(endpointRequest(net, ep, { ports }));
    await rejectsWith(busy.programExternalConnectivity(pec(net, ep, ports)), 'CONFLICT');
  });

  test('concurrent PECs of two containers for one host port: only one gets it', async () => {
    const a = await attach(net, 'sb1', WEB);
    const b = await attach(other, 'sb2', WEB, '10.231.3.5/24');
    const outcomes = await Promise.allSettled([driver.programExternalConnectivity(pec(net, a, WEB)), driver.programExternalConnectivity(pec(other, b, WEB))]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    assert.equal(failures.length, 1);
    assert.equal((failures[0]?.reason as PluginError).code, 'CONFLICT');
  });

  test('the network\'s host_binding_ipv4 is the default host IP of published ports', async () => {
    const bound = hexId();
    await driver.createNetwork(networkRequest(bound, { generic: { [OPT.hostBindingIpv4]: '127.0.0.1' }, v4: [{ pool: '10.231.4.0/24', gateway: '10.231.4.1/24' }] }));
    const ep = await attach(bound, 'sb', WEB, '10.231.4.5/24');
    await driver.programExternalConnectivity(pec(bound, ep, WEB));
    assert.deepEqual(publications('ADD')[0]?.rt.capabilityArgs?.portMappings, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' }]);
  });

  test('an ephemeral port stays the container\'s across a gateway move', async () => {
    const ephemeral: Ports = [{ Proto: IP_PROTO.tcp, Port: 80, HostPort: 0 }];
    const a = await attach(net, 'sb', ephemeral);
    const b = await attach(other, 'sb', ephemeral, '10.231.3.5/24');
    await driver.programExternalConnectivity(pec(net, a, ephemeral));
    const picked = (await h.endpointsStore.get(a))?.portMappings[0]?.hostPort;
    assert.ok(picked && picked > 0);
    await driver.revokeExternalConnectivity(pec(net, a));
    await driver.programExternalConnectivity(pec(other, b, ephemeral));
    assert.equal((await h.endpointsStore.get(b))?.portMappings[0]?.hostPort, picked);
  });
});

describe('restarts', () => {
  test('a publication made before a restart is removed after it, from what was recorded', async () => {
    const ep = await attach(net, 'sb', WEB);
    await driver.programExternalConnectivity(pec(net, ep, WEB));
    const restarted = await h.start();
    assert.deepEqual(publications('DEL'), [], 'a published publication survives the restart');
    // Its port still belongs to its container.
    const rival = hexId();
    await restarted.createEndpoint(endpointRequest(other, rival, { address: '10.231.3.9/24', ports: WEB }));
    await restarted.join({ NetworkID: other, EndpointID: rival, SandboxKey: 'sb2', Options: {} });
    await rejectsWith(restarted.programExternalConnectivity(pec(other, rival, WEB)), 'CONFLICT');
    await restarted.deleteEndpoint({ NetworkID: net, EndpointID: ep });
    const [del] = publications('DEL');
    assert.equal(del?.list.name, publicationName);
    assert.deepEqual(del?.rt.capabilityArgs, publications('ADD')[0]?.rt.capabilityArgs);
    assert.equal(del?.rt.containerId, ep);
  });

  test('a publish a restart interrupted is undone at init, and the endpoint can publish again', async () => {
    const ep = await attach(net, 'sb', WEB);
    // The journal says 'publishing' when the plugin dies mid-ADD.
    const record = await h.endpointsStore.get(ep);
    assert.ok(record);
    await h.endpointsStore.put(ep, {
      ...record,
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      publication: {
        status: 'publishing',
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
        conflist: { cniVersion: '1.0.0', name: publicationName, plugins: [{ type: 'portmap', capabilities: { portMappings: true } }] },
        netns: 'sb',
      },
    });
    const restarted = await h.start();
    assert.deepEqual(
      publications('DEL').map((c) => c.rt.containerId),
      [ep],
    );
    const after = await h.endpointsStore.get(ep);
    assert.equal(after?.publication, undefined);
    assert.deepEqual(after?.portMappings, []);
    await restarted.programExternalConnectivity(pec(net, ep, WEB));
    assert.equal((await h.endpointsStore.get(ep))?.publication?.status, 'published');
  });

  test('a failed publish leaves no publication and frees its ports', async () => {
    const ep = await attach(net, 'sb', WEB);
    h.cni.onAdd = () => {
      throw new Error('portmap failed');
    };
    await assert.rejects(driver.programExternalConnectivity(pec(net, ep, WEB)), /ProgramExternalConnectivity .*portmap failed/);
    h.cni.onAdd = undefined;
    assert.equal((await h.endpointsStore.get(ep))?.publication, undefined);
    const rival = await attach(other, 'sb2', WEB, '10.231.3.5/24');
    await driver.programExternalConnectivity(pec(other, rival, WEB));
  });
});

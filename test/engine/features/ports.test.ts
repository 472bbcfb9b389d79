// Engine acceptance: published ports (`-p`, `-P`) on docker-cni networks.
// Docker publishes nothing for remote drivers; docker-cni allocates the host
// ports and programs them with CNI portmap. Every connection here goes from the
// host to its own addresses (127.0.0.1, a bridge gateway, eth0's address).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import {
  containerIp,
  docker,
  dockerResult,
  endpointIdOf,
  engineSkipReason,
  freeSubnet,
  IDLE_COMMAND,
  hostInSubnet,
  randomHex,
  setupEngineSuite,
  uniqueName,
  waitFor,
  TEST_IMAGE,
  type EngineScope,
} from '../../helpers/engine.js';
import {
  assertServes,
  featureCase,
  httpGet,
  sendDatagram,
  udpDatagramsReceived,
  natRules,
  nonLoopbackHostIpv4,
  reportedPorts,
  tcpRefused,
  testBridgeName,
  webServerCommand,
} from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

/** A host port in 21000-29999 that nothing listens on right now. */
async function freeHostPort(count = 1): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 21_000 + Math.floor(Math.random() * 8_900);
    let ok = true;
    for (let port = start; port < start + count && ok; port++) ok = await canListen(port);
    if (ok) return start;
  }
  throw new Error('no free host port');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function network(s: EngineScope): Promise<{ name: string; gateway: string }> {
  const subnet = await freeSubnet();
  const created = await s.createNetwork({ subnet, options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) } });
  return { name: created.name, gateway: hostInSubnet(subnet, 1) };
}

/** `docker run -d` with extra flags before the image (the scope's runContainer has no -p). */
async function runPublished(s: EngineScope, net: string, flags: string[], command: string[]): Promise<string> {
  const name = uniqueName('cnit-web');
  s.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
  await docker(['run', '-d', '--name', name, '--network', net, '--label', 'docker-cni-test=1', ...flags, TEST_IMAGE, ...command]);
  return name;
}

describe('engine: published ports', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('-p HOST:80 answers on 127.0.0.1, the bridge gateway and the host address; after rm -f nothing answers and no DNAT rule is left', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await network(s);
      const port = await freeHostPort();
      const body = `web${randomHex(6)}`;
      const web = await runPublished(s, net.name, ['-p', `${port}:80`], webServerCommand(body));
      const ip = await containerIp(web, net.name);
      await assertServes('127.0.0.1', port, body);
      await assertServes(net.gateway, port, body);
      const hostIp = await nonLoopbackHostIpv4();
      if (hostIp) await assertServes(hostIp, port, body);
      assert.match(await natRules(), new RegExp(`--to-destination ${ip.replace(/\./g, '\\.')}:80`));

      await docker(['rm', '-f', web]);
      assert.ok(await tcpRefused('127.0.0.1', port), `port ${port} still answers after docker rm -f`);
      const nat = await natRules();
      assert.ok(!nat.includes(`${ip}:`) && !nat.includes(` ${ip}/32`), `nat rules still mention ${ip}:\n${nat.split('\n').filter((l) => l.includes(ip)).join('\n')}`);
    }));

  test('-p HOST:PORT/udp forwards datagrams to the container', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await network(s);
      const port = await freeHostPort();
      const receiver = await runPublished(s, net.name, ['-p', `${port}:5353/udp`], IDLE_COMMAND);
      const unpublished = await freeHostPort();
      const before = await udpDatagramsReceived(receiver);
      // A port nobody published must not reach the container (this also checks the counter is quiet).
      await sendDatagram('127.0.0.1', unpublished, 'stray');
      await sendDatagram(net.gateway, unpublished, 'stray');
      const count = 3;
      for (let i = 0; i < count; i++) await sendDatagram('127.0.0.1', port, `probe-${i}`);
      for (let i = 0; i < count; i++) await sendDatagram(net.gateway, port, `probe-${i}`);
      const received = await waitFor(
        async () => {
          const n = (await udpDatagramsReceived(receiver)) - before;
          return n >= 2 * count ? n : undefined;
        },
        { timeoutMs: 10_000, what: `${2 * count} datagrams sent to port ${port}/udp to reach the container` },
      );
      assert.equal(received, 2 * count, 'the container received datagrams it was not sent through the published port');
    }));

  test('-p 127.0.0.1:HOST:80 answers on 127.0.0.1 only, not on another host address', { timeout: TEST_TIMEOUT }, async (t) => {
    const hostIp = await nonLoopbackHostIpv4();
    if (!hostIp) {
      t.skip('the host has no non-loopback IPv4 address to compare with');
      return;
    }
    await featureCase(plugin(), async (s) => {
      const net = await network(s);
      const port = await freeHostPort();
      const body = `local${randomHex(6)}`;
      await runPublished(s, net.name, ['-p', `127.0.0.1:${port}:80`], webServerCommand(body));
      await assertServes('127.0.0.1', port, body);
      assert.ok(await tcpRefused(hostIp, port), `127.0.0.1-only port ${port} answers on ${hostIp}`);
    });
  });

  test('-p START-END:80 takes a port of the range; a second container gets another one', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await network(s);
      const start = await freeHostPort(11);
      const end = start + 10;
      const bodies = [`a${randomHex(6)}`, `b${randomHex(6)}`];
      const chosen: number[] = [];
      for (const body of bodies) {
        const web = await runPublished(s, net.name, ['-p', `${start}-${end}:80`], webServerCommand(body));
        const endpoint = await endpointIdOf(web, net.name);
        const entry = (await reportedPorts(plugin())).find((e) => e.endpoint === endpoint);
        const port = entry?.ports[0]?.hostPort;
        assert.ok(port !== undefined && port >= start && port <= end, `port ${port} outside ${start}-${end}`);
        await assertServes('127.0.0.1', port, body);
        chosen.push(port);
      }
      assert.notEqual(chosen[0], chosen[1], 'two containers got the same host port of the range');
    }));

  test('ephemeral ports (-P with --expose, and -p 80) are reported by the log and `docker-cni ports --json`, and answer', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await network(s);
      for (const flags of [['-P', '--expose', '80'], ['-p', '80']]) {
        const body = `eph${randomHex(6)}`;
        const web = await runPublished(s, net.name, flags, webServerCommand(body));
        const endpoint = await endpointIdOf(web, net.name);
        const entry = (await reportedPorts(plugin())).find((e) => e.endpoint === endpoint);
        const mapping = entry?.ports.find((p) => p.containerPort === 80 && p.protocol === 'tcp');
        assert.ok(mapping && mapping.hostPort > 0, `no ephemeral port reported for ${web} (${flags.join(' ')}): ${JSON.stringify(entry)}`);
        const logLine = plugin()
          .logTail(400)
          .split('\n')
          .find((line) => line.includes('published ports') && line.includes(endpoint));
        assert.ok(logLine?.includes(`"hostPort":${mapping.hostPort}`), `the plugin log does not report port ${mapping.hostPort} for ${endpoint}`);
        await assertServes('127.0.0.1', mapping.hostPort, body);
      }
    }));

  test('a host port already in use (host listener, or another container) fails docker run with a clear message', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await network(s);
      const port = await freeHostPort();
      const listener: Server = createServer((socket) => socket.end());
      await new Promise<void>((resolve) => listener.listen({ port, host: '0.0.0.0' }, resolve));
      s.defer('close host listener', () => new Promise<void>((resolve) => listener.close(() => resolve())));
      const blocked = uniqueName('cnit-web');
      s.defer(`docker rm -f ${blocked}`, () => docker(['rm', '-f', blocked]));
      const fromHost = await dockerResult(['run', '-d', '--name', blocked, '--network', net.name, '-p', `${port}:80`, TEST_IMAGE, ...webServerCommand('x')]);
      assert.notEqual(fromHost.exitCode, 0, 'docker run succeeded on a port a host process listens on');
      assert.match(fromHost.stderr, new RegExp(`host port ${port}/tcp is already in use`));

      const other = await freeHostPort();
      const body = `first${randomHex(6)}`;
      await runPublished(s, net.name, ['-p', `${other}:80`], webServerCommand(body));
      const second = uniqueName('cnit-web');
      s.defer(`docker rm -f ${second}`, () => docker(['rm', '-f', second]));
      const fromContainer = await dockerResult(['run', '-d', '--name', second, '--network', net.name, '-p', `${other}:80`, TEST_IMAGE, ...webServerCommand('y')]);
      assert.notEqual(fromContainer.exitCode, 0, 'two containers published the same host port');
      assert.match(fromContainer.stderr, new RegExp(`host port ${other}/tcp is already in use`));
      // The first container keeps its port.
      assert.equal(await httpGet('127.0.0.1', other), body);
    }));
});

/**
 * The operator commands against a real running plugin and real containers:
 * each command's human output (a table with a header, or a stated "none")
 * and its --json, with Docker's network and container names.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, TEST_IMAGE, IDLE_COMMAND, docker, engineCase, engineSkipReason, freeSubnet, setupEngineSuite, uniqueName } from '../../helpers/engine.js';
import { cli, cliJson } from './cli-helpers.js';

const skip = await engineSkipReason();
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface NetworkJson { id: string; name: string | null; mode: string; bridge: string | null; subnets: string[]; endpoints: number }
interface EndpointJson { id: string; network: string; networkName: string | null; container: string | null; containerName: string | null; status: string; link: string; addresses: string[] }
interface PortsJson { endpoint: string; network: string; networkName: string | null; containerName: string | null; ports: Array<{ hostPort: number; containerPort: number; protocol: string; hostIP?: string }> }
interface DoctorJson { ok: boolean; failed: number; findings: Array<{ area: string; check: string; status: string; detail: string; fix?: string }> }

describe('docker-cni CLI against a running plugin', { skip }, () => {
  const plugin = setupEngineSuite();

  test('version and --version', async () => {
    const human = await cli(plugin(), ['version']);
    assert.equal(human.exitCode, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`docker-cni\\s+${VERSION.replaceAll('.', '\\.')}`));
    assert.match(human.stdout, /CNI spec\s+.*1\.0\.0/);
    const flag = await cli(plugin(), ['--version']);
    assert.equal(flag.stdout.trim(), VERSION);
    const json = await cliJson<{ version: string; node: string; cniSpecVersions: string[] }>(plugin(), ['version']);
    assert.equal(json.version, VERSION);
    assert.equal(json.node, process.versions.node);
    assert.ok(json.cniSpecVersions.includes('1.0.0'));
  });

  test('networks, endpoints and ports show Docker names; empty lists say so', async () => {
    await engineCase(plugin(), async (scope) => {
      const emptyPorts = await cli(plugin(), ['ports']);
      assert.equal(emptyPorts.exitCode, 0);
      // Other tests' endpoints may exist in a shared plugin; ours has none with ports yet.
      const net = await scope.createNetwork({ subnet: await freeSubnet() });
      const container = await scope.runContainer({ network: net.name });
      const published = uniqueName('cnit-pub');
      scope.defer(`docker rm -f ${published}`, () => docker(['rm', '-f', published]));
      await docker(['run', '-d', '--name', published, '--network', net.name, '-p', '127.0.0.1::8080', TEST_IMAGE, ...IDLE_COMMAND]);

      const networks = await cliJson<NetworkJson[]>(plugin(), ['networks', 'ls']);
      const ours = networks.find((n) => n.id === net.id);
      assert.ok(ours, 'our network is listed');
      assert.equal(ours.name, net.name);
      assert.equal(ours.bridge, net.bridge);
      assert.equal(ours.endpoints, 2);
      const lsHuman = await cli(plugin(), ['networks', 'ls']);
      assert.match(lsHuman.stdout, /^\s*NETWORK ID\s+NAME\s+MODE\s+BRIDGE\s+SUBNETS\s+ENDPOINTS/m);
      assert.match(lsHuman.stdout, new RegExp(`${net.id.slice(0, 12)}\\s+${net.name}\\s+generated\\s+${net.bridge}`));

      const inspected = await cliJson<NetworkJson>(plugin(), ['networks', 'inspect', net.name]);
      assert.equal(inspected.id, net.id);
      const inspectHuman = await cli(plugin(), ['networks', 'inspect', net.id.slice(0, 12)]);
      assert.match(inspectHuman.stdout, new RegExp(`^name\\s+${net.name}$`, 'm'));
      assert.match(inspectHuman.stdout, /^plugins\s+bridge -> portmap$/m);

      const endpoints = (await cliJson<EndpointJson[]>(plugin(), ['endpoints', 'ls'])).filter((e) => e.network === net.id);
      assert.deepEqual(endpoints.map((e) => e.containerName).sort(), [container, published].sort());
      assert.ok(endpoints.every((e) => e.status === 'ready' && e.networkName === net.name));
      const epHuman = await cli(plugin(), ['endpoints', 'ls']);
      assert.match(epHuman.stdout, /^\s*ENDPOINT ID\s+CONTAINER\s+NETWORK\s+STATUS\s+LINK\s+ADDRESSES/m);
      assert.match(epHuman.stdout, new RegExp(`\\s${container}\\s+${net.name}\\s+ready\\s`));
      const one = await cliJson<EndpointJson>(plugin(), ['endpoints', 'inspect', container]);
      assert.equal(one.containerName, container);
      const oneHuman = await cli(plugin(), ['endpoints', 'inspect', one.id.slice(0, 12)]);
      assert.match(oneHuman.stdout, new RegExp(`^container\\s+${container} \\(`, 'm'));

      const ports = (await cliJson<PortsJson[]>(plugin(), ['ports'])).filter((p) => p.network === net.id);
      assert.equal(ports.length, 1);
      const [entry] = ports;
      assert.equal(entry?.containerName, published);
      assert.equal(entry?.networkName, net.name);
      const hostPort = entry?.ports[0]?.hostPort ?? 0;
      assert.ok(hostPort > 0, 'the ephemeral port chosen is reported');
      const portsHuman = await cli(plugin(), ['ports']);
      assert.match(portsHuman.stdout, /^\s*CONTAINER\s+NETWORK\s+HOST\s+CONTAINER PORT\s+ENDPOINT/m);
      assert.match(portsHuman.stdout, new RegExp(`${published}\\s+${net.name}\\s+127\\.0\\.0\\.1:${hostPort}\\s+8080/tcp`));
    });
  });

  test('ports with nothing published prints a line saying so', async () => {
    await engineCase(plugin(), async (scope) => {
      const net = await scope.createNetwork({ subnet: await freeSubnet() });
      await scope.runContainer({ network: net.name });
      const json = (await cliJson<PortsJson[]>(plugin(), ['ports'])).filter((p) => p.network === net.id);
      assert.deepEqual(json, []);
    });
    // With a private state dir (a child plugin) the whole list is empty.
    if (plugin().ownedDirs().length > 0) {
      const human = await cli(plugin(), ['ports']);
      assert.equal(human.stdout.trim(), 'no published ports');
      assert.equal((await cli(plugin(), ['endpoints', 'ls'])).stdout.trim(), 'no endpoints');
      assert.equal((await cli(plugin(), ['networks', 'ls'])).stdout.trim(), 'no networks');
    }
  });

  test('doctor: every finding has a fix unless ok, the exit code follows the failures', async () => {
    const json = await cli(plugin(), ['doctor', '--json']);
    const report = JSON.parse(json.stdout) as DoctorJson;
    assert.equal(json.exitCode, report.failed > 0 ? 1 : 0, json.stderr);
    assert.equal(report.ok, report.failed === 0);
    for (const f of report.findings) {
      if (f.status !== 'ok') assert.ok(f.fix && f.fix.length > 0, `${f.area}/${f.check} has no fix`);
    }
    const areas = new Set(report.findings.map((f) => f.area));
    for (const area of ['kernel', 'iptables', 'cni', 'conf', 'socket', 'state', 'docker', 'gc']) assert.ok(areas.has(area), `doctor checks ${area}`);
    assert.ok(report.findings.some((f) => f.area === 'docker' && f.status === 'ok'), 'dockerd reachable');
    assert.ok(report.findings.some((f) => f.area === 'cni' && f.check === 'bridge' && f.status === 'ok' && /CNI .*1\.0\.0/.test(f.detail)));
    if (plugin().socketPath) assert.ok(report.findings.some((f) => f.area === 'socket' && f.check === 'answers' && f.status === 'ok'));
    const human = await cli(plugin(), ['doctor']);
    assert.equal(human.exitCode, json.exitCode);
    assert.match(human.stdout, /AREA\s+CHECK\s+DETAIL\s+FIX/);
    assert.match(human.stdout, /(no problems|\d+ problem\(s\))/);
  });

  test('doctor fails, with a fix, on a conflist that is not valid', async () => {
    const confDir = plugin().dirs.confDir;
    if (!confDir || plugin().ownedDirs().length === 0) return; // only with a private conf dir
    const { writeFileSync, rmSync } = await import('node:fs');
    const bad = join(confDir, `90-broken-${uniqueName('x')}.conflist`);
    writeFileSync(bad, '{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"no-such-plugin-x"}]}');
    try {
      const r = await cli(plugin(), ['doctor', '--json']);
      const report = JSON.parse(r.stdout) as DoctorJson;
      const finding = report.findings.find((f) => f.area === 'conf' && bad.endsWith(f.check));
      assert.equal(finding?.status, 'fail');
      assert.match(finding?.fix ?? '', /no-such-plugin-x/);
      assert.equal(r.exitCode, 1);
    } finally {
      rmSync(bad, { force: true });
    }
  });

  test('wait-ready: returns at once on a serving socket, fails after the timeout on none', async () => {
    if (!plugin().socketPath) return;
    const ready = await cli(plugin(), ['wait-ready', '--timeout-ms', '5000']);
    assert.equal(ready.exitCode, 0, ready.stderr);
    assert.match(ready.stdout, /^ready: /);
    const none = await cli(plugin(), ['wait-ready', '--timeout-ms', '300', '--json', '--socket', `/run/docker/plugins/${uniqueName('none')}.sock`]);
    assert.equal(none.exitCode, 1);
    assert.equal((JSON.parse(none.stdout) as { ready: boolean }).ready, false);
  });
});

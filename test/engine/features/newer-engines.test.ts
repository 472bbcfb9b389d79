// Engine acceptance for what Docker ≥ 28 and CNI plugins ≥ 1.2 add: a
// gateway-less chain (GwAllocChecker), IPv6-only networks on both IPAMs, and
// a spec-1.1.0 conflist (cniVersions) whose firewall plugin isolates with
// ingressPolicy. Each test needs the newer engine or plugins and is skipped
// on the old ones (allowed in test/allowed-skips.json, so CI still fails on
// any other skip); test/run.mjs runs this file on dockerd 28 with the newer
// plugins.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  assertPings,
  canPing,
  confDirOrSkip,
  containerIp,
  docker,
  engineSkipReason,
  freeSubnet,
  randomHex,
  setupEngineSuite,
  uniqueName,
  waitFor,
} from '../../helpers/engine.js';
import { featureCase, firewallSpeaks110, pluginDirs, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

async function engineMajor(): Promise<number> {
  return Number((await docker(['version', '--format', '{{.Server.Version}}'])).split('.')[0]);
}

async function needsDocker28(t: TestContext): Promise<boolean> {
  const major = await engineMajor();
  if (major >= 28) return true;
  t.skip(`needs dockerd >= 28 (this is ${major})`);
  return false;
}

const STAGE_1 = 'CNI-ISOLATION-STAGE-1';
const STAGE_2 = 'CNI-ISOLATION-STAGE-2';

async function filterRules(): Promise<string> {
  return String((await execa('iptables-save', ['-t', 'filter'])).stdout);
}

/**
 * The firewall plugin keeps a bridge's ingressPolicy rules after the last DEL
 * (other containers may share the bridge); the bridge is the test's, so its
 * rules go with it, and the chains too when the test made them.
 */
async function removeIngressPolicyRules(bridges: string[], hadChains: boolean): Promise<void> {
  const rules = (await filterRules()).split('\n');
  const ours = rules.filter((r) => (r.startsWith(`-A ${STAGE_1} `) || r.startsWith(`-A ${STAGE_2} `)) && bridges.some((b) => r.includes(` ${b} `)));
  const lines = ours.map((r) => `-D${r.slice(2)}`);
  const left = rules.filter((r) => (r.startsWith(`-A ${STAGE_1} `) || r.startsWith(`-A ${STAGE_2} `)) && !ours.includes(r));
  if (!hadChains && left.every((r) => r === `-A ${STAGE_1} -j RETURN` || r === `-A ${STAGE_2} -j RETURN`)) {
    for (const r of rules.filter((x) => x.startsWith('-A ') && x.endsWith(`-j ${STAGE_1}`))) lines.push(`-D${r.slice(2)}`);
    lines.push(`-F ${STAGE_1}`, `-F ${STAGE_2}`, `-X ${STAGE_1}`, `-X ${STAGE_2}`);
  }
  if (lines.length === 0) return;
  await execa('iptables-restore', ['--noflush'], { input: `*filter\n${lines.join('\n')}\nCOMMIT\n` });
}

/** A 28.x client for flags the 20.10 one lacks (--ipv4=false); test/run.mjs names it. */
function newerClient(t: TestContext): string | undefined {
  const client = process.env.DOCKER_CNI_TEST_DOCKER28_CLIENT;
  if (client && existsSync(client)) return client;
  if (process.env.CI === 'true') throw new Error('DOCKER_CNI_TEST_DOCKER28_CLIENT is not set (test/run.mjs sets it on dockerd 28)');
  t.skip('no 28.x docker client (DOCKER_CNI_TEST_DOCKER28_CLIENT)');
  return undefined;
}

describe('engine: Docker >= 28 and CNI 1.1.0', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('GwAllocChecker: a macvlan chain gets no gateway reserved, and its containers reach each other', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir || !(await needsDocker28(t))) return;
    await featureCase(plugin(), async (s) => {
      const parent = await s.parentLink();
      const subnet = await freeSubnet();
      const conf = await s.placeConflist(confDir, [
        { type: 'macvlan', master: parent, mode: 'bridge', ipam: { type: 'host-local', ranges: [[{ subnet }]] } },
      ]);
      const net = await s.createNetwork({ subnet, options: { 'cni.network': conf } });
      const gateway = await docker(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', net.name]);
      assert.equal(gateway, '', 'Docker reserved a gateway address for a gateway-less chain');
      const first = await s.runContainer({ network: net.name });
      const second = await s.runContainer({ network: net.name });
      await assertPings(first, await containerIp(second, net.name));
      await assertPings(second, first);
    });
  });

  for (const ipam of ['docker-cni', 'default'] as const) {
    test(`an IPv6-only network (--ipv4=false, ${ipam} IPAM): containers have only IPv6 and ping6 each other by name`, { timeout: TEST_TIMEOUT }, async (t) => {
      if (!(await needsDocker28(t))) return;
      const client = newerClient(t);
      if (!client) return;
      await featureCase(plugin(), async (s) => {
        const third = Number((await freeSubnet()).split('.')[2]);
        const v6 = `fd7d:c11d:4e7:${(0x100 + third).toString(16)}::/64`;
        const name = uniqueName('cnit-v6only');
        const args = ['network', 'create', '-d', plugin().driver, '--ipv4=false', '--ipv6', '--subnet', v6];
        if (ipam === 'docker-cni') args.push('--ipam-driver', plugin().driver);
        args.push('-o', `com.docker.network.bridge.name=${testBridgeName(randomHex(8))}`, name);
        s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
        await execa(client, args);
        const first = await s.runContainer({ network: name });
        const second = await s.runContainer({ network: name });
        const addresses = await docker(['inspect', '-f', `{{with index .NetworkSettings.Networks "${name}"}}{{.IPAddress}}|{{.GlobalIPv6Address}}{{end}}`, first]);
        const [v4, v6Address] = addresses.split('|');
        assert.equal(v4, '', 'an IPv6-only network gave an IPv4 address');
        assert.ok(v6Address?.startsWith(v6.split('::')[0] ?? '?'), `no address from ${v6}: ${addresses}`);
        const inet = await docker(['exec', first, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
        assert.equal(inet, '', `eth0 has IPv4: ${inet}`);
        await waitFor(async () => (await docker(['exec', first, 'ping6', '-c', '1', '-W', '2', second]).then(() => true, () => false)), {
          timeoutMs: 15_000,
          what: `${first} to ping6 ${second}`,
        });
      });
    });
  }

  test('a 1.1.0 conflist (cniVersions) with firewall ingressPolicy same-bridge: same bridge talks, another bridge is cut off', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    if (!(await firewallSpeaks110())) {
      t.skip(`needs CNI plugins speaking spec 1.1.0 (firewall ingressPolicy); found in ${pluginDirs().join(':')} do not`);
      return;
    }
    await featureCase(plugin(), async (s) => {
      const networks: Array<{ name: string; bridge: string }> = [];
      const hadChains = (await filterRules()).includes(`:${STAGE_1} `);
      s.defer('remove the firewall plugin\'s ingressPolicy rules of the test bridges', () =>
        removeIngressPolicyRules(networks.map((n) => n.bridge), hadChains),
      );
      for (const label of ['a', 'b']) {
        const subnet = await freeSubnet();
        const bridge = testBridgeName(randomHex(8));
        s.deleteLinkLater(bridge);
        const conf = uniqueName(`cnit-ingress${label}`);
        const file = join(confDir, `${conf}.conflist`);
        s.defer(`rm ${file}`, () => rm(file, { force: true }));
        await writeFile(file, JSON.stringify({
          cniVersion: '1.1.0',
          cniVersions: ['1.0.0', '1.1.0'],
          name: conf,
          plugins: [
            { type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
            { type: 'firewall', ingressPolicy: 'same-bridge' },
          ],
        }));
        // docker-cni's own isolation is off, so only the firewall plugin's policy separates the two.
        const net = await s.createNetwork({ subnet, options: { 'cni.network': conf, 'cni.isolation': 'false' } });
        networks.push({ name: net.name, bridge });
      }
      const [a, b] = networks as [{ name: string; bridge: string }, { name: string; bridge: string }];
      const a1 = await s.runContainer({ network: a.name });
      const a2 = await s.runContainer({ network: a.name });
      const b1 = await s.runContainer({ network: b.name });
      await assertPings(a1, await containerIp(a2, a.name));
      const rules = String((await execa('iptables-save', ['-t', 'filter'])).stdout);
      assert.match(rules, new RegExp(`CNI-ISOLATION-STAGE-1.*-i ${a.bridge}`), 'no ingressPolicy rules for the first bridge');
      assert.equal(await canPing(b1, await containerIp(a1, a.name)), false, 'a container on another bridge reached the same-bridge network');
    });
  });
});

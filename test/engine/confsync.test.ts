// Engine acceptance: the conf-dir sync. A conflist dropped into the plugin's
// conf dir becomes a Docker network of the same name with no other command;
// containers on it reach each other by name and a published port answers on
// loopback; once the conflist is gone and nothing uses the network, the
// network goes, and with it everything the chain made on the host.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  PLUGIN_ENTRY,
  TEST_IMAGE,
  assertPings,
  docker,
  dockerResult,
  engineSkipReason,
  freeSubnet,
  hostInSubnet,
  hostLinkExists,
  randomHex,
  setupEngineSuite,
  uniqueName,
  waitFor,
  type EngineScope,
  type PluginHandle,
} from '../helpers/engine.js';
import { assertServes, featureCase, webServerCommand } from './features/feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

const networkExists = async (name: string): Promise<boolean> => (await dockerResult(['network', 'inspect', name])).exitCode === 0;

/** Writes a conflist into the plugin's conf dir; the file (and a leftover network) go at the end of the test. */
async function dropConflist(s: EngineScope, plugin: PluginHandle, name: string, plugins: object[]): Promise<string> {
  const confDir = plugin.dirs.confDir;
  if (!confDir) throw new Error('the plugin under test has no known conf dir');
  const file = join(confDir, `50-${name}.conflist`);
  s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
  s.defer(`rm ${file}`, () => rm(file, { force: true }));
  await writeFile(file, JSON.stringify({ cniVersion: '1.0.0', name, plugins }, null, 2));
  return file;
}

async function syncStatus(plugin: PluginHandle): Promise<string> {
  const { stdout } = await execa(process.execPath, [PLUGIN_ENTRY, 'sync', 'status', '--state-dir', plugin.dirs.stateDir]);
  return stdout;
}

describe('engine: conf-dir networks', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_CONF_SYNC: 'true' } });

  test('a dropped conflist becomes `--network <name>`; its removal removes the network once unused; nothing left', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const name = uniqueName('cnit-conf');
      const bridge = `cnitb${randomHex(6)}`;
      const subnet = await freeSubnet();
      s.own(bridge);
      const file = await dropConflist(s, plugin(), name, [
        { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet, gateway: hostInSubnet(subnet, 1) }]] } },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall' },
      ]);
      await waitFor(() => networkExists(name), { timeoutMs: 20_000, intervalMs: 200, what: `network ${name} made by the conf-dir sync` });
      const labels = await docker(['network', 'inspect', '-f', '{{json .Labels}} {{range .IPAM.Config}}{{.Subnet}}{{end}}', name]);
      assert.match(labels, /"io\.docker-cni\.managed":"cnit/);
      assert.ok(labels.endsWith(subnet), `the network has the conflist's subnet ${subnet}: ${labels}`);

      const server = uniqueName('cnit-web');
      s.defer(`docker rm -f ${server}`, () => docker(['rm', '-f', server]));
      const port = 21_000 + Math.floor(Math.random() * 8_000);
      await docker(['run', '-d', '--name', server, '--network', name, '--label', 'docker-cni-test=1', '-p', `127.0.0.1:${port}:80`, TEST_IMAGE, ...webServerCommand('conf-dir')]);
      const client = await s.runContainer({ network: name });
      await assertPings(client, server);
      await assertServes('127.0.0.1', port, 'conf-dir');

      // In use: removing the conflist leaves the network, and says why.
      await rm(file);
      await waitFor(async () => /waiting/.test(await syncStatus(plugin())), { timeoutMs: 20_000, intervalMs: 200, what: 'sync status "waiting"' });
      assert.ok(await networkExists(name), 'a network in use is never removed');
      assert.match(await syncStatus(plugin()), /conflist is gone.*container/);

      await docker(['rm', '-f', server, client]);
      await waitFor(async () => !(await networkExists(name)), { timeoutMs: 60_000, intervalMs: 500, what: `network ${name} removed once unused` });
      await waitFor(async () => !(await hostLinkExists(bridge)), { timeoutMs: 10_000, intervalMs: 200, what: `bridge ${bridge} removed with the last network of its conflist` });
    }),
  );

  test('a conflist named like an existing non-managed network is skipped; a broken one is reported by name', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const clash = uniqueName('cnit-clash');
      s.defer(`docker network rm ${clash}`, () => docker(['network', 'rm', clash]));
      await docker(['network', 'create', '-d', 'bridge', '--subnet', await freeSubnet(), clash]);
      await dropConflist(s, plugin(), clash, [{ type: 'bridge', bridge: `cnitb${randomHex(6)}`, ipam: { type: 'host-local', ranges: [[{ subnet: await freeSubnet() }]] } }]);
      const broken = uniqueName('cnit-broken');
      await dropConflist(s, plugin(), broken, [{ type: 'no-such-plugin' }]);
      await waitFor(async () => {
        const out = await syncStatus(plugin());
        return new RegExp(`${clash} +skipped`).test(out) && new RegExp(`${broken} +invalid.*no-such-plugin`).test(out);
      }, { timeoutMs: 20_000, intervalMs: 200, what: 'sync status to report the clash and the broken conflist' });
      assert.equal(await docker(['network', 'inspect', '-f', '{{.Driver}}', clash]), 'bridge', 'the user\'s network is left alone');
      assert.equal(await networkExists(broken), false);
    }),
  );
});

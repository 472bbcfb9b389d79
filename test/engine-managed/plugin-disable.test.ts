/**
 * State survival across `docker plugin disable` / `enable` of the managed
 * plugin while containers use it. Docker refuses a plain disable while a
 * network references the plugin ("plugin ... is in use"), so -f is needed.
 * The data path lives in the kernel, so running containers keep talking
 * while the plugin is down; after enable the plugin reloads its records, new
 * containers join, and removing everything leaves nothing behind (the leak
 * snapshot of engineCase).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPings,
  containerIp,
  docker,
  dockerResult,
  engineCase,
  engineSkipReason,
  freeSubnet,
  linksOnBridge,
  waitForBridgeLinks,
} from '../helpers/engine.js';
import { setupManagedEngineSuite } from './managed-plugin.js';

const TEST_TIMEOUT = 300_000;
const skip = await engineSkipReason();

describe('managed plugin: disable and enable with containers running', { skip }, () => {
  const plugin = setupManagedEngineSuite();

  test('plain disable is refused while in use; after disable -f and enable, containers keep working and teardown is complete', { timeout: TEST_TIMEOUT }, async () => {
    await engineCase(plugin(), async (s) => {
      const driver = plugin().driver;
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const first = await s.runContainer({ network: network.name });
      const second = await s.runContainer({ network: network.name });
      await assertPings(first, second);

      const refused = await dockerResult(['plugin', 'disable', driver], 60_000);
      assert.notEqual(refused.exitCode, 0, 'docker plugin disable without -f succeeded while a network uses the plugin');
      assert.match(refused.stderr, /in use/i);

      await docker(['plugin', 'disable', '-f', driver], 60_000);
      assert.equal(await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', driver]), 'false');
      // Plugin down: the kernel still forwards, and Docker's DNS still answers.
      await assertPings(first, second);

      await docker(['plugin', 'enable', driver], 60_000);
      await assertPings(first, second);
      await assertPings(second, await containerIp(first, network.name));
      const late = await s.runContainer({ network: network.name });
      await assertPings(late, first);
      await assertPings(first, late);
      assert.equal((await linksOnBridge(network.bridge)).length, 3);

      await docker(['rm', '-f', first, second, late]);
      await waitForBridgeLinks(network.bridge, 0, 'every veth, from before and after the disable, to leave the bridge');
      await docker(['network', 'rm', network.name]);
    });
  });
});

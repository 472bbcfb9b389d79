// Engine acceptance: Docker never replays CreateNetwork/CreateEndpoint, so a
// plugin restart between a container's creation and its removal must lose
// nothing: the plugin reloads its records and teardown is still complete
// (the leak check of engineCase compares the host before and after).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPings,
  containerIp,
  docker,
  engineCase,
  engineSkipReason,
  freeSubnet,
  linksOnBridge,
  waitForBridgeLinks,
  setupEngineSuite,
} from '../helpers/engine.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

describe('engine: plugin restart', { skip }, () => {
  const plugin = setupEngineSuite();

  test('running containers keep working across a restart, new ones join, and removal afterwards leaves nothing', { timeout: TEST_TIMEOUT }, async (t) => {
    if (!plugin().canRestart) {
      t.skip('the plugin under test is run outside the harness');
      return;
    }
    await engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const early = await s.runContainer({ network: network.name });
      const peer = await s.runContainer({ network: network.name });
      await assertPings(early, peer);

      await plugin().restart();

      await assertPings(early, await containerIp(peer, network.name));
      const late = await s.runContainer({ network: network.name });
      await assertPings(late, early);
      assert.equal((await linksOnBridge(network.bridge)).length, 3);

      await docker(['rm', '-f', early, peer, late]);
      await waitForBridgeLinks(network.bridge, 0, 'every veth created before and after the restart to leave the bridge');
    });
  });

  test('a container created before a restart starts, works and is removed cleanly after it', { timeout: TEST_TIMEOUT }, async (t) => {
    if (!plugin().canRestart) {
      t.skip('the plugin under test is run outside the harness');
      return;
    }
    await engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const created = await s.runContainer({ network: network.name, createOnly: true });
      const peer = await s.runContainer({ network: network.name });

      await plugin().restart();

      await docker(['start', created]);
      await assertPings(created, peer);
      await assertPings(peer, created);

      // Restart again with endpoints live, then remove everything.
      await plugin().restart();
      await docker(['rm', '-f', created, peer]);
      await docker(['network', 'rm', network.name]);
    });
  });
});

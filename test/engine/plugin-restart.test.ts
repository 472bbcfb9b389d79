// Engine acceptance: Docker never replays CreateNetwork/CreateEndpoint, so a
// plugin restart between a container's creation and its removal must lose
// nothing: the plugin reloads its records and teardown is still complete
// (the leak check of engineCase compares the host before and after).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertPings,
  containerIp,
  docker,
  endpointIdOf,
  endpointRecordPath,
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

  test('an upgrade from a release that kept endpoint records in the state dir moves them to the run dir; nothing is lost', { timeout: TEST_TIMEOUT }, async (t) => {
    if (!plugin().canRestart) {
      t.skip('the plugin under test is run outside the harness');
      return;
    }
    const { stateDir, runDir } = plugin().dirs;
    const records = (dir: string): string[] => readdirSync(join(dir, 'endpoints')).filter((f) => f.endsWith('.json')).sort();
    await engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const first = await s.runContainer({ network: network.name });
      const second = await s.runContainer({ network: network.name });
      const ours = await Promise.all([first, second].map((name) => endpointIdOf(name, network.name)));
      for (const id of ours) assert.ok(records(runDir).includes(`${id}.json`), `endpoint ${id} recorded in the run dir`);

      // The layout of the earlier release: the same records under <stateDir>/endpoints.
      await plugin().stop();
      mkdirSync(join(stateDir, 'endpoints'), { recursive: true, mode: 0o700 });
      for (const id of ours) renameSync(endpointRecordPath({ runDir }, id), endpointRecordPath({ runDir: stateDir }, id));
      await plugin().start();

      for (const id of ours) assert.ok(records(runDir).includes(`${id}.json`), `endpoint ${id} moved back to the run dir`);
      assert.deepEqual(readdirSync(stateDir).filter((f) => f === 'endpoints'), [], 'the old endpoints dir is gone');
      await assertPings(first, await containerIp(second, network.name));
      await docker(['rm', '-f', first, second]);
      await waitForBridgeLinks(network.bridge, 0, 'the veths of the moved endpoints to leave the bridge');
      await docker(['network', 'rm', network.name]);
      for (const id of ours) assert.ok(!records(runDir).includes(`${id}.json`), `endpoint ${id}'s record removed`);
    });
  });
});

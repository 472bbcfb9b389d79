// Chaos: two docker-cni instances on one host (two driver names, two state
// dirs: e.g. a legacy and a managed plugin, an upgrade overlapping the old
// one, or test runs side by side). Garbage collection by one must never touch
// what the other made while Docker still lists it: "never touches what Docker
// lists" is the reconciler's promise.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  assertPings,
  engineSkipReason,
  ensureTestImage,
  freeSubnet,
  hostLinkExists,
  randomHex,
  hostDocker,
  killablePlugin,
  uniqueName,
} from '../../helpers/engine.js';
import { assertNoLeaks, takeSnapshot } from '../../helpers/host-snapshot.js';

const skip = await engineSkipReason();

describe('chaos: a second docker-cni instance on the same host', { skip }, () => {
  test("one instance's gc leaves the other's live links, bridge and rules alone", { timeout: 180_000 }, async () => {
    await ensureTestImage();
    const docker = hostDocker;
    const runId = randomHex(8);
    const first = await killablePlugin();
    const second = await killablePlugin();
    const before = await takeSnapshot({ dirs: [...first.watchedDirs(), ...second.watchedDirs()] });
    const network = uniqueName('chaos-twin');
    let networkCreated = false;
    try {
      await first.start();
      const subnet = await freeSubnet();
      const id = await docker.run(['network', 'create', '-d', first.driver, '--ipam-driver', first.driver, '--subnet', subnet, network]);
      networkCreated = true;
      const bridge = `dcni-${id.slice(0, 10)}`;
      const names = [uniqueName('chaos-twin-a'), uniqueName('chaos-twin-b')];
      for (const name of names) {
        await docker.run(['run', '-d', '--name', name, '--network', network, '--label', `docker-cni-chaos=${runId}`, TEST_IMAGE, ...IDLE_COMMAND]);
      }
      const [a, b] = await Promise.all(names.map((name) => docker.traceEndpoint(name, network)));
      assert.ok(a && b);
      await assertPings(a.container, b.ip);

      // The second instance knows none of it; its gc (as its startup pass would) runs against the same Docker.
      const gc = await second.gc(0);
      const touched = gc.report.actions.filter(
        (action) => action.id.includes(id.slice(0, 10)) || action.id === `dc${a.endpointId.slice(0, 13)}` || action.id === `dc${b.endpointId.slice(0, 13)}`,
      );
      assert.deepEqual(touched, [], `the second instance's gc removed the first instance's live objects`);
      assert.ok(await hostLinkExists(bridge), `bridge ${bridge} of a live network was removed`);
      await assertPings(a.container, b.ip);
      await assertPings(b.container, a.container);

      await docker.run(['rm', '-f', ...names]);
      await docker.run(['network', 'rm', network]);
      networkCreated = false;
      await first.stop();
      await assertNoLeaks(before, { dirs: [...first.watchedDirs(), ...second.watchedDirs()], settleMs: 15_000 });
    } finally {
      if (!first.running) await first.start().catch(() => undefined);
      await docker.forceRemove(await docker.containersLabelled('docker-cni-chaos', runId).catch(() => []));
      if (networkCreated) await docker.result(['network', 'rm', network]);
      await first.dispose();
      await second.dispose();
    }
  });
});

// Chaos: dockerd is SIGKILLed while several `docker run -d` are starting
// containers on a docker-cni network, then started again exactly as it had
// been started (command line, environment and cwd read back from
// /proc/<pid>/cmdline, environ and cwd; detached into its own session, i.e.
// setsid; log to a temp file). Afterwards whatever is left is removed, `docker-cni gc
// --grace-seconds 0` runs, and the host must hold nothing of the test.
//
// WHICH dockerd is killed:
//   - default: a private dockerd this test starts (own --data-root,
//     --exec-root, --pidfile and socket, --bridge none, --iptables=false), so
//     the host's dockerd and the containers of anything else running on the
//     host are left alone. The plugin reconciles against that daemon.
//   - DOCKER_CNI_CHAOS_HOST_DOCKERD=1: the host's own dockerd (found through
//     /var/run/docker.pid). This KILLS THE HOST'S DOCKERD and, without
//     live-restore, every container on it; only for a disposable host (the
//     engine tier already requires one). The test restarts it in every case.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  engineSkipReason,
  ensureTestImage,
  freeSubnet,
  killablePlugin,
  randomBetween,
  randomHex,
  sleep,
  uniqueName,
} from '../../helpers/engine.js';
import { assertNoLeaks, takeSnapshot } from '../../helpers/host-snapshot.js';
import { DaemonUnderTest } from '../../helpers/dockerd-under-test.js';
import type { CommandLine } from '../../helpers/processes.js';

const skip = await engineSkipReason();
const HOST_MODE = process.env.DOCKER_CNI_CHAOS_HOST_DOCKERD === '1';
const PARALLEL_RUNS = 6;
const ROUNDS = 2;

describe('chaos: dockerd SIGKILL while containers start', { skip }, () => {
  let daemon: DaemonUnderTest | undefined;
  let lastCommandLine: CommandLine | undefined;

  // Whatever happened above, dockerd runs again afterwards (the host one) or is gone (the private one).
  after(async () => {
    if (!daemon) return;
    try {
      await daemon.ensureRunning(lastCommandLine);
    } finally {
      await daemon.dispose();
    }
  });

  test(`SIGKILL dockerd mid-start (${ROUNDS} rounds of ${PARALLEL_RUNS} parallel runs), restart it as before: nothing leaks`, { timeout: 300_000 }, async () => {
    await ensureTestImage();
    daemon = await DaemonUnderTest.create({ host: HOST_MODE });
    if (!HOST_MODE) await daemon.startPrivate();
    const docker = daemon.docker;
    const runId = randomHex(8);
    const plugin = await killablePlugin({ dockerSocket: daemon.socket });
    const dirs = plugin.watchedDirs();
    const before = await takeSnapshot({ dirs });
    const network = uniqueName('chaos-dockerd');
    let networkCreated = false;
    try {
      await plugin.start();
      const subnet = await freeSubnet();
      await docker.run(['network', 'create', '-d', plugin.driver, '--ipam-driver', plugin.driver, '--subnet', subnet, network]);
      networkCreated = true;

      for (let round = 1; round <= ROUNDS; round++) {
        const runs = Array.from({ length: PARALLEL_RUNS }, () => {
          const name = uniqueName('chaos-dkill');
          return docker.result(['run', '-d', '--name', name, '--network', network, '--label', `docker-cni-chaos=${runId}`, TEST_IMAGE, ...IDLE_COMMAND], 120_000);
        });
        await sleep(randomBetween(300, 1500));
        lastCommandLine = await daemon.kill();
        const outcomes = await Promise.all(runs);
        const ok = outcomes.filter((o) => o.exitCode === 0).length;
        console.log(`chaos round ${round}: dockerd killed; ${ok}/${PARALLEL_RUNS} docker run calls had succeeded`);
        await daemon.launch(lastCommandLine);
        // The plugin never noticed: it kept serving through the daemon's death.
        assert.ok(plugin.running, 'the plugin died with dockerd');
      }

      const leftovers = await docker.containersLabelled('docker-cni-chaos', runId);
      console.log(`chaos: removing ${leftovers.length} container(s) left after the kills`);
      assert.deepEqual(await docker.forceRemove(leftovers), []);
      await docker.run(['network', 'rm', network]);
      networkCreated = false;

      const gc = await plugin.gc(0);
      console.log(`chaos: gc removed ${gc.report.actions.length} item(s): ${gc.report.actions.map((a) => `${a.kind} ${a.id.slice(0, 24)} (${a.reason})`).join(', ')}`);
      assert.equal(gc.report.dockerReachable, true);
      assert.deepEqual(gc.report.actions.filter((a) => a.error), [], 'gc steps failed');
      const state = await plugin.state();
      assert.deepEqual(state, { networks: [], endpoints: [], pools: [] }, 'records survived removal and gc');

      // A container that runc was creating when dockerd died can outlive dockerd's memory of it: its shim
      // and init keep running, unknown to the restarted daemon, and its netns keeps the interface Docker had
      // moved in (its host-side veth stays). That is Docker's leftover, not docker-cni's: it is reported,
      // and (private daemon only) killed before the host snapshot is compared.
      const orphans = await daemon.orphanShims();
      if (orphans.length > 0) {
        console.log(`chaos: ${orphans.length} container(s) dockerd lost track of: ${orphans.map((o) => o.containerId.slice(0, 12)).join(' ')}`);
        if (!HOST_MODE) await daemon.killShims(orphans);
      }

      await plugin.stop();
      await assertNoLeaks(before, { dirs, settleMs: 15_000 });
    } catch (err) {
      console.error(`--- plugin ${plugin.driver} log (tail) ---\n${plugin.logTail()}\n--- dockerd log (tail) ---\n${daemon.logTail()}`);
      throw err;
    } finally {
      await daemon.ensureRunning(lastCommandLine).catch((err: unknown) => console.error(`dockerd could not be restarted: ${(err as Error).message}`));
      if (!plugin.running) await plugin.start().catch(() => undefined);
      await docker.forceRemove(await docker.containersLabelled('docker-cni-chaos', runId).catch(() => []));
      if (networkCreated) await docker.result(['network', 'rm', network]);
      await plugin.dispose();
    }
  });
});

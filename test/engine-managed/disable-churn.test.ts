/**
 * The managed plugin's restart (`docker plugin disable -f` and `enable`,
 * what an upgrade does) during container churn: 50 `docker run --rm`, 4 at a
 * time, while the plugin is disabled and enabled 5 times, with a long-lived
 * container on the network throughout; not one run may fail, and nothing may
 * be left (engineCase's leak snapshot).
 *
 * What Docker does (dockerd 20.10, seen with this plugin; src/RELIABILITY.md
 * 1b): `disable -f` stops the plugin (SIGTERM; our drain answers calls in
 * flight) although the network has live endpoints. Containers keep their
 * interfaces and keep forwarding (the data path is the kernel's), the network
 * still lists them, and Docker sends no Leave or DeleteEndpoint for them.
 * libnetwork keeps the driver registered with the plugin's socket path, so a
 * run during the disabled window dials a missing socket (ENOENT) and Docker's
 * plugin client retries the full body with backoff: if the plugin is enabled
 * again within the retry budget (about 15 s here) the run succeeds, otherwise
 * it fails with `dial unix /run/docker/plugins/<id>/cni.sock: connect: no
 * such file or directory` and leaves nothing. That failure is Docker's design,
 * so here runs start only while the plugin is enabled or being enabled, and
 * each disable waits for the runs in flight to finish.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_IMAGE, assertPings, docker, dockerResult, engineCase, engineSkipReason, freeSubnet, uniqueName, waitFor, waitForBridgeLinks } from '../helpers/engine.js';
import { setupManagedEngineSuite } from './managed-plugin.js';

const RUNS = 50;
const PARALLEL = 4;
const CYCLES = 5;
const skip = await engineSkipReason();

describe('managed plugin: disable -f and enable during container churn', { skip }, () => {
  const plugin = setupManagedEngineSuite();

  test(`${RUNS} docker run --rm (${PARALLEL} at a time) across ${CYCLES} disable -f / enable cycles: zero failures, nothing left`, { timeout: 900_000 }, async () => {
    await engineCase(plugin(), async (s) => {
      const driver = plugin().driver;
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const resident = await s.runContainer({ network: network.name });
      const peer = await s.runContainer({ network: network.name });
      await assertPings(resident, peer);

      const failures: string[] = [];
      let started = 0;
      let finished = 0;
      let inFlight = 0;
      /** Closed while a disable is due or under way; runs wait at it. Checked in the same tick as inFlight++. */
      let closed = false;
      let gate: Promise<void> = Promise.resolve();
      let openGate = (): void => undefined;

      const worker = async (): Promise<void> => {
        for (;;) {
          while (closed) await gate;
          if (started >= RUNS) return;
          started++;
          inFlight++;
          const name = uniqueName('cnit-dchurn');
          s.defer(`docker rm -f ${name}`, () => dockerResult(['rm', '-f', name]));
          const r = await dockerResult(['run', '--rm', '--name', name, '--network', network.name, '--label', 'docker-cni-test=1', TEST_IMAGE, 'true'], 180_000);
          if (r.exitCode !== 0) failures.push(`${name}: ${(r.stderr || r.stdout).trim()}`);
          inFlight--;
          finished++;
        }
      };
      const cycler = async (): Promise<number> => {
        let cycles = 0;
        for (let i = 0; i < CYCLES; i++) {
          // Spread the cycles over the churn.
          const target = Math.min(RUNS, Math.floor(((i + 1) * RUNS) / (CYCLES + 1)));
          await waitFor(async () => finished >= target, { what: `${target} runs to finish`, timeoutMs: 600_000, intervalMs: 50 });
          closed = true;
          gate = new Promise((resolve) => (openGate = resolve));
          await waitFor(async () => inFlight === 0, { what: 'runs in flight to finish before the disable', timeoutMs: 300_000, intervalMs: 20 });
          await docker(['plugin', 'disable', '-f', driver], 120_000);
          assert.equal(await docker(['plugin', 'inspect', '-f', '{{.Enabled}}', driver]), 'false');
          // Disabled: the resident containers still forward.
          await assertPings(resident, peer);
          const enabling = docker(['plugin', 'enable', driver], 120_000);
          closed = false;
          openGate();
          await enabling;
          cycles++;
        }
        return cycles;
      };
      const [cycles] = await Promise.all([cycler(), ...Array.from({ length: PARALLEL }, worker)]);
      console.log(`disable churn: ${finished} runs, ${cycles} disable/enable cycles, ${failures.length} failed`);
      assert.equal(cycles, CYCLES);
      assert.equal(finished, RUNS);
      assert.deepEqual(failures, [], `docker run failed across disable/enable:\n${failures.join('\n')}`);

      await assertPings(resident, peer);
      await assertPings(peer, resident);
      await docker(['rm', '-f', resident, peer]);
      await waitForBridgeLinks(network.bridge, 0, 'every veth to leave the bridge');
      await docker(['network', 'rm', network.name]);
    });
  });
});

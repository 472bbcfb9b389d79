// Goal of the restart work (src/RELIABILITY.md, "Restarts"): containers start
// and stop while the plugin is restarted with SIGTERM (on the managed tier:
// disabled and enabled), and not one `docker run` fails. Docker's plugin
// client resends a call whose connection broke with an EMPTY body, so a
// restart that cuts a connection shows up here as a failed run; one that only
// refuses dials is retried by Docker with the full body. engineCase compares
// the host before and after, so nothing may be left either.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_IMAGE,
  dockerResult,
  engineCase,
  engineSkipReason,
  freeSubnet,
  setupEngineSuite,
  uniqueName,
} from '../helpers/engine.js';

const RUNS = 50;
/** Runs continue past RUNS until every restart happened, but never beyond this. */
const MAX_RUNS = 150;
const RESTARTS = 10;
const PARALLEL = 4;
const skip = await engineSkipReason();

describe('engine: restarts during container churn', { skip }, () => {
  const plugin = setupEngineSuite();

  test(`${RUNS} docker run --rm (${PARALLEL} at a time) while the plugin restarts ${RESTARTS} times: zero failures, nothing left`, { timeout: 900_000 }, async (t) => {
    if (!plugin().canRestart) {
      t.skip('the plugin under test is run outside the harness');
      return;
    }
    await engineCase(plugin(), async (s) => {
      const network = await s.createNetwork({ subnet: await freeSubnet() });
      const failures: string[] = [];
      let started = 0;
      let finished = 0;
      let restarts = 0;
      let restarting = true;

      const worker = async (): Promise<void> => {
        while (started < MAX_RUNS && (started < RUNS || restarting)) {
          started++;
          const name = uniqueName('cnit-churn');
          s.defer(`docker rm -f ${name}`, () => dockerResult(['rm', '-f', name]));
          const r = await dockerResult(['run', '--rm', '--name', name, '--network', network.name, '--label', 'docker-cni-test=1', TEST_IMAGE, 'true'], 180_000);
          if (r.exitCode !== 0) failures.push(`${name}: ${(r.stderr || r.stdout).trim()}`);
          finished++;
        }
      };
      const restarter = async (): Promise<void> => {
        try {
          for (let i = 0; i < RESTARTS; i++) {
            // Spread the restarts over the churn: wait for a few runs to finish first.
            const target = finished + 2;
            while (finished < target && started < MAX_RUNS) await new Promise((resolve) => setTimeout(resolve, 50));
            await plugin().restart();
            restarts++;
          }
        } finally {
          restarting = false;
        }
      };
      await Promise.all([restarter(), ...Array.from({ length: PARALLEL }, worker)]);
      console.log(`restart churn: ${finished} runs, ${restarts} restarts, ${failures.length} failed`);
      assert.equal(restarts, RESTARTS);
      assert.ok(finished >= RUNS);
      assert.deepEqual(failures, [], `docker run failed during restarts:\n${failures.join('\n')}`);
    });
  });
});

// Chaos: the plugin is SIGKILLed at random moments (30+ times) while a
// workload keeps creating and removing containers on two docker-cni networks,
// one on docker-cni's IPAM and one on Docker's. Docker calls made while the
// plugin is down may fail; that is expected and only recorded. What must hold
// afterwards (after a restart and `docker-cni gc --grace-seconds 0`):
//   - every container still running has working networking;
//   - every removed container left nothing (link, netns, rules, host-local
//     reservation, CNI cache entry, endpoint record);
//   - the small (/28) subnets did not run out: a final batch still gets addresses;
//   - removing everything brings the host back to the snapshot taken before.
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  assertPings,
  engineSkipReason,
  ensureTestImage,
  freeSubnet,
  hostInSubnet,
  linksOnBridge,
  randomHex,
  sleep,
  hostDocker,
  killablePlugin,
  mapLimit,
  randomBetween,
  uniqueName,
  endpointRecordPath,
  waitFor,
  type EndpointTrace,
} from '../../helpers/engine.js';
import { assertNoLeaks, takeSnapshot } from '../../helpers/host-snapshot.js';
import { leftoversOf, pingDiagnostics, readRules } from '../../helpers/leftovers.js';
import { orphanStagingNetns } from '../../helpers/processes.js';

const skip = await engineSkipReason();

const KILLS = 32;
const MIN_CONTAINERS = 24;
/** Per network: bounds the workload whatever the timing. */
const MAX_CONTAINERS_PER_NETWORK = 60;
const LIVE_CAP_PER_NETWORK = 4;
/** A /28 has 13 usable addresses besides the gateway; the final batch fills a network up to this. */
const FINAL_FILL_PER_NETWORK = 10;
const CHAOS_BUDGET_MS = 240_000;
const TEST_TIMEOUT_MS = 480_000;
const CHAOS_LABEL = 'docker-cni-chaos';

interface ChaosNetwork {
  name: string;
  id: string;
  subnet: string;
  ourIpam: boolean;
  bridge: string;
  live: EndpointTrace[];
}

interface Outcome {
  op: 'run' | 'rm';
  container: string;
  network: string;
  ok: boolean;
  ms: number;
  pluginUp: boolean;
  error?: string;
}

describe('chaos: plugin SIGKILL under a container workload', { skip }, () => {
  test('30+ random kills: survivors work, removed containers leave nothing, no leaks, no exhaustion', { timeout: TEST_TIMEOUT_MS }, async () => {
    await ensureTestImage();
    const docker = hostDocker;
    const runId = randomHex(8);
    const plugin = await killablePlugin();
    const snapshotOptions = { dirs: plugin.watchedDirs() };
    const before = await takeSnapshot(snapshotOptions);
    const networks: ChaosNetwork[] = [];
    const outcomes: Outcome[] = [];
    const removed: EndpointTrace[] = [];
    const startedAt = Date.now();
    try {
      await plugin.start();
      for (const ourIpam of [true, false]) {
        const subnet = (await freeSubnet()).replace(/\.0\/24$/, '.0/28');
        const name = uniqueName(ourIpam ? 'chaos-own' : 'chaos-dflt');
        const args = ['network', 'create', '-d', plugin.driver, '--subnet', subnet];
        if (ourIpam) args.push('--ipam-driver', plugin.driver);
        const id = await docker.run([...args, name]);
        networks.push({ name, id, subnet, ourIpam, bridge: `dcni-${id.slice(0, 10)}`, live: [] });
      }

      // ---- the chaos phase ----------------------------------------------------
      const deadline = Date.now() + CHAOS_BUDGET_MS;
      let killerDone = false;
      let created = 0;
      const startFailures: string[] = [];
      const killedPids = new Set<number>();

      const killer = async (): Promise<void> => {
        while (plugin.kills < KILLS && Date.now() < deadline) {
          await sleep(randomBetween(300, 2500));
          if (plugin.pid !== undefined) killedPids.add(plugin.pid);
          await plugin.kill();
          await sleep(randomBetween(100, 1500));
          try {
            await plugin.start();
          } catch (err) {
            startFailures.push((err as Error).message);
            await sleep(500);
            await plugin.start();
          }
        }
        killerDone = true;
      };

      const runOne = async (network: ChaosNetwork): Promise<void> => {
        const container = uniqueName('chaos-ctr');
        const pluginUp = plugin.running;
        const t0 = Date.now();
        const r = await docker.result(
          ['run', '-d', '--name', container, '--network', network.name, '--label', 'docker-cni-test=1', '--label', `${CHAOS_LABEL}=${runId}`, TEST_IMAGE, ...IDLE_COMMAND],
          90_000,
        );
        created++;
        const outcome: Outcome = { op: 'run', container, network: network.name, ok: r.exitCode === 0, ms: Date.now() - t0, pluginUp };
        if (r.exitCode === 0) {
          try {
            network.live.push(await docker.traceEndpoint(container, network.name));
          } catch (err) {
            outcome.ok = false;
            outcome.error = `started but not traceable: ${(err as Error).message}`;
            await docker.forceRemove([container]);
          }
        } else {
          outcome.error = (r.timedOut ? 'timed out ' : '') + (r.stderr || r.stdout);
          // A failed start can leave the container created; it holds no endpoint, but must go.
          await docker.forceRemove([container]);
        }
        outcomes.push(outcome);
      };

      const removeOne = async (network: ChaosNetwork): Promise<void> => {
        const index = Math.floor(Math.random() * network.live.length);
        const [trace] = network.live.splice(index, 1);
        if (!trace) return;
        const pluginUp = plugin.running;
        const t0 = Date.now();
        const r = await docker.result(['rm', '-f', trace.container], 90_000);
        const ok = r.exitCode === 0;
        outcomes.push({ op: 'rm', container: trace.container, network: network.name, ok, ms: Date.now() - t0, pluginUp, ...(ok ? {} : { error: r.stderr }) });
        if (ok) removed.push(trace);
        else network.live.push(trace);
      };

      const worker = async (network: ChaosNetwork): Promise<void> => {
        let mine = 0;
        while (Date.now() < deadline && mine < MAX_CONTAINERS_PER_NETWORK && !(killerDone && created >= MIN_CONTAINERS)) {
          const grow = network.live.length < 2 || (network.live.length < LIVE_CAP_PER_NETWORK && Math.random() < 0.6);
          if (grow) {
            await runOne(network);
            mine++;
          } else {
            await removeOne(network);
          }
          await sleep(randomBetween(0, 300));
        }
      };

      await Promise.all([killer(), ...networks.map((n) => worker(n))]);
      const chaosMs = Date.now() - startedAt;
      const failedCalls = outcomes.filter((o) => !o.ok);
      console.log(
        `chaos: ${plugin.kills} kills, ${created} containers created, ${removed.length} removed, ` +
          `${failedCalls.length}/${outcomes.length} docker calls failed, ${chaosMs} ms`,
      );
      for (const o of failedCalls) console.log(`  failed ${o.op} ${o.container} (plugin ${o.pluginUp ? 'up' : 'down'} at start, ${o.ms} ms): ${o.error?.slice(0, 700)}`);
      assert.ok(plugin.kills >= 30, `only ${plugin.kills} kills within the time budget`);
      assert.ok(created >= 20, `only ${created} containers created within the time budget`);
      assert.deepEqual(startFailures, [], 'the plugin failed to start after a kill');

      // ---- recovery -----------------------------------------------------------
      if (plugin.pid !== undefined) killedPids.add(plugin.pid);
      await plugin.kill();
      await plugin.start();
      // Every staging netns of a killed instance is gone: the restart removed them.
      const orphans = orphanStagingNetns().filter((name) => killedPids.has(Number(name.split('-')[2])));
      assert.deepEqual(orphans, [], 'staging namespaces of killed plugin processes survived the restart');
      const recoveries = (plugin.logTail(100_000).match(/interrupted by a restart/g) ?? []).length;
      console.log(`chaos: the plugin log shows ${recoveries} interrupted endpoint operation(s) finished by recovery`);

      // The container set Docker ends up with is the truth: a `docker run` whose client failed may still have started.
      const labelled = await docker.run(['ps', '-a', '--no-trunc', '--filter', `label=${CHAOS_LABEL}=${runId}`, '--format', '{{.Names}} {{.State}} {{.Networks}}']);
      const notRunning: string[] = [];
      for (const network of networks) network.live = [];
      for (const line of labelled.split('\n').filter(Boolean)) {
        const [name = '', state = '', networkName = ''] = line.split(' ');
        const network = networks.find((n) => n.name === networkName);
        if (state !== 'running' || !network) {
          notRunning.push(name);
          continue;
        }
        network.live.push(await docker.traceEndpoint(name, network.name));
      }
      if (notRunning.length > 0) console.log(`chaos: removing ${notRunning.length} container(s) left not running: ${notRunning.join(' ')}`);
      assert.deepEqual(await docker.forceRemove(notRunning), []);

      const gc = await plugin.gc(0);
      console.log(`chaos: gc --grace-seconds 0 removed ${gc.report.actions.length} item(s): ${gc.report.actions.map((a) => `${a.kind} ${a.id.slice(0, 24)}`).join(', ')}`);
      assert.equal(gc.report.dockerReachable, true);
      assert.deepEqual(gc.report.actions.filter((a) => a.error), [], 'gc steps failed');
      assert.equal(gc.exitCode, 0);

      // ---- survivors work -----------------------------------------------------
      const live = networks.flatMap((n) => n.live);
      const liveIps = new Set(live.map((t) => t.ip));
      const pingProblems: string[] = [];
      await mapLimit(live, 3, async (trace) => {
        const network = networks.find((n) => n.name === trace.network);
        const peer = network?.live.find((t) => t.container !== trace.container);
        try {
          if (peer) {
            await assertPings(trace.container, peer.ip, 15_000);
            await assertPings(trace.container, peer.container, 15_000);
          } else {
            await assertPings(trace.container, hostInSubnet(network?.subnet ?? '', 1), 15_000);
          }
        } catch (err) {
          pingProblems.push(`${(err as Error).message}\n${await pingDiagnostics(docker, trace, peer, network?.bridge ?? '')}`);
        }
      });
      assert.deepEqual(pingProblems, [], 'surviving containers lost networking');

      // ---- removed containers left nothing --------------------------------------
      // Docker does not wait for the teardowns DeleteEndpoint sets off; each one removes its endpoint record last.
      // A record still there after the wait is reported below with everything else that was left.
      const recordOf = (trace: EndpointTrace): string => endpointRecordPath(plugin.dirs, trace.endpointId);
      const teardownsDone = async (): Promise<boolean> => removed.every((trace) => !existsSync(recordOf(trace)));
      await waitFor(teardownsDone, { timeoutMs: 20_000, what: 'the removed containers\' teardowns' }).catch(() => undefined);
      const rules = await readRules();
      const leftovers = (await mapLimit(removed, 4, (trace) => leftoversOf(trace, { plugin, liveIps, rules }))).flat();
      assert.deepEqual(leftovers, [], 'removed containers left state behind');

      // What is recorded, cached, reserved and attached is exactly what runs (this also covers failed runs).
      const state = await plugin.state();
      const liveEndpointIds = live.map((t) => t.endpointId).sort();
      assert.deepEqual(state.endpoints.map((e) => e.id).sort(), liveEndpointIds, 'endpoint records differ from the running containers');
      assert.ok(state.endpoints.every((e) => e.status === 'ready'), 'an endpoint record is not ready');
      // Each running container has one host-side veth on its bridge; a leaked endpoint would leave one more.
      for (const network of networks) {
        const ports = await linksOnBridge(network.bridge);
        assert.equal(ports.length, network.live.length, `${network.bridge} has ports ${ports.join(' ')} for ${network.live.length} running container(s)`);
      }

      // ---- the subnets did not run out --------------------------------------------
      const finalBatch: string[] = [];
      for (const network of networks) {
        const missing = FINAL_FILL_PER_NETWORK - network.live.length;
        for (let i = 0; i < missing; i++) {
          const container = uniqueName('chaos-fill');
          finalBatch.push(container);
          await docker.run(['run', '-d', '--name', container, '--network', network.name, '--label', 'docker-cni-test=1', '--label', `${CHAOS_LABEL}=${runId}`, TEST_IMAGE, ...IDLE_COMMAND]);
          network.live.push(await docker.traceEndpoint(container, network.name));
        }
        const ips = network.live.map((t) => t.ip);
        assert.equal(new Set(ips).size, ips.length, `duplicate addresses on ${network.name}: ${ips.join(' ')}`);
      }
      const sample = networks.map((n) => n.live.at(-1)).filter((t): t is EndpointTrace => !!t);
      for (const trace of sample) {
        const peer = networks.find((n) => n.name === trace.network)?.live[0];
        if (peer && peer.container !== trace.container) await assertPings(trace.container, peer.container, 15_000);
      }

      // ---- remove everything: the host is back where it was ---------------------
      const everything = await docker.containersLabelled(CHAOS_LABEL, runId);
      const removals = await Promise.allSettled(everything.map((id) => docker.run(['rm', '-f', id])));
      assert.deepEqual(removals.filter((r) => r.status === 'rejected'), []);
      for (const network of networks) await docker.run(['network', 'rm', network.name]);
      networks.length = 0;
      await plugin.stop();
      await assertNoLeaks(before, { ...snapshotOptions, settleMs: 15_000 });
      console.log(`chaos: plugin-kill test finished in ${Date.now() - startedAt} ms`);
    } catch (err) {
      console.error(`--- plugin ${plugin.driver} log (tail; whole log at ${plugin.logFile} with DOCKER_CNI_TEST_KEEP=1) ---\n${plugin.logTail()}`);
      throw err;
    } finally {
      const leftover = await docker.containersLabelled(CHAOS_LABEL, runId).catch(() => []);
      if (leftover.length > 0 || networks.length > 0) {
        if (!plugin.running) await plugin.start().catch(() => undefined);
        await docker.forceRemove(leftover);
        for (const network of networks) await docker.result(['network', 'rm', network.name]);
      }
      await plugin.dispose();
    }
  });
});

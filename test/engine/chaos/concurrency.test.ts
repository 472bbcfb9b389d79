// Concurrency: many containers started and removed at once.
//   - 50 `docker run -d` at the same moment on one network (docker-cni IPAM);
//   - 10 networks (half on docker-cni's IPAM, half on Docker's) × 5
//     containers, all 50 at the same moment (the networks are created one
//     by one, see below; networks are removed in parallel).
// Zero failures, no duplicate or out-of-subnet addresses, sampled pings by IP
// and by name inside every network, then everything removed in parallel and
// the host back where it was (engineCase's leak snapshot).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  assertPings,
  cidrContains,
  docker,
  dockerResult,
  engineCase,
  engineSkipReason,
  freeSubnet,
  linksOnBridge,
  randomHex,
  setupEngineSuite,
  uniqueName,
  type CreatedNetwork,
  type EngineScope,
  mapLimit,
  removeNetwork,
  waitForBridgeLinks,
} from '../../helpers/engine.js';
import { networkDiagnostics } from '../../helpers/leftovers.js';

const skip = await engineSkipReason();
const LABEL = 'docker-cni-chaos';

interface Placed {
  name: string;
  network: string;
  ip: string;
}

/** Starts every container at once; returns failures instead of throwing on the first. */
async function runAllAtOnce(scope: EngineScope, runId: string, wanted: Array<{ name: string; network: string }>): Promise<string[]> {
  for (const { name } of wanted) scope.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
  const outcomes = await Promise.all(
    wanted.map(({ name, network }) =>
      dockerResult(['run', '-d', '--name', name, '--network', network, '--label', `${LABEL}=${runId}`, TEST_IMAGE, ...IDLE_COMMAND], 240_000),
    ),
  );
  return outcomes.flatMap((o, i) => (o.exitCode === 0 ? [] : [`${wanted[i]?.name}: ${o.timedOut ? 'timed out ' : ''}${o.stderr}`]));
}

/** Every container's address on each network, from one `docker inspect`. */
async function placements(names: readonly string[]): Promise<Placed[]> {
  const out = await docker(['inspect', '-f', '{{.Name}}{{range $net, $ep := .NetworkSettings.Networks}} {{$net}}={{$ep.IPAddress}}{{end}}', ...names]);
  return out.split('\n').flatMap((line) => {
    const [rawName = '', ...pairs] = line.trim().split(' ');
    return pairs.map((pair) => {
      const [network = '', ip = ''] = pair.split('=');
      return { name: rawName.replace(/^\//, ''), network, ip };
    });
  });
}

function assertDistinctAddresses(placed: readonly Placed[], subnets: ReadonlyMap<string, string>): void {
  const byNetwork = new Map<string, string[]>();
  for (const p of placed) byNetwork.set(p.network, [...(byNetwork.get(p.network) ?? []), p.ip]);
  for (const [network, ips] of byNetwork) {
    assert.ok(ips.every(Boolean), `a container on ${network} has no address: ${ips.join(' ')}`);
    const duplicates = ips.filter((ip, i) => ips.indexOf(ip) !== i);
    assert.deepEqual(duplicates, [], `duplicate addresses on ${network}`);
    const subnet = subnets.get(network);
    if (subnet) assert.ok(ips.every((ip) => cidrContains(subnet, ip)), `addresses outside ${subnet} on ${network}: ${ips.join(' ')}`);
  }
}

/**
 * Removes every container at once; then their links must leave the bridges.
 * DeleteEndpoint answers once the teardown is journaled and the chain's DEL
 * finishes in the background, so under a 50-wide burst the last links leave a
 * little after `docker rm` returns: they get a bounded wait, not an instant check.
 */
async function removeAllAtOnce(names: readonly string[], networks: readonly CreatedNetwork[]): Promise<void> {
  const outcomes = await Promise.all(names.map((name) => dockerResult(['rm', '-f', name], 240_000)));
  assert.deepEqual(outcomes.filter((o) => o.exitCode !== 0).map((o) => o.stderr), [], 'parallel removal failed');
  const removedAt = Date.now();
  for (const network of networks) await waitForBridgeLinks(network.bridge, 0, `links to leave ${network.bridge}`, 60_000);
  console.log(`concurrency: the last links left the bridges ${Date.now() - removedAt} ms after the last removal returned`);
}

describe('chaos: concurrency', { skip }, () => {
  const plugin = setupEngineSuite();

  test('50 containers started at once on one network', { timeout: 420_000 }, async () => {
    await engineCase(plugin(), async (s) => {
      const runId = randomHex(8);
      const subnet = await freeSubnet();
      const network = await s.createNetwork({ subnet });
      const wanted = Array.from({ length: 50 }, () => ({ name: uniqueName('chaos-c50'), network: network.name }));
      const t0 = Date.now();
      assert.deepEqual(await runAllAtOnce(s, runId, wanted), [], 'some of the 50 parallel runs failed');
      console.log(`concurrency: 50 containers on one network started in ${Date.now() - t0} ms`);

      const placed = await placements(wanted.map((w) => w.name));
      assert.equal(placed.length, 50);
      assertDistinctAddresses(placed, new Map([[network.name, subnet]]));
      assert.equal((await linksOnBridge(network.bridge)).length, 50);

      // A sample of pairs, by address and by name (Docker's DNS).
      const pairs = Array.from({ length: 8 }, (_, i) => [placed[i * 6], placed[(i * 6 + 25) % 50]] as const);
      await mapLimit(pairs, 4, async ([from, to]) => {
        if (!from || !to) return;
        try {
          await assertPings(from.name, to.ip, 15_000);
          await assertPings(from.name, to.name, 15_000);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${await networkDiagnostics(network.id, network.bridge)}`, { cause: err });
        }
      });

      const t1 = Date.now();
      await removeAllAtOnce(wanted.map((w) => w.name), [network]);
      console.log(`concurrency: 50 containers removed in parallel in ${Date.now() - t1} ms`);
      await removeNetwork(network.name);
    }, { settleMs: 20_000 });
  });

  test('10 networks × 5 containers started at once', { timeout: 420_000 }, async () => {
    await engineCase(plugin(), async (s) => {
      const runId = randomHex(8);
      const subnets = await Promise.all(Array.from({ length: 10 }, () => freeSubnet()));
      // Networks one after another: dockerd's own FORWARD -> DOCKER-USER jump
      // upkeep races with itself under parallel `network create` and leaves
      // duplicate jumps (Docker's, not ours; the leak check would flag them).
      const networks: CreatedNetwork[] = [];
      for (const [i, subnet] of subnets.entries()) {
        networks.push(await s.createNetwork({ subnet, ...(i % 2 === 0 ? {} : { ipamDriver: null }) }));
      }
      const subnetOf = new Map(networks.map((n, i) => [n.name, subnets[i] ?? '']));
      const wanted = networks.flatMap((network) => Array.from({ length: 5 }, () => ({ name: uniqueName('chaos-c10'), network: network.name })));
      const t0 = Date.now();
      assert.deepEqual(await runAllAtOnce(s, runId, wanted), [], 'some of the 50 parallel runs failed');
      console.log(`concurrency: 10 networks × 5 containers started in ${Date.now() - t0} ms`);

      const placed = await placements(wanted.map((w) => w.name));
      assert.equal(placed.length, 50);
      assertDistinctAddresses(placed, subnetOf);
      for (const network of networks) assert.equal((await linksOnBridge(network.bridge)).length, 5, `links on ${network.bridge}`);

      // Inside every network: the first container reaches the second by name and the last by address.
      await mapLimit(networks, 3, async (network) => {
        const members = placed.filter((p) => p.network === network.name);
        const [first, second] = members;
        const last = members.at(-1);
        if (!first || !second || !last) throw new Error(`too few containers on ${network.name}`);
        try {
          await assertPings(first.name, second.name, 15_000);
          await assertPings(first.name, last.ip, 15_000);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${await networkDiagnostics(network.id, network.bridge)}`, { cause: err });
        }
      });

      const t1 = Date.now();
      await removeAllAtOnce(wanted.map((w) => w.name), networks);
      const removals = await Promise.allSettled(networks.map((n) => removeNetwork(n.name)));
      assert.deepEqual(removals.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])), [], 'parallel network removal failed');
      console.log(`concurrency: 50 containers and 10 networks removed in parallel in ${Date.now() - t1} ms`);
    }, { settleMs: 20_000 });
  });
});

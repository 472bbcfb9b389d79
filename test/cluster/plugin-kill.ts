/**
 * Host2's docker-cni SIGKILLed while containers are being started and
 * removed there (the tier's plugins reconcile every 10 s). dockerd restarts a managed plugin whose process exits (the
 * test checks it does); once the churn is over every container is removed,
 * and host2 keeps no address (local state, etcd), link, route or netns of
 * them, while the containers on host1 and host3 keep reaching each other.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { etcdGet } from './etcd.js';
import { pluginLeftovers } from './leftovers.js';
import { pluginPid, stagingLinks } from './plugin-proc.js';
import { dk, inHost, SIM_DIR, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, localAddresses, PLUGIN, reach, RECONCILE_GRACE_MS, RECONCILE_MS, removeAll, removeSpanning, spanning } from './span.js';

const HOST = 2;
const WORKERS = 3;
const PER_WORKER = 8;
const CHURN_MS = 90_000;

interface Churn {
  names: string[];
  started: number;
  failed: string[];
}

/** One worker: run then remove, up to PER_WORKER times or until the deadline. */
async function churnWorker(w: number, net: string, deadline: number, churn: Churn): Promise<void> {
  for (let k = 0; k < PER_WORKER && Date.now() < deadline; k++) {
    const name = `churn-${w}-${k}`;
    churn.names.push(name);
    await dk(HOST, ['run', '-d', '--name', name, '--network', net, TEST_IMAGE, 'sleep', '600'], 60_000).then(
      () => void churn.started++,
      (err: Error) => void churn.failed.push(err.message.split('\n')[0] ?? ''),
    );
    await dk(HOST, ['rm', '-f', name], 60_000).catch(() => undefined);
  }
}

/** Host links (`dc<13 hex>`) in host i's netns: made by CreateEndpoint, gone once Docker moved them into the container. */
const hostLinks = async (i: number): Promise<string[]> =>
  (await inHost(i, 'ip', ['-br', 'link'])).split('\n').filter((l) => /^dc[0-9a-f]{13}[@\s]/.test(l));

const dockerNetns = async (i: number): Promise<string[]> =>
  (await readdir(join(SIM_DIR, `host${i}`, 'exec', 'netns')).catch(() => [] as string[])).sort();

export async function pluginKilled(t: TestContext): Promise<void> {
  const net = 'span-churn';
  const subnet = '10.233.16.0/24';
  const steady = [
    { host: 1, name: 'churn-steady1' },
    { host: 3, name: 'churn-steady3' },
  ];
  const after = { host: HOST, name: 'churn-after' };
  const churn: Churn = { names: [], started: 0, failed: [] };
  await spanning(net, subnet, ['-o', 'cni.cluster.mode=routed']);
  const createdAt = Date.now();
  try {
    await Promise.all(steady.map((c) => dk(c.host, ['run', '-d', '--name', c.name, '--network', net, TEST_IMAGE, 'sleep', '600'])));
    const steadyIps = await Promise.all(steady.map((c) => ipOf(c.host, c.name, net)));
    await reach(1, steady[0]!.name, steadyIps[1]!, 'host1 -> host3 before the kill');
    const netnsBefore = await dockerNetns(HOST);
    const victim = await pluginPid(HOST);
    assert.ok(victim, 'host2 plugin process found');

    const deadline = Date.now() + CHURN_MS;
    const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => churnWorker(w, net, deadline, churn)));
    await waitFor('churn under way', async () => churn.started >= 2, 60_000);
    // Aim the kill into an attachment: a host link exists from CreateEndpoint until Docker moves it at Join.
    // Polled back to back (each `ip` call takes a few ms), bounded by count and time.
    let midCall = false;
    for (let n = 0, end = Date.now() + 20_000; n < 2000 && Date.now() < end && !midCall; n++) midCall = (await hostLinks(HOST)).length > 0;
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    t.diagnostic(`SIGKILLed host2's plugin (pid ${victim}) after ${churn.started} runs${midCall ? ', with a host link mid-attachment' : ''}`);
    await workers;
    const back = await waitFor('dockerd restarts the plugin', async () => {
      const pid = await pluginPid(HOST);
      return pid !== undefined && pid !== victim ? pid : undefined;
    }, 60_000);
    t.diagnostic(
      `plugin back as pid ${back} (${Math.round((Date.now() - killedAt) / 1000)} s after the kill at most); ` +
        `churn: ${churn.started} runs ok, ${churn.failed.length} failed${churn.failed[0] ? ` (first: ${churn.failed[0]})` : ''}`,
    );
    assert.equal(await dk(HOST, ['plugin', 'inspect', '-f', '{{.Enabled}}', PLUGIN]), 'true');

    // The plugin works again on host2: a new container reaches host1 and host3.
    await dk(HOST, ['run', '-d', '--name', after.name, '--network', net, TEST_IMAGE, 'sleep', '600']);
    for (const ip of steadyIps) await reach(HOST, after.name, ip, `${after.name} -> ${ip}`);
    await removeAll([...churn.names.map((name) => ({ host: HOST, name })), after]);
    assert.equal(await dk(HOST, ['ps', '-aq', '--filter', 'name=churn-[0-9]']), '', 'no churn container left');

    // host2 had no other container: Docker removes the network there, and the host gives its pool back. An address
    // handed out just before the kill, whose ReleaseAddress Docker could not deliver, is freed by the reconciler once
    // it is older than its grace period (60 s), and the pool then goes back.
    await waitFor('host2 records no address', async () => (await localAddresses(HOST, subnet)).length === 0, 150_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; left: ${(await localAddresses(HOST, subnet)).join(' ')}`);
    });
    const blocks = new ClusterKeys().blocksPrefix(clusterPoolId(subnet));
    const host2Blocks = async (): Promise<string[]> =>
      (await etcdGet(blocks)).filter((kv) => (JSON.parse(kv.value) as { host: string }).host === `host${HOST}`).map((kv) => kv.key);
    await waitFor('no block of host2 left in etcd', async () => (await host2Blocks()).length === 0, 60_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; left: ${(await host2Blocks()).join(' ')}`);
    });
    // A CreateEndpoint cut off by the kill leaves its host link: the restarted plugin's background
    // reconciler removes it once it has been an orphan for its grace period (60 s).
    await waitFor('no link or route of docker-cni left on host2', async () => (await pluginLeftovers(HOST)).length === 0, 150_000).catch(
      async (err: Error) => {
        throw new Error(`${err.message}; left: ${(await pluginLeftovers(HOST)).join(', ')}`);
      },
    );
    // dockerd unmounts a removed sandbox's netns at once but deletes its file in a garbage collection every
    // minute (so earlier tests' files may still be in netnsBefore, and go meanwhile).
    const added = async (): Promise<string[]> => (await dockerNetns(HOST)).filter((n) => !netnsBefore.includes(n));
    await waitFor('no container netns left on host2', async () => (await added()).length === 0, 150_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; left: ${(await added()).join(' ')}`);
    });
    assert.deepEqual(await stagingLinks(HOST), [], "no half-made link in host2 plugin's staging netns");

    // The other hosts never noticed, even once the reconcilers have looked at the (swarm-scoped) network past their
    // grace period: a network they failed to find in Docker's list would be torn down then. It is torn down once it
    // is older than the grace period and has been missing for as long, from a pass at most one interval after its
    // creation: by the pass after createdAt + grace + interval at the latest, and one more interval gives the margin.
    const settled = createdAt + RECONCILE_GRACE_MS + 3 * RECONCILE_MS;
    if (Date.now() < settled) await new Promise((r) => setTimeout(r, settled - Date.now()));
    for (const [n, c] of steady.entries()) assert.ok((await localAddresses(c.host, subnet)).includes(steadyIps[n]!), `${c.name} keeps its address`);
    await reach(1, steady[0]!.name, steadyIps[1]!, 'host1 -> host3 after the churn');
    await reach(3, steady[1]!.name, steadyIps[0]!, 'host3 -> host1 after the churn');
  } finally {
    await removeAll([...steady, after, ...churn.names.map((name) => ({ host: HOST, name }))]);
    await removeSpanning(net);
  }
}

/**
 * A swarm service on a spanning routed network: 3 replicas, one per host,
 * endpoint mode dnsrr (the kernel has no IPVS, so no VIP). A client started
 * with `docker run --network` resolves `tasks.<svc>` to the 3 task addresses
 * through Docker's embedded DNS and pings each. What else Docker's DNS answers
 * on a plugin network (the service name, task and container names across
 * hosts) is reported as a diagnostic. Removing the service and the network
 * leaves nothing in etcd, in the hosts' pool state or on the hosts.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { cidrContains, parseCidr, parseIp } from '../../src/util/ip-math.js';
import { etcdGet } from './etcd.js';
import { pluginLeftovers } from './leftovers.js';
import { dk, HOSTS, TEST_IMAGE, waitFor } from './sim.js';
import { ipOf, localAddresses, reach, removeAll, removeSpanning, spanning } from './span.js';

const SVC = 'dnsrr-svc';

/** The addresses of `name` inside `subnet` as Docker's embedded DNS answers them in `container` (none when it does not resolve). */
export async function resolve(host: number, container: string, name: string, subnet: string): Promise<string[]> {
  const out = await dk(host, ['exec', container, 'nslookup', name]).catch(() => '');
  const pool = parseCidr(subnet)!.cidr;
  const found = (out.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? []).filter((ip) => {
    const addr = parseIp(ip);
    return addr !== undefined && cidrContains(pool, addr);
  });
  return [...new Set(found)].sort();
}

/** Host i's running task container of the service (id and name), if any. */
async function taskOn(i: number): Promise<{ id: string; name: string } | undefined> {
  const out = await dk(i, ['ps', '--filter', `label=com.docker.swarm.service.name=${SVC}`, '--format', '{{.ID}} {{.Names}}']);
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) return undefined;
  const [id, name] = lines[0]!.split(' ');
  return id && name ? { id, name } : undefined;
}

export async function swarmService(t: TestContext): Promise<void> {
  const net = 'span-svc';
  const subnet = '10.233.15.0/24';
  const client = { host: 2, name: 'svc-client' };
  await spanning(net, subnet, ['-o', 'cni.cluster.mode=routed']);
  try {
    await dk(1, [
      'service', 'create', '--detach', '--no-resolve-image', '--name', SVC, '--network', net, '--endpoint-mode', 'dnsrr',
      '--replicas', '3', '--replicas-max-per-node', '1', TEST_IMAGE, 'sleep', '600',
    ]);
    const tasks = await waitFor(
      'one running task of the service on every host',
      async () => {
        const found = await Promise.all(HOSTS.map(taskOn));
        return found.every((f) => f !== undefined) ? (found as Array<{ id: string; name: string }>) : undefined;
      },
      120_000,
    );
    const taskIps = await Promise.all(tasks.map((task, n) => ipOf(HOSTS[n]!, task.id, net)));
    assert.equal(new Set(taskIps).size, 3, `distinct task addresses ${taskIps.join(' ')}`);

    await dk(client.host, ['run', '-d', '--name', client.name, '--network', net, TEST_IMAGE, 'sleep', '600']);
    const expected = [...taskIps].sort();
    // Swarm spreads the task records through its gossip; they arrive shortly after the tasks run.
    await waitFor(
      `tasks.${SVC} resolves to ${expected.join(' ')}`,
      async () => JSON.stringify(await resolve(client.host, client.name, `tasks.${SVC}`, subnet)) === JSON.stringify(expected),
      60_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; got ${(await resolve(client.host, client.name, `tasks.${SVC}`, subnet)).join(' ') || 'nothing'}`);
    });
    for (const ip of taskIps) await reach(client.host, client.name, ip, `${client.name} -> task ${ip}`);

    // dnsrr: the service name itself answers with every task address too.
    assert.deepEqual(await resolve(client.host, client.name, SVC, subnet), expected, `${SVC} resolves to the task addresses`);
    // Task containers on other hosts by their container name, and a standalone container from a task.
    const remote = tasks[0]!; // on host1, the client is on host2
    t.diagnostic(`task container name ${remote.name} -> ${(await resolve(client.host, client.name, remote.name, subnet)).join(' ') || 'no answer'}`);
    const clientIp = await ipOf(client.host, client.name, net);
    const fromTask = await resolve(1, remote.id, client.name, subnet);
    t.diagnostic(`standalone ${client.name} from a task on host1 -> ${fromTask.join(' ') || 'no answer'} (its address ${clientIp})`);

    await dk(client.host, ['rm', '-f', client.name]);
    await dk(1, ['service', 'rm', SVC]);
    await waitFor('every task container gone', async () => (await Promise.all(HOSTS.map(taskOn))).every((f) => f === undefined), 60_000);
    await waitFor(
      'no task container left, running or stopped',
      async () => {
        const left = await Promise.all(HOSTS.map((i) => dk(i, ['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${SVC}`])));
        return left.every((l) => l === '');
      },
      60_000,
    );
    for (const i of HOSTS) {
      const left = (await localAddresses(i, subnet)).filter((ip) => taskIps.includes(ip) || ip === clientIp);
      assert.deepEqual(left, [], `host${i} still records addresses of the removed tasks`);
    }
    await removeSpanning(net);
    const blocks = new ClusterKeys().blocksPrefix(clusterPoolId(subnet));
    await waitFor('no block of the pool left in etcd', async () => (await etcdGet(blocks)).length === 0, 60_000);
    for (const i of HOSTS) await waitFor(`nothing of docker-cni left on host${i}`, async () => (await pluginLeftovers(i)).length === 0, 30_000);
  } finally {
    await removeAll([client]);
    await dk(1, ['service', 'rm', SVC]).catch(() => undefined);
    await waitFor('service tasks gone', async () => (await Promise.all(HOSTS.map((i) => dk(i, ['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${SVC}`])))).every((l) => l === ''), 60_000).catch(() => undefined);
    await removeSpanning(net);
  }
}

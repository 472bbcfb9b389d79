/**
 * Spanning networks of the cluster tier and what the tests read from them:
 * container addresses, reachability, and each host's local pool state.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterKeys, clusterPoolId } from '../../src/cluster/keys.js';
import { ROUTE_PROTO } from '../../src/cluster/names.js';
import { etcdGet } from './etcd.js';
import { dk, HOSTS, inHost, SIM_DIR, waitFor } from './sim.js';

export const PLUGIN = 'dcni-cluster:latest';
/** DOCKER_CNI_CLUSTER_LEASE_TTL of the tier's plugins. */
export const LEASE_TTL_S = 4;
/** DOCKER_CNI_RECONCILE_INTERVAL_MS of the tier's plugins (60 s by default). */
export const RECONCILE_MS = 10_000;
/** The reconciler's grace period (the plugin's default): it touches nothing younger. */
export const RECONCILE_GRACE_MS = 60_000;

/**
 * Swarm drops the IPAM settings of a local-scope driver's network (measured: every
 * node fell back to Docker's default pools), so they come from a config-only
 * network of the same settings on every node, as for macvlan.
 */
export async function spanning(name: string, subnet: string, opts: string[]): Promise<void> {
  await Promise.all(
    HOSTS.map((i) =>
      dk(i, ['network', 'create', '--config-only', '--ipam-driver', PLUGIN, '--ipam-opt', 'cni.cluster=true', '--subnet', subnet, ...opts, `${name}-cfg`]),
    ),
  );
  await dk(1, ['network', 'create', '-d', PLUGIN, '--scope', 'swarm', '--attachable', '--config-from', `${name}-cfg`, name]);
}

export async function removeSpanning(name: string): Promise<void> {
  await dk(1, ['network', 'rm', name]).catch(() => undefined);
  await Promise.all(HOSTS.map((i) => dk(i, ['network', 'rm', `${name}-cfg`]).catch(() => undefined)));
}

export const ipOf = async (i: number, container: string, network: string): Promise<string> =>
  dk(i, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container]);

export const ping = async (i: number, container: string, target: string): Promise<boolean> =>
  dk(i, ['exec', container, 'ping', '-c', '1', '-W', '1', target]).then(
    () => true,
    () => false,
  );

/**
 * Waits until `container` on host i pings `target`. On timeout the error says
 * what each host routed (docker-cni's tagged routes) and which hosts etcd
 * listed, so a failure in CI explains itself.
 */
export async function reach(i: number, container: string, target: string, what = `${container} (host${i}) -> ${target}`): Promise<void> {
  await waitFor(what, () => ping(i, container, target), 30_000).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await routingReport()}`);
  });
}

async function routingReport(): Promise<string> {
  const lines: string[] = [];
  for (const h of HOSTS) {
    const routes = await inHost(h, 'ip', ['route', 'show', 'proto', ROUTE_PROTO]).catch((err: Error) => `(${err.message})`);
    lines.push(`host${h} routes: ${routes.split('\n').join('; ') || 'none'}`);
  }
  const keys = new ClusterKeys();
  const failed = (err: Error): Array<{ key: string; value: string }> => [{ key: `(${err.message})`, value: '' }];
  const hosts = await etcdGet(keys.hostsPrefix()).catch(failed);
  lines.push(`hosts in etcd: ${hosts.map((kv) => kv.key).join(' ') || 'none'}`);
  const blocks = await etcdGet(keys.blocksPrefix()).catch(failed);
  lines.push(`blocks in etcd: ${blocks.map((kv) => `${kv.key}=${kv.value}`).join(' ') || 'none'}`);
  for (const h of HOSTS) lines.push(`host${h} plugin's last cluster log lines:\n  ${(await clusterLog(h)).join('\n  ') || 'none'}`);
  return lines.join('\n');
}

/** The last lines host i's dockerd logged from the plugin about the cluster layer (routes, blocks, lease). */
async function clusterLog(i: number, count = 15): Promise<string[]> {
  const text = await readFile(join(SIM_DIR, `host${i}`, 'dockerd.log'), 'utf8').catch((err: Error) => `(${err.message})`);
  return text
    .split('\n')
    .filter((l) => l.includes('cluster'))
    .slice(-count)
    .map((l) => l.slice(0, 600));
}

/** Removes containers on their hosts, ignoring ones already gone. */
export async function removeAll(containers: ReadonlyArray<{ host: number; name: string }>): Promise<void> {
  await Promise.all(containers.map((c) => dk(c.host, ['rm', '-f', c.name]).catch(() => undefined)));
}

/**
 * The addresses host i's plugin has recorded as handed out in the cluster
 * pool of `subnet` (its local state file; absent once the host released the pool).
 */
export async function localAddresses(i: number, subnet: string): Promise<string[]> {
  const file = join(SIM_DIR, `host${i}`, 'state', 'cluster', 'pools', `${clusterPoolId(subnet)}.json`);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return [];
  const pool = JSON.parse(text) as { addresses?: Record<string, string> };
  return Object.keys(pool.addresses ?? {});
}

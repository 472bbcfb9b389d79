/**
 * The simulated cluster's etcd, for the fault tests: a member is signalled
 * only by the PID etcd-up.sh recorded, and only after /proc shows that PID is
 * still that member's etcd; members start again on their own data dirs; etcd
 * is read with etcdctl from inside host 1's netns (the underlay is not
 * reachable from the root netns).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HOSTS, inHost, script, SIM_DIR, UNDERLAY, waitFor } from './sim.js';

const ETCD_DIR = join(SIM_DIR, 'etcd');
export const etcdEndpoint = (i: number): string => `http://${UNDERLAY(i)}:2379`;

/** The PID of member i's etcd, or undefined when it is not running. */
async function memberPid(i: number): Promise<number | undefined> {
  const text = await readFile(join(ETCD_DIR, `e${i}.pid`), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  // An exited (or zombie) process has an empty cmdline; a recycled PID has another one.
  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  const ours = (args[0] ?? '').endsWith('etcd') && args.includes(`e${i}`) && args.includes(join(ETCD_DIR, `e${i}`));
  return ours ? pid : undefined;
}

export async function memberRunning(i: number): Promise<boolean> {
  return (await memberPid(i)) !== undefined;
}

/** Signals member i's etcd and waits until it has exited. */
export async function stopMember(i: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const pid = await memberPid(i);
  if (pid === undefined) throw new Error(`etcd member e${i} is not running`);
  process.kill(pid, signal);
  await waitFor(`etcd member e${i} to exit after ${signal}`, async () => !(await memberRunning(i)), 30_000);
}

/** Starts members again on their existing data dirs, and waits until the cluster is healthy. */
export async function startMembers(ids: readonly number[]): Promise<void> {
  const down: number[] = [];
  for (const i of ids) if (!(await memberRunning(i))) down.push(i);
  if (down.length > 0) await script('etcd-up.sh', down.map(String));
  await waitHealthy(HOSTS);
}

const etcdctl = async (endpoints: readonly number[], args: readonly string[]): Promise<string> =>
  inHost(1, 'etcdctl', ['--endpoints', endpoints.map(etcdEndpoint).join(','), '--dial-timeout', '2s', '--command-timeout', '4s', ...args]);

export async function waitHealthy(ids: readonly number[]): Promise<void> {
  await waitFor(`etcd members ${ids.join(',')} healthy`, () => etcdctl(ids, ['endpoint', 'health']).then(() => true), 60_000);
}

/** The member that leads right now (`endpoint status`: endpoint, id, version, db size, is leader, ...). */
export async function leader(): Promise<number> {
  const out = await etcdctl(HOSTS, ['endpoint', 'status']);
  for (const line of out.split('\n')) {
    const fields = line.split(',').map((f) => f.trim());
    const i = HOSTS.find((h) => fields[0] === etcdEndpoint(h));
    if (i !== undefined && fields[4] === 'true') return i;
  }
  throw new Error(`no etcd leader in:\n${out}`);
}

/** Keys and values under a prefix, read through the given members. */
export async function etcdGet(prefix: string, through: readonly number[] = HOSTS): Promise<Array<{ key: string; value: string }>> {
  const out = await etcdctl(through, ['get', '--prefix', prefix, '-w', 'json']);
  const parsed = JSON.parse(out) as { kvs?: Array<{ key: string; value?: string }> };
  const decode = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8');
  return (parsed.kvs ?? []).map((kv) => ({ key: decode(kv.key), value: decode(kv.value) }));
}

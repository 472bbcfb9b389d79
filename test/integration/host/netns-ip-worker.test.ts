/**
 * The long-lived `ip -batch` worker of a staging netns, against the real kernel: it moves a link out of its
 * netns, reports a failed command with ip's own message and keeps serving, and a lost worker leaves HostLinks
 * to fall back to a spawned `ip -n`. Every link and netns is made here under unique names; no traffic is sent.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { PluginError } from '../../../src/errors.js';
import { runCommand } from '../../../src/host/command.js';
import { HostLinks } from '../../../src/host/links.js';
import { MAX_HOST_WORKERS, NetnsIpWorkers } from '../../../src/host/netns-ip-worker.js';
import { randomHex } from '../../helpers/common.js';
import { commandLineOf, pidAlive, pidsNamed } from '../../helpers/processes.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';

const skip = skipUnless([[isRoot(), 'root (the test makes namespaces and links)']]);

/** One netns with `count` veth pairs, all named from a fresh id; `cleanup` removes what the test left. */
async function scratchNetns(count: number) {
  const id = randomHex(5);
  const netns = `dcwork-${id}`;
  const inside = (n: number): string => `dcwi${id}${n}`;
  const outside = (n: number): string => `dcwo${id}${n}`;
  await ip('netns', 'add', netns);
  for (let n = 0; n < count; n++) await ip('-n', netns, 'link', 'add', inside(n), 'type', 'veth', 'peer', 'name', `${inside(n)}p`);
  const cleanup = async (workers: NetnsIpWorkers): Promise<void> => {
    workers.forget(netns);
    for (let n = 0; n <= count; n++) await ip('link', 'del', outside(n)).catch(() => undefined);
    await ip('netns', 'del', netns).catch(() => undefined);
  };
  return { netns, inside, outside, cleanup };
}

const ip = async (...args: string[]): Promise<void> => {
  await execa('ip', args, { timeout: 30_000 });
};
const linkOnHost = (name: string): boolean => existsSync(`/sys/class/net/${name}`);
/** The pids of ip processes serving `netns`. */
const workerPids = (netns: string): number[] =>
  pidsNamed('ip').filter((pid) => {
    try {
      const argv = commandLineOf(pid).argv;
      return pidAlive(pid) && argv.includes(netns) && argv.includes('-batch');
    } catch {
      return false; // gone meanwhile
    }
  });

/** The pids of this process's ip workers in its own netns (no -n). */
const hostWorkerPids = (): number[] =>
  pidsNamed('ip').filter((pid) => {
    try {
      const parent = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      return pidAlive(pid) && parent === process.pid && commandLineOf(pid).argv.join(' ') === 'ip -force -batch -';
    } catch {
      return false; // gone meanwhile
    }
  });

describe('NetnsIpWorkers (root, real ip)', { skip }, () => {
  const workers = new NetnsIpWorkers();
  const cleanups: Array<() => Promise<void>> = [];
  const scratch = async (count: number) => {
    const made = await scratchNetns(count);
    cleanups.push(() => made.cleanup(workers));
    return made;
  };
  after(async () => {
    workers.closeAll();
    for (const cleanup of cleanups) await cleanup();
  });

  test('moves links out of its netns, reports a failed command with ip\'s message, and keeps serving', async () => {
    const { netns, inside, outside } = await scratch(2);
    const links = new HostLinks(runCommand, workers);

    await links.moveToHost(netns, inside(0), outside(0));
    assert.ok(linkOnHost(outside(0)), 'the first move is done when it answers');
    const [pid] = workerPids(netns);
    assert.ok(pid, 'one ip -batch process serves the netns');

    await assert.rejects(links.moveToHost(netns, inside(0), outside(2)), (err: unknown) => {
      assert.ok(err instanceof PluginError && err.code === 'HOST_FAILED', String(err));
      assert.match(err.message, new RegExp(`Cannot find device "${inside(0)}"`));
      return true;
    });
    assert.equal(linkOnHost(outside(2)), false);

    await links.moveToHost(netns, inside(1), outside(1));
    assert.ok(linkOnHost(outside(1)));
    assert.deepEqual(workerPids(netns), [pid], 'the same process served every move, the failed one included');

    workers.forget(netns);
    // A process left in the netns would hold it, and every link in it, alive after ip netns del.
    await waitUntil(() => !pidAlive(pid));
    assert.deepEqual(workerPids(netns), []);
  });

  test('a lost worker: the move falls back to a spawned ip -n', async () => {
    const { netns, inside, outside } = await scratch(1);
    const links = new HostLinks(runCommand, workers);
    // Started in a netns that does not exist, the worker exits at once and the move is asked of nobody.
    await assert.rejects(links.moveToHost(`${netns}-missing`, inside(0), outside(0)), /Cannot open network namespace|No such file/);
    workers.forget(`${netns}-missing`);
    await links.moveToHost(netns, inside(0), outside(0));
    assert.ok(linkOnHost(outside(0)));
  });

  test('host link deletes go through long-lived ip processes in our own netns: one while they come one at a time, a few side by side at once; a link already gone is success', async () => {
    const id = randomHex(4);
    const names = Array.from({ length: 2 + 2 * MAX_HOST_WORKERS }, (_, n) => `dcwd${id}${n}`);
    for (const name of names) await ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    cleanups.push(async () => {
      for (const name of names) await ip('link', 'del', name).catch(() => undefined);
    });
    const links = new HostLinks(runCommand, workers);
    const [first, second, ...atOnce] = names as [string, string, ...string[]];

    await links.deleteIfExists(first);
    assert.equal(linkOnHost(first), false, 'deleted when it answers');
    assert.equal(linkOnHost(`${first}p`), false, 'with its veth peer');
    const [pid] = hostWorkerPids();
    assert.ok(pid, 'one ip -batch process in our netns did it');
    await links.deleteIfExists(first);
    await links.deleteIfExists(second);
    assert.equal(linkOnHost(second), false);
    assert.deepEqual(hostWorkerPids(), [pid], 'deletes one after another reuse the same process');

    await Promise.all(atOnce.map((name) => links.deleteIfExists(name)));
    assert.deepEqual(atOnce.filter(linkOnHost), [], 'every link deleted at once is gone');
    const side = hostWorkerPids();
    assert.ok(side.length > 1 && side.length <= MAX_HOST_WORKERS, `deletes at once ran side by side in 2..${MAX_HOST_WORKERS} processes, not ${side.length}`);
    workers.closeAll();
    await waitUntil(() => side.every((p) => !pidAlive(p)));
  });

  test('arguments an ip batch line could split or quote are refused before anything runs', async () => {
    const netns = `dcwork-${randomHex(5)}`;
    await assert.rejects(workers.run(netns, ['link', 'set', 'dev', 'a b']), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    await assert.rejects(workers.run(netns, ['link', 'show', '"x"']), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    await assert.rejects(workers.run('bad netns', ['link', 'show']), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    await assert.rejects(workers.runOnHost(['link', 'del', 'dev', 'a;b c']), (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
    assert.deepEqual(workerPids(netns), [], 'no worker was started for refused arguments');
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

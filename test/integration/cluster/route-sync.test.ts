/**
 * Routed mode's route learning against a real 3-member etcd: a host's netns
 * (made by this test) gains a route when another host claims a block, and
 * loses it when that host is gone or gives the block back. Creates a netns,
 * so it runs as root under the engine lock like the rest of the tier.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../../../src/host/command.js';
import { ROUTE_PROTO } from '../../../src/cluster/names.js';
import { RouteSync } from '../../../src/cluster/route-sync.js';
import { RouteTable } from '../../../src/cluster/routes.js';
import { silentLogger } from '../../../src/log.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { EtcdCluster, ETCD_BIN, etcdInstalled } from './etcd-cluster.js';
import { startHost, uniquePrefix, waitFor, type SimHost } from './cluster-hosts.js';

const skip = skipUnless([
  [etcdInstalled(), `${ETCD_BIN} (Debian etcd-server)`],
  [isRoot(), 'root'],
]);

describe('routed mode learns routes from etcd', { skip }, () => {
  let etcd: EtcdCluster;
  let stateRoot: string;
  const netns = `dcnic-rt-${randomBytes(3).toString('hex')}`;
  const hosts: SimHost[] = [];
  let sync: RouteSync | undefined;
  const inNetns: CommandRunner = (file, args, options) => runCommand(file, ['-n', netns, ...args], options);
  const routes = async (): Promise<string> => (await inNetns('ip', ['-4', 'route', 'show', 'proto', ROUTE_PROTO])).trim();

  before(async () => {
    etcd = await EtcdCluster.start(3);
    stateRoot = await mkdtemp(join(tmpdir(), 'dcni-cluster-rt-'));
    await runCommand('ip', ['netns', 'add', netns]);
    // A veth pair: this kernel has no dummy driver.
    await runCommand('ip', ['-n', netns, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
    await runCommand('ip', ['-n', netns, 'link', 'set', 'ul1', 'up']);
    await runCommand('ip', ['-n', netns, 'addr', 'add', '10.250.77.1/24', 'dev', 'ul0']);
    await runCommand('ip', ['-n', netns, 'link', 'set', 'ul0', 'up']);
  });

  after(async () => {
    await sync?.stop(true).catch(() => undefined);
    for (const h of hosts) await h.crash();
    await runCommand('ip', ['netns', 'del', netns]).catch(() => undefined);
    await etcd?.destroy();
    if (stateRoot) await rm(stateRoot, { recursive: true, force: true });
  });

  test('a route appears per remote block and goes with its host or its block', async () => {
    const prefix = uniquePrefix();
    const start = async (id: string, underlayIp: string): Promise<SimHost> => {
      const h = await startHost({ id, endpoints: etcd.endpoints, prefix, stateRoot, blockPrefix: 26, ttlSeconds: 2, underlayIp });
      hosts.push(h);
      return h;
    };
    const self = await start('ra', '10.250.77.1');
    const b = await start('rb', '10.250.77.2');
    const c = await start('rc', '10.250.77.3');
    const { poolId } = await self.ipam.requestPool('10.233.8.0/24');
    sync = new RouteSync({ store: self.store, table: new RouteTable(inNetns, silentLogger), selfId: 'ra', logger: silentLogger });
    await sync.start();
    await sync.setPools([poolId]);
    await self.ipam.requestAddress(poolId);
    assert.equal(await routes(), '', 'no route for our own block');

    await b.ipam.requestPool('10.233.8.0/24');
    await c.ipam.requestPool('10.233.8.0/24');
    await b.ipam.requestAddress(poolId);
    const cAddr = await c.ipam.requestAddress(poolId);
    const [bBlock] = await b.ipam.ownedBlocks(poolId);
    const [cBlock] = await c.ipam.ownedBlocks(poolId);
    const expected = [`${bBlock} via 10.250.77.2 dev ul0`, `${cBlock} via 10.250.77.3 dev ul0`].sort();
    await waitFor('routes to both remote blocks', async () => (await routes()).split('\n').map((l) => l.replace(/ proto \S+/, '').trim()).sort().join('|') === expected.join('|'));

    // c gives its block back: its route goes.
    await c.ipam.releaseAddress(poolId, cAddr.address);
    await c.ipam.releasePool(poolId);
    await waitFor('the released block route to go', async () => !(await routes()).includes(cBlock!));

    // b dies: once its lease expires, its route goes too.
    await b.crash();
    await waitFor('the dead host route to go', async () => (await routes()) === '');

    await sync.stop(true);
    sync = undefined;
    assert.equal(await routes(), '');
  });
});

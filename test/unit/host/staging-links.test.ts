import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PluginError } from '../../../src/errors.js';
import { HostLinks, assertLinkName } from '../../../src/host/links.js';
import { StagingNetnsPool } from '../../../src/host/staging-netns.js';
import { silentLogger } from '../../../src/log.js';
import { FakeRunner } from './fake-runner.js';

/** A prefix no real netns under /run/netns carries, so listExisting() sees none. */
const uniquePrefix = (): string => `dcniut${randomBytes(4).toString('hex')}`;

const isInvalidArgument = (err: unknown): boolean => err instanceof PluginError && err.code === 'INVALID_ARGUMENT';

describe('StagingNetnsPool (fake ip)', () => {
  test('acquire creates a namespace named prefix-pid-counter; a clean release makes it reusable', async () => {
    const runner = new FakeRunner();
    const prefix = uniquePrefix();
    const pool = new StagingNetnsPool(prefix, runner.run, silentLogger);
    const lease = await pool.acquire();
    assert.equal(lease.name, `${prefix}-${process.pid}-0`);
    assert.equal(lease.path, `/run/netns/${lease.name}`);
    assert.deepEqual(runner.calls, [{ file: 'ip', args: ['netns', 'add', lease.name] }]);
    pool.release(lease);
    const again = await pool.acquire();
    assert.equal(again.name, lease.name);
    assert.equal(runner.calls.length, 1, 'no second ip netns add');
  });

  test('a refill runs after the acquire that set it off has returned, never inside it', async () => {
    const runner = new FakeRunner();
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger, { refill: true });
    await pool.init(2);
    const isBatch = (c: { args: readonly string[] }): boolean => c.args.includes('-batch');
    assert.equal(runner.calls.filter(isBatch).length, 1, 'init fills with one ip -batch');
    const lease = await pool.acquire();
    assert.equal(runner.calls.filter(isBatch).length, 1, 'no spawn before the acquire returned');
    await nextTurn();
    await nextTurn();
    assert.equal(runner.calls.filter(isBatch).length, 2, 'the refill ran on a later turn');
    pool.release(lease);
  });

  test('concurrent leases never share a namespace', async () => {
    const runner = new FakeRunner();
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger);
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    assert.equal(new Set(leases.map((l) => l.name)).size, 3);
    for (const lease of leases) pool.release(lease);
    const reused = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    assert.equal(new Set(reused.map((l) => l.name)).size, 3);
    assert.equal(runner.callsOf('ip').length, 3, 'all three were reused');
  });

  test('a dirty release deletes the namespace and never hands it out again', async () => {
    const runner = new FakeRunner();
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger);
    const lease = await pool.acquire();
    pool.release(lease, true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(runner.calls.at(-1), { file: 'ip', args: ['netns', 'del', lease.name] });
    const next = await pool.acquire();
    assert.notEqual(next.name, lease.name);
  });

  test('beforeDelete hears of a namespace before its ip netns del (its ip worker would keep it alive)', async () => {
    const runner = new FakeRunner();
    const heard: string[] = [];
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger, {
      beforeDelete: (name) => heard.push(`${name} (ip calls so far: ${runner.callsOf('ip').length})`),
    });
    const lease = await pool.acquire();
    pool.release(lease, true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(heard, [`${lease.name} (ip calls so far: 1)`], 'told once, after the add and before the del');
    assert.deepEqual(runner.calls.at(-1), { file: 'ip', args: ['netns', 'del', lease.name] });
    const other = await pool.acquire();
    await pool.destroyAll();
    assert.deepEqual(heard.slice(1).map((line) => line.split(' ')[0]), [other.name], 'destroyAll tells of each one too');
  });

  test('releasing a lease the pool did not create is ignored', async () => {
    const runner = new FakeRunner();
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger);
    pool.release({ name: 'someone-elses', path: '/run/netns/someone-elses' }, true);
    pool.release({ name: 'someone-elses', path: '/run/netns/someone-elses' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(runner.calls, []);
    const lease = await pool.acquire();
    assert.notEqual(lease.name, 'someone-elses');
  });

  test('init pre-creates warm namespaces; destroyAll deletes every one, and a failing delete is only logged', async () => {
    const runner = new FakeRunner();
    const prefix = uniquePrefix();
    const pool = new StagingNetnsPool(prefix, runner.run, silentLogger);
    await pool.init(2);
    assert.deepEqual(
      runner.calls.map((c) => c.args.join(' ')),
      [`netns add ${prefix}-${process.pid}-0`, `netns add ${prefix}-${process.pid}-1`],
    );
    const lease = await pool.acquire();
    assert.equal(runner.calls.length, 2, 'a warm namespace is used');
    assert.match(lease.name, new RegExp(`^${prefix}-${process.pid}-[01]$`));
    runner.respond('ip', (args) => {
      if (args[1] === 'del') throw new PluginError('HOST_FAILED', 'Cannot remove namespace: Device or resource busy');
      return '';
    });
    await pool.destroyAll();
    assert.equal(runner.calls.filter((c) => c.args[1] === 'del').length, 2);
  });

  test('a failing ip netns add fails the acquire', async () => {
    const runner = new FakeRunner();
    runner.respond('ip', () => {
      throw new PluginError('HOST_FAILED', 'ip netns add: Permission denied');
    });
    const pool = new StagingNetnsPool(uniquePrefix(), runner.run, silentLogger);
    await assert.rejects(pool.acquire(), /Permission denied/);
  });

  test('listExisting sees none of a prefix nobody uses', async () => {
    const pool = new StagingNetnsPool(uniquePrefix(), new FakeRunner().run, silentLogger);
    assert.deepEqual(await pool.listExisting(), []);
  });
});

describe('HostLinks (fake ip)', () => {
  test('moveToHost moves and renames in one ip call into our own netns', async () => {
    const runner = new FakeRunner();
    await new HostLinks(runner.run).moveToHost('stage-0', 'eth0', 'dc0123456789abc');
    assert.deepEqual(runner.calls, [
      { file: 'ip', args: ['-n', 'stage-0', 'link', 'set', 'dev', 'eth0', 'netns', String(process.pid), 'name', 'dc0123456789abc'] },
    ]);
  });

  test('moveToNetns is the reverse move', async () => {
    const runner = new FakeRunner();
    await new HostLinks(runner.run).moveToNetns('dc0123456789abc', 'stage-1', 'eth0');
    assert.deepEqual(runner.calls, [{ file: 'ip', args: ['link', 'set', 'dev', 'dc0123456789abc', 'netns', 'stage-1', 'name', 'eth0'] }]);
  });

  test('addAddresses sends one ip -batch with every address; none means no call', async () => {
    const runner = new FakeRunner();
    const links = new HostLinks(runner.run);
    await links.addAddresses('stage-1', 'eth0', ['10.231.1.5/24', 'fd7d:c11d:4e7:1::5/64']);
    await links.addAddresses('stage-1', 'eth0', []);
    assert.deepEqual(runner.calls, [
      {
        file: 'ip',
        args: ['-n', 'stage-1', '-batch', '-'],
        input: 'address add 10.231.1.5/24 dev eth0\naddress add fd7d:c11d:4e7:1::5/64 dev eth0\n',
      },
    ]);
  });

  test('names and addresses are validated before anything runs', async () => {
    const runner = new FakeRunner();
    const links = new HostLinks(runner.run);
    await assert.rejects(links.moveToHost('stage-0', 'eth0', 'x'.repeat(16)), isInvalidArgument);
    await assert.rejects(links.moveToHost('stage-0', 'eth0; reboot', 'dc1'), isInvalidArgument);
    await assert.rejects(links.moveToNetns('../x', 'stage-0', 'eth0'), isInvalidArgument);
    await assert.rejects(links.addAddresses('stage-0', 'eth0', ['10.0.0.1/24\naddress flush dev eth1']), isInvalidArgument);
    await assert.rejects(links.exists('a/b'), isInvalidArgument);
    assert.deepEqual(runner.calls, []);
    assert.throws(() => assertLinkName(''), isInvalidArgument);
    assert.doesNotThrow(() => assertLinkName('dcni-0123456789'));
  });

  test('exists reads the host; deleteIfExists of a missing link runs nothing', async () => {
    const runner = new FakeRunner();
    const links = new HostLinks(runner.run);
    const missing = `dcut${randomBytes(5).toString('hex')}`;
    assert.equal(await links.exists(missing), false);
    assert.equal(await links.exists('lo'), true);
    await links.deleteIfExists(missing);
    assert.deepEqual(runner.calls, []);
  });
});

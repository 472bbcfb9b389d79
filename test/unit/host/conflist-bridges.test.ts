import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflistBridges } from '../../../src/host/conflist-bridges.js';
import { silentLogger } from '../../../src/log.js';
import { FakeRunner } from './fake-runner.js';

const SAVED = [
  '*filter',
  ':CNI-ISOLATION-STAGE-1 - [0:0]',
  ':CNI-ISOLATION-STAGE-2 - [0:0]',
  '-A CNI-FORWARD -j CNI-ISOLATION-STAGE-1',
  '-A CNI-ISOLATION-STAGE-1 -i nerd0 ! -o nerd0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-2',
  '-A CNI-ISOLATION-STAGE-1 -j RETURN',
  '-A CNI-ISOLATION-STAGE-2 -o nerd0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j DROP',
  '-A CNI-ISOLATION-STAGE-2 -o nerd01 -j DROP',
  'COMMIT',
].join('\n');

describe('ConflistBridges', () => {
  let dir: string;
  let links: Set<string>;
  let runner: FakeRunner;
  let bridges: ConflistBridges;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcni-bridges-'));
    links = new Set();
    runner = new FakeRunner();
    runner.respond('iptables-save', () => SAVED);
    runner.respond('ip6tables-save', () => '*filter\nCOMMIT\n');
    bridges = new ConflistBridges(
      dir,
      {
        exists: async (name) => links.has(name),
        deleteIfExists: async (name) => {
          links.delete(name);
        },
      },
      runner.run,
      silentLogger,
    );
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('a bridge the chain created goes with the last network, with exactly its isolation rules', async () => {
    await bridges.beforeAdd('nerd0');
    links.add('nerd0'); // the bridge plugin made it
    await bridges.beforeAdd('nerd0');
    await bridges.afterLastNetwork('nerd0');
    assert.equal(links.has('nerd0'), false);
    const [restore] = runner.callsOf('iptables-restore');
    assert.deepEqual(restore?.args, ['--noflush']);
    assert.deepEqual(restore?.input?.split('\n').filter((l) => l.startsWith('-D')), [
      '-D CNI-ISOLATION-STAGE-1 -i nerd0 ! -o nerd0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-2',
      '-D CNI-ISOLATION-STAGE-2 -o nerd0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j DROP',
    ]);
    assert.equal(runner.callsOf('ip6tables-restore').length, 0);
    assert.deepEqual(await readdir(dir), []);
  });

  test('a bridge that existed before the first ADD (a shared cni0) is never touched', async () => {
    links.add('cni0');
    await bridges.beforeAdd('cni0');
    await bridges.afterLastNetwork('cni0');
    assert.ok(links.has('cni0'));
    assert.equal(runner.callsOf('iptables-restore').length, 0);
    assert.deepEqual(await readdir(dir), []);
  });

  test('the note survives a restart: a new instance still knows the bridge was ours', async () => {
    await bridges.beforeAdd('nerd0');
    links.add('nerd0');
    const again = new ConflistBridges(dir, { exists: async (n) => links.has(n), deleteIfExists: async (n) => void links.delete(n) }, runner.run, silentLogger);
    await again.beforeAdd('nerd0');
    await again.afterLastNetwork('nerd0');
    assert.equal(links.has('nerd0'), false);
  });
});

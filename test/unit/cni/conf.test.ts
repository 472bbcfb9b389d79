import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { confListFromBytes, loadConfListByName, loadConfLists } from '../../../src/cni/conf.js';
import { PluginError } from '../../../src/errors.js';
import { removeDir, tempDir } from './helpers.js';

const list = (name: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'bridge' }], ...extra });
const single = (name: string): string => JSON.stringify({ cniVersion: '0.4.0', name, type: 'bridge', bridge: 'br-x' });

describe('CNI config loading', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('cni-conf-');
    await writeFile(join(dir, '20-b.conflist'), list('net-b'));
    await writeFile(join(dir, '10-a.conflist'), list('net-a'));
    await writeFile(join(dir, '05-single.conf'), single('net-single'));
    await writeFile(join(dir, '01-json.json'), single('net-json'));
    await writeFile(join(dir, '00-dup.conf'), single('net-b')); // loses to the .conflist of the same name
    await writeFile(join(dir, '15-broken.conflist'), '{not json');
    await writeFile(join(dir, '16-noplugins.conflist'), single('net-noplugins'));
    await writeFile(join(dir, 'README.txt'), 'ignored');
    await mkdir(join(dir, 'sub.conflist'));
  });
  after(async () => removeDir(dir));

  test('libcni order: .conflist sorted, then .conf/.json sorted; invalid files reported and skipped', async () => {
    const invalid: string[] = [];
    const lists = await loadConfLists(dir, (path) => invalid.push(path));
    assert.deepEqual(
      lists.map((l) => l.name),
      ['net-a', 'net-b', 'net-b', 'net-json', 'net-single'],
    );
    assert.deepEqual(invalid.sort(), [join(dir, '15-broken.conflist'), join(dir, '16-noplugins.conflist')]);
    assert.equal(lists[0]?.sourcePath, join(dir, '10-a.conflist'));
  });

  test('lookup by name finds the first match; NOT_FOUND otherwise', async () => {
    const b = await loadConfListByName(dir, 'net-b');
    assert.equal(b.sourcePath, join(dir, '20-b.conflist'));
    await assert.rejects(loadConfListByName(dir, 'nope'), (err: unknown) => err instanceof PluginError && err.code === 'NOT_FOUND');
    assert.deepEqual(await loadConfLists(join(dir, 'missing-dir')), []);
  });

  test('a single .conf is up-converted to a one-plugin list', async () => {
    const up = await loadConfListByName(dir, 'net-single');
    assert.equal(up.cniVersion, '0.4.0');
    assert.equal(up.plugins.length, 1);
    assert.equal(up.plugins[0]?.bridge, 'br-x');
    assert.deepEqual(JSON.parse(up.bytes?.toString() ?? ''), {
      cniVersion: '0.4.0',
      name: 'net-single',
      plugins: [{ cniVersion: '0.4.0', name: 'net-single', type: 'bridge', bridge: 'br-x' }],
    });
  });

  test('validation errors are INVALID_ARGUMENT with a clear message', () => {
    const bad = (text: string, pattern: RegExp): void =>
      assert.throws(() => confListFromBytes(Buffer.from(text), 'x.conflist'), (err: unknown) => {
        assert.ok(err instanceof PluginError && err.code === 'INVALID_ARGUMENT');
        assert.match(err.message, pattern);
        return true;
      });
    bad('[]', /not a JSON object/);
    bad(JSON.stringify({ cniVersion: '1.0.0', plugins: [{ type: 'bridge' }] }), /missing "name"/);
    bad(list('../evil'), /invalid network name/);
    bad(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] }), /non-empty array/);
    bad(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] }), /plugins\[0\].*plugin type/);
    bad(JSON.stringify({ name: 'n', plugins: [{ type: 'bridge' }] }), /missing "cniVersion"/);
    bad(JSON.stringify({ cniVersion: '7.0.0', name: 'n', plugins: [{ type: 'bridge' }] }), /unsupported cniVersion/);
  });

  test('spec 1.1 cniVersions: the highest known version wins; flags parsed', () => {
    const parsed = confListFromBytes(Buffer.from(list('n', { cniVersions: ['0.4.0', '1.1.0', '9.0.0'], disableCheck: 'true', disableGC: false })));
    assert.equal(parsed.cniVersion, '1.1.0');
    assert.equal(parsed.disableCheck, true);
    assert.equal(parsed.disableGC, false);
  });
});

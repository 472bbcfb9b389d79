import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareVersions, convertResult, negotiateVersion, normalizeResult } from '../../../src/cni/version.js';

const v100 = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', mac: '02:42:0a:e8:00:05', sandbox: '/run/netns/x' }],
  ips: [
    { address: '10.232.0.5/24', gateway: '10.232.0.1', interface: 0 },
    { address: 'fd7d:c11d:4e7::5/64', gateway: 'fd7d:c11d:4e7::1', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd7d:c11d:4e7::1' }],
  dns: { nameservers: ['10.232.0.1'] },
};

describe('CNI versions', () => {
  test('compares numerically', () => {
    assert.equal(compareVersions('0.4.0', '0.3.1'), 1);
    assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
    assert.equal(compareVersions('0.10.0', '0.4.0'), 1);
    assert.equal(compareVersions('0.3.0', '1.1.0'), -1);
  });

  test('negotiates the highest version every plugin supports', () => {
    assert.equal(negotiateVersion(['1.1.0', '1.0.0', '0.4.0'], [['0.4.0', '1.0.0'], ['0.3.1', '0.4.0', '1.0.0', '1.1.0']]), '1.0.0');
    assert.equal(negotiateVersion(['1.1.0'], [['1.0.0']]), undefined);
    assert.equal(negotiateVersion(['0.3.1', '0.4.0'], []), '0.4.0');
  });

  test('1.0.0 -> 0.4.0 / 0.3.1 adds ips[].version; back again removes it', () => {
    for (const older of ['0.4.0', '0.3.1', '0.3.0']) {
      const down = convertResult(v100, '1.0.0', older);
      assert.equal(down.cniVersion, older);
      assert.deepEqual(down.ips?.map((ip) => (ip as unknown as { version: string }).version), ['4', '6']);
      assert.deepEqual(down.interfaces, v100.interfaces);
      assert.deepEqual(down.routes, v100.routes);
      const up = convertResult(down, older, '1.0.0');
      assert.deepEqual(up, v100);
    }
  });

  test('0.2.0 shape both ways', () => {
    const legacy = convertResult(v100, '1.0.0', '0.2.0');
    assert.deepEqual(legacy, {
      cniVersion: '0.2.0',
      ip4: { ip: '10.232.0.5/24', gateway: '10.232.0.1', routes: [{ dst: '0.0.0.0/0' }] },
      ip6: { ip: 'fd7d:c11d:4e7::5/64', gateway: 'fd7d:c11d:4e7::1', routes: [{ dst: '::/0', gw: 'fd7d:c11d:4e7::1' }] },
      dns: { nameservers: ['10.232.0.1'] },
    });
    const up = normalizeResult(legacy, '0.2.0');
    assert.deepEqual(up.ips, [
      { address: '10.232.0.5/24', gateway: '10.232.0.1' },
      { address: 'fd7d:c11d:4e7::5/64', gateway: 'fd7d:c11d:4e7::1' },
    ]);
    assert.equal(up.routes?.length, 2);
  });

  test('1.0.0 <-> 1.1.0 only changes the version', () => {
    const to11 = convertResult(v100, '1.0.0', '1.1.0');
    assert.deepEqual({ ...to11, cniVersion: '1.0.0' }, v100);
  });

  test('accepts a missing cniVersion, missing interfaces and interface: -1', () => {
    const result = normalizeResult({ ips: [{ version: '4', address: '10.232.0.9/24', interface: -1 }] }, '0.4.0');
    assert.deepEqual(result, { cniVersion: '1.0.0', ips: [{ address: '10.232.0.9/24' }] });
  });

  test('rejects unknown versions and non-objects', () => {
    assert.throws(() => convertResult({ cniVersion: '9.9.9' }, '1.0.0', '1.0.0'), /unsupported/);
    assert.throws(() => convertResult('nope', '1.0.0', '1.0.0'), /not a JSON object/);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  validateCniArgs,
  validateContainerId,
  validateIfName,
  validateNetnsPath,
  validateNetworkName,
  validatePluginType,
} from '../../../src/cni/validate.js';
import { PluginError } from '../../../src/errors.js';

const rejects = (fn: () => void): void =>
  assert.throws(fn, (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT');

describe('CNI input validation', () => {
  test('container IDs follow the spec character class', () => {
    for (const ok of ['a', 'abc123', 'A-b_c.d', '0f'.repeat(32)]) validateContainerId(ok);
    for (const bad of ['', '../x', 'a/b', '-abc', '.hidden', '_x', 'a b', 'a;b', 'a\nb', 'ü']) rejects(() => validateContainerId(bad));
  });

  test('network names follow the spec character class', () => {
    for (const ok of ['net1', 'my-net_2.x']) validateNetworkName(ok);
    for (const bad of ['', '../x', 'a/b', '-net', 'a b', 'n:1']) rejects(() => validateNetworkName(bad));
  });

  test('interface names: 1..15 bytes, no / : whitespace, not . or ..', () => {
    for (const ok of ['eth0', 'a', 'x'.repeat(15), 'veth-1.2']) validateIfName(ok);
    for (const bad of ['', '.', '..', 'a/b', '../x', 'eth:0', 'eth 0', 'eth\t0', 'x'.repeat(16), '0123456789abcdef']) {
      rejects(() => validateIfName(bad));
    }
  });

  test('plugin types stay one path component', () => {
    validatePluginType('host-local');
    for (const bad of ['', '../bridge', 'a/b', '..', '.']) rejects(() => validatePluginType(bad));
    rejects(() => validatePluginType(undefined));
  });

  test('netns paths and CNI_ARGS', () => {
    validateNetnsPath('', false);
    validateNetnsPath('/run/netns/x', true);
    rejects(() => validateNetnsPath('', true));
    rejects(() => validateNetnsPath('relative/ns', false));
    validateCniArgs([['IP', '10.232.0.5'], ['K8S_POD_NAME', 'a=b']]);
    rejects(() => validateCniArgs([['A;B', 'x']]));
    rejects(() => validateCniArgs([['A=B', 'x']]));
    rejects(() => validateCniArgs([['A', 'x;B=y']]));
    rejects(() => validateCniArgs([['', 'x']]));
  });
});

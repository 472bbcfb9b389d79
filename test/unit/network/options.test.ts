import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPT } from '../../../src/docker/api.js';
import { PluginError } from '../../../src/errors.js';
import { NETWORK_OPTION_KEYS, parseNetworkOptions, readGenericOptions } from '../../../src/network/options.js';

function invalidOption(raw: Record<string, string>, pattern: RegExp): void {
  assert.throws(
    () => parseNetworkOptions(raw),
    (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message),
    `expected INVALID_ARGUMENT matching ${pattern} for ${JSON.stringify(raw)}`,
  );
}

describe('parseNetworkOptions', () => {
  test('defaults: masquerade, icc and isolation on, nothing else set', () => {
    assert.deepEqual(parseNetworkOptions({}), { masquerade: true, icc: true, isolate: true });
  });

  test('every key and its alias sets the same field', () => {
    const cases: Array<[string[], string, Partial<ReturnType<typeof parseNetworkOptions>>]> = [
      [['cni.network'], 'my-net.v1', { cniNetwork: 'my-net.v1' }],
      [[OPT.bridgeName, 'cni.bridge'], 'br_test-0.1', { bridge: 'br_test-0.1' }],
      [[OPT.mtu, 'cni.mtu'], '1450', { mtu: 1450 }],
      [[OPT.enableIpMasquerade, 'cni.masquerade'], 'false', { masquerade: false }],
      [[OPT.enableIcc, 'cni.icc'], 'false', { icc: false }],
      [['cni.isolation'], 'false', { isolate: false }],
      [[OPT.hostBindingIpv4, 'cni.host_binding_ip'], '127.0.0.1', { hostBindingIp: '127.0.0.1' }],
      [['cni.cluster.mode'], 'routed', { clusterMode: 'routed' }],
    ];
    for (const [keys, value, expected] of cases) {
      for (const key of keys) {
        assert.deepEqual(parseNetworkOptions({ [key]: value }), { masquerade: true, icc: true, isolate: true, ...expected }, key);
      }
    }
    // The table above covers every documented key.
    const documented = Object.values(NETWORK_OPTION_KEYS).flat().sort();
    assert.deepEqual(documented, cases.flatMap(([keys]) => keys).sort());
  });

  test('booleans accept true/false, 1/0, yes/no, on/off in any case', () => {
    for (const yes of ['true', 'TRUE', '1', 'yes', 'On', ' true ']) assert.equal(parseNetworkOptions({ 'cni.icc': yes }).icc, true, yes);
    for (const no of ['false', 'False', '0', 'no', 'OFF']) assert.equal(parseNetworkOptions({ 'cni.icc': no }).icc, false, no);
    invalidOption({ 'cni.icc': 'maybe' }, /cni\.icc="maybe": expected true or false/);
    invalidOption({ [OPT.enableIpMasquerade]: '' }, /enable_ip_masquerade/);
  });

  test('bad values are rejected, naming the key and the value', () => {
    for (const mtu of ['67', '65536', '1e3', '-1', '', '1500.5', ' 1500', 'abc']) invalidOption({ 'cni.mtu': mtu }, /cni\.mtu=.*MTU must be an integer 68-65535/);
    assert.equal(parseNetworkOptions({ 'cni.mtu': '68' }).mtu, 68);
    assert.equal(parseNetworkOptions({ 'cni.mtu': '65535' }).mtu, 65535);
    for (const bridge of ['', 'a'.repeat(16), 'br/0', 'br 0', '-br', '../br']) invalidOption({ 'cni.bridge': bridge }, /interface name/);
    assert.equal(parseNetworkOptions({ 'cni.bridge': 'a'.repeat(15) }).bridge, 'a'.repeat(15));
    for (const ip of ['256.0.0.1', '::1', '10.0.0', 'localhost', '10.0.0.1/32', '']) invalidOption({ 'cni.host_binding_ip': ip }, /IPv4 address/);
  });

  test('cni.network must be a plain CNI network name: no paths, no traversal', () => {
    for (const name of ['../etc/passwd', 'a/b', '/etc/cni/net.d/x', '..', '.hidden', '', 'a b', 'x'.repeat(129)]) {
      invalidOption({ 'cni.network': name }, /cni\.network=.*must be a CNI network name/);
    }
  });

  test('the same setting twice (through an alias) is rejected, naming both keys', () => {
    invalidOption({ [OPT.mtu]: '1500', 'cni.mtu': '1500' }, /com\.docker\.network\.driver\.mtu.*cni\.mtu|cni\.mtu.*com\.docker\.network\.driver\.mtu/);
    invalidOption({ 'cni.bridge': 'a', [OPT.bridgeName]: 'a' }, /set the same thing/);
    invalidOption({ 'cni.icc': 'true', [OPT.enableIcc]: 'false' }, /set the same thing/);
  });

  test('unknown keys are rejected and the supported ones listed', () => {
    invalidOption({ 'cni.colour': 'blue' }, /unsupported option "cni\.colour" \(supported: .*cni\.network.*\)/);
    invalidOption({ 'com.docker.network.bridge.inhibit_ipv4': 'true' }, /unsupported option/);
  });

  test('keys Docker adds on its own are accepted and ignored', () => {
    assert.deepEqual(
      parseNetworkOptions({
        'com.docker.network.bridge.default_bridge': 'false',
        'com.docker.network.container_iface_prefix': 'eth',
      }),
      { masquerade: true, icc: true, isolate: true },
    );
  });

  test('bridge and mtu only apply to generated bridges, not with cni.network', () => {
    invalidOption({ 'cni.network': 'usernet', 'cni.bridge': 'br0' }, /cni\.bridge applies to generated bridge networks, not to cni\.network=usernet/);
    invalidOption({ 'cni.network': 'usernet', [OPT.mtu]: '1400' }, /driver\.mtu applies to generated bridge networks/);
    assert.deepEqual(parseNetworkOptions({ 'cni.network': 'usernet', 'cni.icc': 'false', 'cni.isolation': 'no' }), {
      cniNetwork: 'usernet',
      masquerade: true,
      icc: false,
      isolate: false,
    });
  });
});

describe('readGenericOptions', () => {
  test('absent, null or empty generic options give an empty map', () => {
    assert.deepEqual(readGenericOptions(undefined), {});
    assert.deepEqual(readGenericOptions(null), {});
    assert.deepEqual(readGenericOptions({}), {});
    assert.deepEqual(readGenericOptions({ [OPT.generic]: null }), {});
    assert.deepEqual(readGenericOptions({ [OPT.generic]: {} }), {});
  });

  test('string values pass through; numbers and booleans become strings; other top-level options are not -o options', () => {
    assert.deepEqual(
      readGenericOptions({
        [OPT.enableIPv6]: true,
        [OPT.generic]: { 'cni.mtu': 1400, 'cni.icc': false, 'cni.bridge': 'br0' },
      }),
      { 'cni.mtu': '1400', 'cni.icc': 'false', 'cni.bridge': 'br0' },
    );
  });

  test('non-object generic options or non-scalar values are INVALID_ARGUMENT', () => {
    const bad = (options: Record<string, unknown>, pattern: RegExp): void =>
      assert.throws(
        () => readGenericOptions(options),
        (err: unknown) => err instanceof PluginError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message),
      );
    bad({ [OPT.generic]: 'cni.mtu=1400' }, /must be an object/);
    bad({ [OPT.generic]: ['cni.mtu'] }, /must be an object/);
    bad({ [OPT.generic]: { 'cni.mtu': { value: 1400 } } }, /option cni\.mtu: expected a string/);
    bad({ [OPT.generic]: { 'cni.mtu': null } }, /option cni\.mtu/);
  });
});

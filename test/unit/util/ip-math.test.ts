import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpv4RouteTable, parseIpv6RouteTable, readHostRoutes } from '../../../src/host/routes.js';
import {
  firstFreeSubnet,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  parseSupernetSpec,
  type Cidr,
} from '../../../src/util/ip-math.js';

const cidr = (text: string): Cidr => parseCidr(text)!.cidr;

describe('ip-math', () => {
  test('formats IPv6 the way Go (and so host-local file names) does', () => {
    const cases: Array<[string, string]> = [
      ['fd7d:c11d:04e7:0000:0000:0000:0000:0001', 'fd7d:c11d:4e7::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first run wins a tie
      ['::', '::'],
      ['::1', '::1'],
      ['FD00::ABCD', 'fd00::abcd'],
      ['::ffff:10.1.2.3', '10.1.2.3'],
    ];
    for (const [input, expected] of cases) assert.equal(formatIp(parseIp(input)!), expected, input);
  });

  test('parses strictly', () => {
    for (const bad of ['', '10.1.2', '10.1.2.3.4', '10.01.2.3', '256.1.1.1', ' 10.1.2.3', '10.1.2.3 ', 'fd00::1%eth0',
      '../../etc/passwd', 'fd00:::1', 'g::1', '10.1.2.3/24', '1.2.3.4\n']) {
      assert.equal(parseIp(bad), undefined, JSON.stringify(bad));
    }
    for (const bad of ['10.1.2.0/33', '10.1.2.0/', '10.1.2.0/024', '10.1.2.0/24/1', 'fd00::/129', '/24', 'x/24']) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
    assert.equal(formatCidr(cidr('10.231.5.77/24')), '10.231.5.0/24');
    assert.equal(formatCidr(cidr('fd7d:c11d:4e7:5::9/64')), 'fd7d:c11d:4e7:5::/64');
  });

  test('supernet specs', () => {
    const spec = parseSupernetSpec('10.231.0.0/16/24');
    assert.equal(formatCidr(spec.supernet), '10.231.0.0/16');
    assert.equal(spec.subnetPrefix, 24);
    assert.throws(() => parseSupernetSpec('10.231.0.0/16'));
    assert.throws(() => parseSupernetSpec('10.231.0.0/24/16'));
    assert.throws(() => parseSupernetSpec('10.231.1.0/16/24'));
    assert.throws(() => parseSupernetSpec('10.231.0.0/16/32'));
  });

  test('firstFreeSubnet skips every blocker, aligned to the subnet size', () => {
    const spec = parseSupernetSpec('10.231.0.0/16/24');
    assert.equal(formatCidr(firstFreeSubnet(spec, [])!), '10.231.0.0/24');
    assert.equal(formatCidr(firstFreeSubnet(spec, [cidr('10.231.0.0/23'), cidr('10.231.2.128/25')])!), '10.231.3.0/24');
    assert.equal(firstFreeSubnet(spec, [cidr('10.0.0.0/8')]), undefined);
    assert.equal(formatCidr(firstFreeSubnet(spec, [cidr('fd7d::/16')])!), '10.231.0.0/24'); // other family ignored
    assert.equal(firstFreeSubnet(spec, [cidr('10.231.0.0/16')]), undefined);
    const v6 = parseSupernetSpec('fd7d:c11d:4e7::/48/64');
    // A huge blocker is skipped in one step rather than 2^15 subnet steps.
    assert.equal(formatCidr(firstFreeSubnet(v6, [cidr('fd7d:c11d:4e7::/49')])!), 'fd7d:c11d:4e7:8000::/64');
  });
});

describe('host routes from procfs', () => {
  const v4 = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    '',
  ].join('\n');
  const v6 = [
    'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0',
    'fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0',
    '',
  ].join('\n');

  test('parses IPv4 routes (little-endian hex) and drops the default route', () => {
    assert.deepEqual(parseIpv4RouteTable(v4, true), ['172.17.0.0/16', '192.0.2.0/24']);
  });

  test('parses IPv6 routes and drops the default route', () => {
    assert.deepEqual(parseIpv6RouteTable(v6), ['fd00::/64', 'fd00::2/128']);
  });

  test('reads the live tables without spawning anything', async () => {
    const routes = await readHostRoutes();
    assert.ok(routes.every((r) => parseCidr(r) !== undefined));
  });
});

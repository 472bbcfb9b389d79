/**
 * The leak snapshot sees what it must: a planted leak of each kind (route,
 * policy rule, qdisc and filter, mangle and raw rule, sysctl, link master,
 * netns, state file, UDP conntrack entry to a removed address) and a removed
 * rule are reported, and nothing else is. Everything is planted on the host
 * end of a veth pair whose other end sits in a namespace of its own (kernels
 * without the dummy link type are common in CI VMs), all under unique names,
 * with a subnet that overlaps no host route; the only traffic is one datagram
 * into that veth, which the empty namespace behind it drops.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { randomHex } from '../../helpers/common.js';
import { diffSnapshots, takeSnapshot } from '../../helpers/host-snapshot.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { cidrsOverlap, hostRoutesV4 } from '../../helpers/subnets.js';
import { ownershipCases } from './ownership-cases.js';

const skip = skipUnless([[isRoot(), 'root (the test plants kernel network state)']]);

const id = randomHex(6);
const link = `dcsnap${id}`;
const peer = `dcsnapp${id}`;
const peerNetns = `dcsnapp-${id}`;
const bridge = `dcsnapb${id}`;
const netns = `dcsnap-${id}`;
const marker = `dcsnap-${id}`;
/** A free policy-routing priority and table, unique per run. */
const rulePriority = String(20_000 + Math.floor(Math.random() * 9_000));

const sh = async (cmd: string, ...args: string[]): Promise<void> => {
  await execa(cmd, args, { timeout: 30_000 });
};
const quietly = async (cmd: string, ...args: string[]): Promise<void> => {
  await execa(cmd, args, { reject: false, timeout: 30_000 });
};
const mangleRule = ['POSTROUTING', '-o', link, '-m', 'comment', '--comment', marker, '-j', 'RETURN'];
const rawRule = ['PREROUTING', '-i', link, '-m', 'comment', '--comment', marker, '-j', 'RETURN'];

/** A 10.239.X.0/24 that overlaps no route of any table. */
async function freeTestSubnet(): Promise<string> {
  const used = await hostRoutesV4();
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = `10.239.${1 + Math.floor(Math.random() * 250)}.0/24`;
    if (!used.some((cidr) => cidrsOverlap(cidr.includes('/') ? cidr : `${cidr}/32`, candidate))) return candidate;
  }
  throw new Error('no free 10.239.X.0/24');
}

describe('host snapshot: planted leaks are reported, both ways', { skip }, () => {
  let subnet = '';
  let dir = '';

  /**
   * Snapshot, plant, snapshot: every regexp of `expected` must match a
   * difference, and every difference must match `expected` or `incidental`
   * (what the kernel adds by itself, e.g. lines a filter dump spans). Then
   * undo and require the host to compare clean.
   */
  async function expectDiff(
    plant: () => Promise<void>,
    undo: () => Promise<void>,
    expected: RegExp[],
    options: { dirs?: string[]; incidental?: RegExp[] } = {},
  ): Promise<void> {
    const dirs = options.dirs ?? [];
    const before = await takeSnapshot({ dirs });
    let diff: string[];
    try {
      await plant();
      diff = diffSnapshots(before, await takeSnapshot({ dirs }), { subnets: [] });
    } finally {
      await undo();
    }
    const unexplained = diff.filter((line) => ![...expected, ...(options.incidental ?? [])].some((re) => re.test(line)));
    assert.deepEqual(unexplained, [], 'differences nobody planted');
    for (const re of expected) assert.ok(diff.some((line) => re.test(line)), `no difference matches ${re}; got:\n  ${diff.join('\n  ')}`);
    assert.deepEqual(diffSnapshots(before, await takeSnapshot({ dirs })), [], 'the host does not compare clean after the undo');
  }

  before(async () => {
    subnet = await freeTestSubnet();
    dir = await mkdtemp(join(tmpdir(), 'dcsnap-'));
    await sh('ip', 'netns', 'add', peerNetns);
    await sh('ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNetns);
    await sh('ip', '-n', peerNetns, 'link', 'set', peer, 'up');
    await sh('ip', 'link', 'set', link, 'up');
  });

  after(async () => {
    await quietly('iptables', '-t', 'mangle', '-D', ...mangleRule);
    await quietly('ip6tables', '-t', 'raw', '-D', ...rawRule);
    await quietly('iptables', '-t', 'raw', '-D', ...rawRule);
    await quietly('ip', 'route', 'del', subnet, 'dev', link);
    await quietly('ip', 'rule', 'del', 'priority', rulePriority);
    await quietly('ip', 'netns', 'del', netns);
    await quietly('ip', 'link', 'del', bridge);
    await quietly('ip', 'link', 'del', link);
    await quietly('ip', 'netns', 'del', peerNetns);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a route on a link', async () => {
    await expectDiff(
      () => sh('ip', 'route', 'add', subnet, 'dev', link),
      () => quietly('ip', 'route', 'del', subnet, 'dev', link),
      [new RegExp(`^\\+ routes: v4: ${subnet.replace(/\./g, '\\.')} dev ${link} scope link$`)],
    );
  });

  test('a policy routing rule', async () => {
    await expectDiff(
      () => sh('ip', 'rule', 'add', 'from', subnet, 'lookup', rulePriority, 'priority', rulePriority),
      () => quietly('ip', 'rule', 'del', 'priority', rulePriority),
      [new RegExp(`^\\+ ipRules: v4: ${rulePriority}:\\s+from ${subnet.replace(/\./g, '\\.')} lookup ${rulePriority}$`)],
    );
  });

  test('a root qdisc replacing the default one, an ingress qdisc and a filter', async () => {
    await expectDiff(
      async () => {
        await sh('tc', 'qdisc', 'add', 'dev', link, 'root', 'handle', '1:', 'pfifo', 'limit', '7');
        await sh('tc', 'qdisc', 'add', 'dev', link, 'ingress');
        await sh('tc', 'filter', 'add', 'dev', link, 'parent', 'ffff:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', subnet, 'flowid', '1:1');
      },
      async () => {
        await quietly('tc', 'qdisc', 'del', 'dev', link, 'ingress');
        await quietly('tc', 'qdisc', 'del', 'dev', link, 'root');
      },
      [
        new RegExp(`^\\+ tc: qdisc: qdisc pfifo 1: dev ${link} root limit 7p$`),
        new RegExp(`^\\+ tc: qdisc: qdisc ingress ffff: dev ${link} parent ffff:fff1 `),
        new RegExp(`^- tc: qdisc: qdisc noqueue 0: dev ${link} root`),
        new RegExp(`^\\+ tc: filter: dev ${link} ingress: filter (parent ffff: )?protocol ip pref 1 u32 `),
      ],
      { incidental: [new RegExp(`^\\+ tc: filter: dev ${link} ingress: match `)] },
    );
  });

  test('a mangle rule (IPv4) and a raw rule (IPv6)', async () => {
    await expectDiff(
      async () => {
        await sh('iptables', '-t', 'mangle', '-A', ...mangleRule);
        await sh('ip6tables', '-t', 'raw', '-A', ...rawRule);
      },
      async () => {
        await quietly('iptables', '-t', 'mangle', '-D', ...mangleRule);
        await quietly('ip6tables', '-t', 'raw', '-D', ...rawRule);
      },
      [
        new RegExp(`^\\+ iptables: mangle: -A POSTROUTING -o ${link} -m comment --comment ${marker} -j RETURN$`),
        new RegExp(`^\\+ ip6tables: raw: -A PREROUTING -i ${link} -m comment --comment ${marker} -j RETURN$`),
      ],
    );
  });

  test('a removed rule', async () => {
    await sh('iptables', '-t', 'raw', '-A', ...rawRule);
    await expectDiff(
      () => sh('iptables', '-t', 'raw', '-D', ...rawRule),
      () => sh('iptables', '-t', 'raw', '-A', ...rawRule),
      [new RegExp(`^- iptables: raw: -A PREROUTING -i ${link} -m comment --comment ${marker} -j RETURN$`)],
    );
    await sh('iptables', '-t', 'raw', '-D', ...rawRule);
  });

  test('a sysctl of a host link', async () => {
    const path = `/proc/sys/net/ipv4/conf/${link}/proxy_arp`;
    await expectDiff(
      async () => writeFileSync(path, '1'),
      async () => writeFileSync(path, '0'),
      [new RegExp(`^\\+ sysctls: ipv4/conf/${link}/proxy_arp=1$`), new RegExp(`^- sysctls: ipv4/conf/${link}/proxy_arp=0$`)],
    );
  });

  test('a link given a master, a new bridge, a netns and a state file', async () => {
    const file = join(dir, 'endpoints', 'leaked.json');
    await expectDiff(
      async () => {
        await sh('ip', 'link', 'add', bridge, 'type', 'bridge');
        await sh('ip', 'link', 'set', link, 'master', bridge);
        await sh('ip', 'netns', 'add', netns);
        await execa('mkdir', ['-p', join(dir, 'endpoints')]);
        await writeFile(file, '{}');
      },
      async () => {
        await quietly('ip', 'link', 'del', bridge);
        await quietly('ip', 'netns', 'del', netns);
        await rm(join(dir, 'endpoints'), { recursive: true, force: true });
      },
      [
        new RegExp(`^- links: ${link}$`),
        new RegExp(`^\\+ links: ${link} master ${bridge}$`),
        new RegExp(`^\\+ links: ${bridge}$`),
        new RegExp(`^\\+ tc: qdisc: .* dev ${bridge} `),
        new RegExp(`^\\+ netns: ${netns}$`),
        new RegExp(`^\\+ files: ${file.replace(/\./g, '\\.')}$`),
      ],
      // Whatever routes the kernel gives the new bridge or takes from its new port is theirs, not a plant.
      { dirs: [dir], incidental: [new RegExp(`^[+-] routes: v6: .* dev (${bridge}|${link}) `)] },
    );
  });

  test('a UDP conntrack entry left NATing to a removed address', async () => {
    const target = subnet.replace(/\.0\/24$/, '.9');
    const natted = subnet.replace(/\.0\/24$/, '.10');
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    // As a published port does: DNAT from one address of the subnet to another.
    const dnat = ['OUTPUT', '-d', `${target}/32`, '-p', 'udp', '--dport', String(port), '-m', 'comment', '--comment', marker, '-j', 'DNAT', '--to-destination', `${natted}:${port}`];
    await sh('ip', 'route', 'add', subnet, 'dev', link);
    await sh('iptables', '-t', 'nat', '-A', ...dnat);
    const before = await takeSnapshot();
    try {
      // Into the veth, behind which nobody answers: conntrack records the flow on the way out.
      await new Promise<void>((resolve, reject) => {
        const socket = createSocket('udp4');
        socket.send('x', port, target, (err) => {
          socket.close();
          if (err) reject(err);
          else resolve();
        });
      });
    } finally {
      await quietly('iptables', '-t', 'nat', '-D', ...dnat);
      await quietly('ip', 'route', 'del', subnet, 'dev', link);
    }
    const diff = diffSnapshots(before, await takeSnapshot());
    const entry = new RegExp(`^\\+ conntrack: udp ipv4 src=\\S+ dst=${target.replace(/\./g, '\\.')} sport=\\d+ dport=${port} to ${natted.replace(/\./g, '\\.')}:${port}$`);
    assert.ok(diff.some((line) => entry.test(line)), `no conntrack entry for ${target}:${port} reported; got:\n  ${diff.join('\n  ')}`);
    assert.ok(diff.some((line) => line.startsWith(`- routes: v4: ${subnet} dev ${link}`)), 'the removed route is not reported');
    assert.ok(diff.some((line) => line.startsWith('- iptables: nat: -A OUTPUT') && line.includes(marker)), 'the removed DNAT rule is not reported');
    // The entry cannot be deleted without the conntrack tool; unreplied, it expires within 30 s and was never answered.
  });
});

describe('host snapshot: ownership, not patterns, sets dockerd\'s objects apart', () => {
  for (const { name, run } of ownershipCases) test(name, run);
});

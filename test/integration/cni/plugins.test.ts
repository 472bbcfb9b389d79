/*
 * CniRuntime against the real CNI plugins, in namespaces this file creates.
 * Needs root and /usr/lib/cni (or /opt/cni/bin); skips otherwise (fails under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { CniRuntime } from '../../../src/cni/runtime.js';
import type { NetConfList, RuntimeConf } from '../../../src/cni/types.js';
import { CniPluginError } from '../../../src/errors.js';
import { CNI_BIN_DIRS, hasCniPlugins, isRoot, skipUnless } from '../../helpers/prereq.js';
import { removeDir, tempDir } from '../../unit/cni/helpers.js';

const skip = skipUnless([
  [isRoot(), 'root'],
  [hasCniPlugins(['bridge', 'host-local', 'firewall', 'portmap', 'ptp']), 'CNI plugins bridge, host-local, firewall, portmap, ptp'],
]);

const suffix = randomBytes(3).toString('hex');
const netns = `cnit-${suffix}`;
const netnsPath = `/run/netns/${netns}`;
/** A /24 inside 10.232.0.0/16, different per run. */
const subnetBase = (offset: number): string => `10.232.${(parseInt(suffix.slice(0, 2), 16) % 50) * 5 + offset}`;

async function run(file: string, args: string[]): Promise<string> {
  return (await execa(file, args)).stdout;
}
async function quietly(file: string, args: string[]): Promise<void> {
  await execa(file, args, { reject: false });
}
const natRules = (): Promise<string> => run('iptables-save', ['-t', 'nat']);
const filterRules = (): Promise<string> => run('iptables-save', ['-t', 'filter']);
const nsAddrs = (): Promise<string> => run('ip', ['-n', netns, '-o', 'addr']);
async function linkExists(name: string, inNs = true): Promise<boolean> {
  const args = inNs ? ['-n', netns, 'link', 'show', name] : ['link', 'show', name];
  return (await execa('ip', args, { reject: false })).exitCode === 0;
}

describe('CniRuntime with the real CNI plugins', { skip }, () => {
  let work: string;
  let runtime: CniRuntime;
  const bridges: string[] = [];

  before(async () => {
    work = await tempDir('cni-int-');
    runtime = new CniRuntime({ binDirs: [...CNI_BIN_DIRS], cacheDir: join(work, 'cache') });
    await run('ip', ['netns', 'add', netns]);
  });
  after(async () => {
    await quietly('ip', ['netns', 'del', netns]);
    for (const link of bridges) await quietly('ip', ['link', 'del', link]);
    await removeDir(work);
  });

  const bridgeList = (name: string, bridge: string, subnet: string, meta: object[] = []): NetConfList => ({
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipam: { type: 'host-local', dataDir: join(work, 'host-local'), ranges: [[{ subnet }]] },
      },
      ...(meta as NetConfList['plugins']),
    ],
  });

  test('bridge + host-local: ADD configures the netns; DEL twice leaves nothing', async () => {
    const name = `cnit-br-${suffix}`;
    const bridge = `cnib${suffix}`;
    bridges.push(bridge);
    const rt: RuntimeConf = { containerId: `ctr-${suffix}-a`, netns: netnsPath, ifName: 'eth0' };
    const list = bridgeList(name, bridge, `${subnetBase(0)}.0/24`);
    const result = await runtime.addNetworkList(list, rt);
    const address = result.ips?.[0]?.address;
    assert.ok(address?.startsWith(`${subnetBase(0)}.`), `got ${address}`);
    assert.match(await nsAddrs(), new RegExp(`eth0\\s+inet ${address?.replace(/\./g, '\\.')}`));
    assert.ok(await runtime.getCachedAttachment(name, rt.containerId, 'eth0'));

    await runtime.delNetworkList(list, rt);
    await runtime.delNetworkList(list, rt);
    assert.equal(await linkExists('eth0'), false);
    const hostLocalFiles = await readdir(join(work, 'host-local', name));
    assert.deepEqual(hostLocalFiles.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)), [], 'no host-local reservation left');
    assert.equal(await runtime.getCachedAttachment(name, rt.containerId, 'eth0'), undefined);
  });

  test('bridge + firewall + portmap: rules exist after ADD and are gone after DEL', async () => {
    const name = `cnit-pm-${suffix}`;
    const bridge = `cnip${suffix}`;
    bridges.push(bridge);
    const hostPort = 20000 + (parseInt(suffix, 16) % 9000);
    const containerId = `ctr-${suffix}-pm`;
    const rt: RuntimeConf = {
      containerId,
      netns: netnsPath,
      ifName: 'eth0',
      capabilityArgs: { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] },
    };
    const list = bridgeList(name, bridge, `${subnetBase(1)}.0/24`, [
      { type: 'firewall' },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ]);
    const result = await runtime.addNetworkList(list, rt);
    const ip = result.ips?.[0]?.address.split('/')[0] ?? '';
    const nat = await natRules();
    assert.ok(nat.includes(`--to-destination ${ip}:80`), 'DNAT to the container');
    assert.ok(nat.split('\n').some((line) => line.includes('CNI-HOSTPORT-DNAT') && line.includes(containerId)), 'CNI-HOSTPORT-DNAT jump for the container');
    assert.ok((await filterRules()).includes(`${ip}/32`), 'firewall ACCEPT rules for the container IP');

    // DEL with no capability args: the cached portMappings are replayed.
    await runtime.delNetworkList(list, { containerId, netns: netnsPath, ifName: 'eth0' });
    const natAfter = await natRules();
    assert.equal(natAfter.includes(containerId), false, 'no nat rule mentions the container');
    assert.equal(natAfter.includes(`--to-destination ${ip}:80`), false);
    assert.equal((await filterRules()).includes(`${ip}/32`), false);
  });

  test('ptp + host-local: a veth pair with a host route; DEL removes both ends', async () => {
    const name = `cnit-ptp-${suffix}`;
    const list: NetConfList = {
      cniVersion: '1.0.0',
      name,
      plugins: [{ type: 'ptp', ipam: { type: 'host-local', dataDir: join(work, 'host-local'), ranges: [[{ subnet: `${subnetBase(2)}.0/24` }]] } }],
    };
    const rt: RuntimeConf = { containerId: `ctr-${suffix}-ptp`, netns: netnsPath, ifName: 'p2p0' };
    const result = await runtime.addNetworkList(list, rt);
    const address = result.ips?.[0]?.address ?? '';
    const hostSide = result.interfaces?.find((i) => !i.sandbox)?.name ?? '';
    assert.ok(hostSide.startsWith('veth'), `host side ${hostSide}`);
    assert.match(await nsAddrs(), new RegExp(`p2p0\\s+inet ${address.replace(/\./g, '\\.')}`));
    assert.ok(await linkExists(hostSide, false));
    await runtime.delNetworkList(list, rt);
    assert.equal(await linkExists('p2p0'), false);
    assert.equal(await linkExists(hostSide, false), false);
    await runtime.delNetworkList(list, rt);
  });

  test('a plugin error surfaces with its CNI code and message, and nothing is left', async () => {
    const name = `cnit-bad-${suffix}`;
    const bridge = `cnix${suffix}`;
    bridges.push(bridge);
    const list: NetConfList = {
      cniVersion: '1.0.0',
      name,
      plugins: [{ type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: join(work, 'host-local'), ranges: [[{ subnet: 'not-a-subnet' }]] } }],
    };
    const rt: RuntimeConf = { containerId: `ctr-${suffix}-bad`, netns: netnsPath, ifName: 'eth1' };
    await assert.rejects(runtime.addNetworkList(list, rt), (err: unknown) => {
      assert.ok(err instanceof CniPluginError, String(err));
      assert.equal(err.plugin, 'bridge');
      // The Debian plugins report most failures with their own code 999; the message proves it was decoded.
      assert.equal(err.cniCode, 999);
      assert.equal(err.cniMsg, 'invalid CIDR address: not-a-subnet');
      assert.match(err.message, /^bridge failed \(ADD\): .*\(CNI code \d+\)$/);
      return true;
    });
    assert.equal(await linkExists('eth1'), false);
    assert.equal(await runtime.getCachedAttachment(name, rt.containerId, 'eth1'), undefined);
  });

  test('CHECK passes on a live bridge attachment', async () => {
    const name = `cnit-ck-${suffix}`;
    const bridge = `cnic${suffix}`;
    bridges.push(bridge);
    const list = bridgeList(name, bridge, `${subnetBase(3)}.0/24`);
    const rt: RuntimeConf = { containerId: `ctr-${suffix}-ck`, netns: netnsPath, ifName: 'eth2' };
    await runtime.addNetworkList(list, rt);
    try {
      await runtime.checkNetworkList(list, rt);
    } finally {
      await runtime.delNetworkList(list, rt);
    }
  });
});

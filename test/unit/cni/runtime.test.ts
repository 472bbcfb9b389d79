import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { CniRuntime } from '../../../src/cni/runtime.js';
import type { NetConfList, RuntimeConf } from '../../../src/cni/types.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import { RecordingExecutor, removeDir, tempDir } from './helpers.js';

const BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];

function makeList(cniVersion = '1.0.0', extra: Partial<NetConfList> = {}): NetConfList {
  return {
    cniVersion,
    name: 'testnet',
    plugins: [
      { type: 'alpha', capabilities: { portMappings: true, notGiven: true }, alphaOption: 1 },
      { type: 'beta', capabilities: { portMappings: false, bandwidth: true } },
      { type: 'gamma' },
    ],
    ...extra,
  };
}

const rt = (extra: Partial<RuntimeConf> = {}): RuntimeConf => ({
  containerId: 'ctr-1',
  netns: '/run/netns/test-ns',
  ifName: 'eth0',
  args: [['IP', '10.232.0.5'], ['MAC', '02:00:00:00:00:05']],
  capabilityArgs: {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    bandwidth: { ingressRate: 1000 },
    mac: '02:00:00:00:00:05',
  },
  ...extra,
});

const isCode = (code: string) => (err: unknown): boolean => err instanceof PluginError && err.code === code;

describe('CniRuntime', () => {
  let cacheDir: string;
  let exec: RecordingExecutor;
  let runtime: CniRuntime;
  const cachePath = (cid = 'ctr-1', ifName = 'eth0', net = 'testnet'): string => join(cacheDir, 'results', `${net}-${cid}-${ifName}`);

  beforeEach(async () => {
    cacheDir = await tempDir('cni-rt-');
    exec = new RecordingExecutor();
    runtime = new CniRuntime({ binDirs: BIN_DIRS, cacheDir, exec });
  });
  afterEach(async () => removeDir(cacheDir));
  after(() => undefined);

  test('ADD chains plugins in order, passing each result on as prevResult', async () => {
    exec.responder = (call) => {
      if (call.verb !== 'ADD') return undefined;
      if (call.type === 'alpha') {
        return { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/test-ns' }], ips: [{ address: '10.232.0.5/24', gateway: '10.232.0.1', interface: 0 }] };
      }
      const prev = call.conf.prevResult as Record<string, unknown>;
      return { ...prev, [`${call.type}Saw`]: true };
    };
    const result = await runtime.addNetworkList(makeList(), rt());
    assert.deepEqual(exec.verbs(), ['alpha:ADD', 'beta:ADD', 'gamma:ADD']);
    const [alpha, beta, gamma] = exec.calls;
    assert.ok(alpha && beta && gamma);
    assert.equal(alpha.conf.prevResult, undefined);
    assert.equal(alpha.conf.name, 'testnet');
    assert.equal(alpha.conf.cniVersion, '1.0.0');
    assert.equal(alpha.conf.alphaOption, 1);
    assert.deepEqual((beta.conf.prevResult as { ips: unknown }).ips, [{ address: '10.232.0.5/24', gateway: '10.232.0.1', interface: 0 }]);
    assert.equal((gamma.conf.prevResult as Record<string, unknown>).betaSaw, true);
    assert.equal(result.cniVersion, '1.0.0');
    assert.equal(result.betaSaw, true);
    assert.equal(result.gammaSaw, true);
    assert.deepEqual(alpha.env, {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'ctr-1',
      CNI_NETNS: '/run/netns/test-ns',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IP=10.232.0.5;MAC=02:00:00:00:00:05',
      CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
    });
    const cached = await runtime.getCachedAttachment('testnet', 'ctr-1', 'eth0');
    assert.equal(cached?.result?.gammaSaw, true);
    assert.equal(cached?.netns, '/run/netns/test-ns');
    assert.deepEqual(await runtime.listCachedAttachments('testnet'), [cached]);
  });

  test('runtimeConfig holds only the capabilities a plugin declares true', async () => {
    await runtime.addNetworkList(makeList(), rt());
    const [alpha, beta, gamma] = exec.calls;
    assert.deepEqual(alpha?.conf.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.deepEqual(beta?.conf.runtimeConfig, { bandwidth: { ingressRate: 1000 } });
    assert.equal(gamma?.conf.runtimeConfig, undefined);
    assert.equal('capabilities' in (gamma?.conf ?? {}), false);
  });

  test('DEL runs in reverse, replaying the cached config, args, capabilities and result; twice is fine', async () => {
    const added = await runtime.addNetworkList(makeList(), rt());
    exec.calls.length = 0;
    // A changed list and different args: the cached ones still win.
    const changed: NetConfList = { cniVersion: '1.0.0', name: 'testnet', plugins: [{ type: 'other' }] };
    await runtime.delNetworkList(changed, rt({ args: [], capabilityArgs: {}, netns: '' }));
    assert.deepEqual(exec.verbs(), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    for (const call of exec.calls) {
      assert.deepEqual(call.conf.prevResult, added);
      assert.equal(call.env.CNI_ARGS, 'IP=10.232.0.5;MAC=02:00:00:00:00:05');
      assert.equal(call.env.CNI_NETNS, '', 'the netns given to DEL, not the cached one');
    }
    assert.deepEqual(exec.calls[2]?.conf.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.deepEqual(await readdir(join(cacheDir, 'results')), []);

    exec.calls.length = 0;
    await runtime.delNetworkList(changed, rt({ netns: '' }));
    assert.deepEqual(exec.verbs(), ['other:DEL'], 'without a cache entry the given list is used');
    assert.equal(exec.calls[0]?.conf.prevResult, undefined);
  });

  test('DEL without a list finds the cache entry; without either it does nothing', async () => {
    await runtime.addNetworkList(makeList(), rt());
    exec.calls.length = 0;
    await runtime.delNetworkList(undefined, rt());
    assert.deepEqual(exec.verbs(), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    exec.calls.length = 0;
    await runtime.delNetworkList(undefined, rt());
    await runtime.delNetworkList(undefined, rt(), { networkName: 'testnet' });
    assert.equal(exec.calls.length, 0);
  });

  test('a failing DEL plugin does not stop the others; the error surfaces and the cache stays', async () => {
    await runtime.addNetworkList(makeList(), rt());
    exec.calls.length = 0;
    exec.responder = (call) => (call.type === 'beta' && call.verb === 'DEL' ? new CniPluginError('beta', 'DEL', 11, 'busy') : undefined);
    await assert.rejects(runtime.delNetworkList(makeList(), rt()), (err: unknown) => err instanceof CniPluginError && err.cniCode === 11);
    assert.deepEqual(exec.verbs(), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    assert.ok(await runtime.getCachedAttachment('testnet', 'ctr-1', 'eth0'));
    exec.responder = () => undefined;
    await runtime.delNetworkList(makeList(), rt());
    assert.equal(await runtime.getCachedAttachment('testnet', 'ctr-1', 'eth0'), undefined);
  });

  test('a failing second plugin rolls the whole chain back and rethrows', async () => {
    exec.responder = (call) => (call.type === 'beta' && call.verb === 'ADD' ? new CniPluginError('beta', 'ADD', 7, 'bad config') : undefined);
    await assert.rejects(runtime.addNetworkList(makeList(), rt()), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.cniCode, 7);
      assert.equal(err.plugin, 'beta');
      return true;
    });
    assert.deepEqual(exec.verbs(), ['alpha:ADD', 'beta:ADD', 'gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    const alphaResult = JSON.parse(JSON.stringify(exec.calls[1]?.conf.prevResult)) as unknown;
    assert.deepEqual(exec.calls[4]?.conf.prevResult, alphaResult, 'rollback DEL gets the last result');
    assert.deepEqual(exec.calls[4]?.conf.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    await assert.rejects(readdir(join(cacheDir, 'results')), /ENOENT/);
  });

  test('an undecodable ADD result is CNI code 6 and is rolled back', async () => {
    exec.responder = (call) => (call.type === 'gamma' && call.verb === 'ADD' ? 'not json' : undefined);
    await assert.rejects(runtime.addNetworkList(makeList(), rt()), (err: unknown) => err instanceof CniPluginError && err.cniCode === 6 && err.plugin === 'gamma');
    assert.deepEqual(exec.verbs().slice(3), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
  });

  test('accepts results without cniVersion or interfaces and with interface: -1', async () => {
    exec.responder = (call) => (call.verb === 'ADD' && call.type === 'alpha' ? { ips: [{ address: '10.232.0.7/24', interface: -1 }] } : undefined);
    const result = await runtime.addNetworkList(makeList(), rt());
    assert.deepEqual(result, { cniVersion: '1.0.0', ips: [{ address: '10.232.0.7/24' }] });
  });

  test('a 0.3.1 list gets prevResult in 0.3.1 shape; the caller gets 1.0.0; the cache keeps 0.3.1', async () => {
    const result = await runtime.addNetworkList(makeList('0.3.1'), rt());
    const beta = exec.calls[1];
    assert.equal(beta?.conf.cniVersion, '0.3.1');
    const prev = beta?.conf.prevResult as { cniVersion: string; ips: Array<{ version?: string }> };
    assert.equal(prev.cniVersion, '0.3.1');
    assert.equal(prev.ips[0]?.version, '4');
    assert.equal(result.cniVersion, '1.0.0');
    assert.equal((result.ips?.[0] as { version?: string }).version, undefined);
    const onDisk = JSON.parse(await readFile(cachePath(), 'utf8')) as { result: { cniVersion: string } };
    assert.equal(onDisk.result.cniVersion, '0.3.1');
    exec.calls.length = 0;
    await runtime.delNetworkList(makeList('0.3.1'), rt());
    assert.equal(exec.calls[0]?.conf.prevResult, undefined, 'no prevResult on DEL before 0.4.0');
  });

  test('0.4.0 DEL gets the cached result converted to 0.4.0', async () => {
    await runtime.addNetworkList(makeList('0.4.0'), rt());
    exec.calls.length = 0;
    await runtime.delNetworkList(makeList('0.4.0'), rt());
    const prev = exec.calls[0]?.conf.prevResult as { cniVersion: string; ips: Array<{ version?: string }> };
    assert.equal(prev.cniVersion, '0.4.0');
    assert.equal(prev.ips[0]?.version, '4');
  });

  test('no VERSION call for lists up to 1.0.0; plugin paths are resolved once', async () => {
    for (let i = 0; i < 3; i++) {
      await runtime.addNetworkList(makeList(), rt());
      await runtime.delNetworkList(makeList(), rt());
    }
    assert.equal(exec.verbs().filter((v) => v.endsWith(':VERSION')).length, 0);
    assert.equal(exec.findInPathCalls, 3);
  });

  test('a 1.1.0 list is negotiated down to what every plugin supports, asking each binary once', async () => {
    exec.versions = { alpha: ['0.4.0', '1.0.0', '1.1.0'], beta: ['0.4.0', '1.0.0'], gamma: ['1.0.0', '1.1.0'] };
    const list = makeList('1.1.0', { cniVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    for (let i = 0; i < 2; i++) {
      await runtime.addNetworkList(list, rt());
      await runtime.delNetworkList(list, rt());
    }
    assert.deepEqual(exec.verbs().filter((v) => v.endsWith(':VERSION')).sort(), ['alpha:VERSION', 'beta:VERSION', 'gamma:VERSION']);
    for (const call of exec.calls.filter((c) => c.verb !== 'VERSION')) assert.equal(call.conf.cniVersion, '1.0.0');
    assert.deepEqual(await runtime.getVersionInfo('beta'), { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] });
  });

  test('a 1.1.0-only list fails with code 1 before running anything if a plugin lacks 1.1.0', async () => {
    exec.versions = { alpha: ['1.0.0', '1.1.0'], beta: ['1.0.0'], gamma: ['1.1.0'] };
    await assert.rejects(runtime.addNetworkList(makeList('1.1.0'), rt()), (err: unknown) => {
      assert.ok(err instanceof CniPluginError);
      assert.equal(err.cniCode, 1);
      assert.equal(err.plugin, 'beta');
      return true;
    });
    assert.equal(exec.calls.filter((c) => c.verb === 'ADD').length, 0);
    exec.versions.beta = ['1.0.0', '1.1.0'];
    runtime = new CniRuntime({ binDirs: BIN_DIRS, cacheDir, exec });
    await runtime.addNetworkList(makeList('1.1.0'), rt());
    assert.equal(exec.calls.at(-1)?.conf.cniVersion, '1.1.0');
  });

  test('ADD over an existing attachment is a CONFLICT', async () => {
    await runtime.addNetworkList(makeList(), rt());
    await assert.rejects(runtime.addNetworkList(makeList(), rt()), isCode('CONFLICT'));
    await runtime.addNetworkList(makeList(), rt({ ifName: 'eth1' }));
  });

  test('a corrupt cache entry falls back to the given list and is removed', async () => {
    await mkdir(join(cacheDir, 'results'), { recursive: true });
    await writeFile(cachePath(), '{"kind":"cniCacheV1", broken');
    await runtime.delNetworkList(makeList(), rt({ netns: '' }));
    assert.deepEqual(exec.verbs(), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    await assert.rejects(readFile(cachePath()), /ENOENT/);
    await writeFile(cachePath(), 'garbage');
    await assert.rejects(runtime.delNetworkList(undefined, rt(), { networkName: 'testnet' }), isCode('STATE_FAILED'));
  });

  test('invalid IDs, names and interface names are refused before any plugin runs', async () => {
    for (const bad of [rt({ containerId: '../x' }), rt({ containerId: 'a/b' }), rt({ containerId: '' }), rt({ ifName: 'a/b' }), rt({ ifName: '0123456789abcdef' }), rt({ ifName: '..' }), rt({ netns: 'rel' })]) {
      await assert.rejects(runtime.addNetworkList(makeList(), bad), isCode('INVALID_ARGUMENT'));
      await assert.rejects(runtime.delNetworkList(makeList(), bad), isCode('INVALID_ARGUMENT'));
    }
    await assert.rejects(runtime.addNetworkList({ ...makeList(), name: '../evil' }, rt()), isCode('INVALID_ARGUMENT'));
    await assert.rejects(runtime.addNetworkList({ ...makeList(), plugins: [{ type: '../sh' }] }, rt()), isCode('INVALID_ARGUMENT'));
    await assert.rejects(runtime.addNetworkList(makeList(), rt({ netns: '' })), isCode('INVALID_ARGUMENT'));
    await assert.rejects(runtime.addNetworkList(makeList(), rt({ args: [['A;B', '1']] })), isCode('INVALID_ARGUMENT'));
    assert.equal(exec.calls.length, 0);
  });

  test('a missing plugin binary is NOT_FOUND and rolls back', async () => {
    const list: NetConfList = { cniVersion: '1.0.0', name: 'testnet', plugins: [{ type: 'alpha' }, { type: 'missing-plugin' }] };
    await assert.rejects(runtime.addNetworkList(list, rt()), isCode('NOT_FOUND'));
    assert.deepEqual(exec.verbs(), ['alpha:ADD', 'alpha:DEL']);
  });

  test('CHECK follows the spec rules', async () => {
    await assert.rejects(runtime.checkNetworkList(makeList('0.3.1'), rt()), (err: unknown) => isCode('INVALID_ARGUMENT')(err) && /does not support the CHECK/.test((err as Error).message));
    await runtime.checkNetworkList(makeList('1.0.0', { disableCheck: true }), rt());
    assert.equal(exec.calls.length, 0);
    await assert.rejects(runtime.checkNetworkList(makeList(), rt()), isCode('NOT_FOUND'));
    const added = await runtime.addNetworkList(makeList(), rt());
    exec.calls.length = 0;
    await runtime.checkNetworkList(makeList(), rt({ capabilityArgs: undefined }));
    assert.deepEqual(exec.verbs(), ['alpha:CHECK', 'beta:CHECK', 'gamma:CHECK']);
    for (const call of exec.calls) assert.deepEqual(call.conf.prevResult, added);
    assert.ok(exec.calls[0]?.conf.runtimeConfig, 'cached capability args are used when none are given');
    exec.responder = (call) => (call.verb === 'CHECK' && call.type === 'beta' ? new CniPluginError('beta', 'CHECK', 5, 'link gone') : undefined);
    await assert.rejects(runtime.checkNetworkList(makeList(), rt()), (err: unknown) => err instanceof CniPluginError && err.cniCode === 5);
  });

  test('GC deletes cached attachments that are not valid; the GC verb only goes to 1.1.0 plugins of a 1.1.0 list', async () => {
    await runtime.addNetworkList(makeList(), rt({ containerId: 'keep' }));
    await runtime.addNetworkList(makeList(), rt({ containerId: 'stale' }));
    await runtime.addNetworkList({ ...makeList(), name: 'othernet' }, rt({ containerId: 'stale' }));
    exec.calls.length = 0;
    await runtime.gcNetworkList(makeList(), [{ containerId: 'keep', ifName: 'eth0' }]);
    assert.deepEqual(exec.verbs(), ['gamma:DEL', 'beta:DEL', 'alpha:DEL']);
    assert.ok(exec.calls.every((c) => c.env.CNI_CONTAINERID === 'stale'));
    assert.deepEqual((await runtime.listCachedAttachments('testnet')).map((a) => a.containerId), ['keep']);
    assert.equal((await runtime.listCachedAttachments()).length, 2);

    exec.calls.length = 0;
    exec.versions = { alpha: ['1.0.0', '1.1.0'], beta: ['1.0.0'], gamma: ['1.0.0'] };
    await runtime.gcNetworkList(makeList('1.0.0', { cniVersions: ['1.0.0', '1.1.0'] }), [{ containerId: 'keep', ifName: 'eth0' }]);
    const gcCalls = exec.calls.filter((c) => c.verb === 'GC');
    assert.deepEqual(gcCalls.map((c) => c.type), ['alpha']);
    assert.equal(gcCalls[0]?.conf.cniVersion, '1.1.0');
    assert.deepEqual(gcCalls[0]?.conf['cni.dev/valid-attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.deepEqual(gcCalls[0]?.conf['cni.dev/attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
    assert.deepEqual(gcCalls[0]?.env, { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' });

    exec.calls.length = 0;
    await runtime.gcNetworkList(makeList('1.0.0', { cniVersions: ['1.0.0', '1.1.0'], disableGC: true }), []);
    assert.deepEqual(exec.calls.filter((c) => c.verb === 'GC'), []);
  });

  test('STATUS is a no-op below 1.1.0 and asks 1.1.0 plugins otherwise', async () => {
    await runtime.getStatusNetworkList(makeList());
    assert.equal(exec.calls.length, 0);
    exec.versions = { alpha: ['1.0.0', '1.1.0'], beta: ['1.0.0'], gamma: ['1.1.0'] };
    const list = makeList('1.1.0', { cniVersions: ['1.0.0', '1.1.0'] });
    await runtime.getStatusNetworkList(list);
    assert.deepEqual(exec.verbs().filter((v) => v.endsWith(':STATUS')), ['alpha:STATUS', 'gamma:STATUS']);
    exec.responder = (call) => (call.verb === 'STATUS' ? new CniPluginError(call.type, 'STATUS', 50, 'not ready') : undefined);
    await assert.rejects(runtime.getStatusNetworkList(list), (err: unknown) => err instanceof CniPluginError && err.cniCode === 50);
  });

  test('execIpam runs one IPAM plugin with no cache', async () => {
    const netconf = { cniVersion: '1.0.0', name: 'ipamnet', ipam: { type: 'host-local', ranges: [[{ subnet: '10.232.9.0/24' }]] } };
    const result = await runtime.execIpam('ADD', netconf, { containerId: 'c9', ifName: 'eth0', netns: '' });
    assert.equal(result?.ips?.[0]?.address, '10.232.250.2/24');
    assert.equal(await runtime.execIpam('DEL', netconf, { containerId: 'c9', ifName: 'eth0', netns: '' }), undefined);
    assert.deepEqual(exec.verbs(), ['host-local:ADD', 'host-local:DEL']);
    assert.deepEqual(exec.calls[0]?.conf, netconf);
    await assert.rejects(readdir(join(cacheDir, 'results')), /ENOENT/);
    await assert.rejects(runtime.execIpam('ADD', { ...netconf, ipam: { type: '../x' } }, { containerId: 'c9', ifName: 'eth0', netns: '' }), isCode('INVALID_ARGUMENT'));
  });

  test('operations on one attachment are serialised', async () => {
    let running = 0;
    let maxRunning = 0;
    const slowExec = new RecordingExecutor();
    const base = slowExec.execPlugin.bind(slowExec);
    slowExec.execPlugin = async (...callArgs) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      return base(...callArgs);
    };
    const serial = new CniRuntime({ binDirs: BIN_DIRS, cacheDir, exec: slowExec });
    const list: NetConfList = { cniVersion: '1.0.0', name: 'testnet', plugins: [{ type: 'alpha' }] };
    await Promise.all([serial.addNetworkList(list, rt()), serial.delNetworkList(list, rt()), serial.delNetworkList(list, rt())]);
    assert.equal(maxRunning, 1);
    assert.deepEqual(slowExec.verbs(), ['alpha:ADD', 'alpha:DEL', 'alpha:DEL'], 'the second DEL, given the list, runs it again (idempotent)');
  });
});

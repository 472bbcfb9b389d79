/*
 * Interop with libcni itself: a cnitool-like fixture (test/fixtures/libcni-tool)
 * built offline on Debian's libcni source CHECKs and DELs an attachment that
 * docker-cni's runtime made, from docker-cni's cache; and docker-cni DELs one
 * libcni made, from libcni's cache. Needs root, the CNI plugins, golang-go and
 * golang-github-appc-cni-dev; skips otherwise (fails under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { CniRuntime } from '../../../src/cni/runtime.js';
import type { NetConfList, RuntimeConf } from '../../../src/cni/types.js';
import { REPO_ROOT } from '../../helpers/engine.js';
import { CNI_BIN_DIRS, hasCniPlugins, isRoot, skipUnless } from '../../helpers/prereq.js';
import { removeDir, tempDir } from '../../unit/cni/helpers.js';

const LIBCNI_SRC = '/usr/share/gocode/src/github.com/containernetworking/cni/libcni';
const skip = skipUnless([
  [isRoot(), 'root'],
  [hasCniPlugins(['bridge', 'host-local', 'firewall']), 'CNI plugins bridge, host-local, firewall'],
  [existsSync(LIBCNI_SRC), 'golang-github-appc-cni-dev (libcni source)'],
  [(await execa('go', ['version'], { reject: false })).exitCode === 0, 'golang-go'],
]);

const suffix = randomBytes(3).toString('hex');
const netns = `cnit-lc-${suffix}`;
const netnsPath = `/run/netns/${netns}`;
const bridge = `cnilc${suffix}`;
const name = `cnit-lc-${suffix}`;

describe('libcni interop (cnitool-like fixture on Debian libcni)', { skip }, () => {
  let work: string;
  let tool: string;
  let runtime: CniRuntime;
  let env: Record<string, string>;
  let list: NetConfList;

  before(async () => {
    work = await tempDir('cni-libcni-');
    tool = join(work, 'libcni-tool');
    await execa('go', ['build', '-o', tool, './test/fixtures/libcni-tool'], {
      cwd: REPO_ROOT,
      env: { GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOCACHE: join(work, 'gocache'), GOPROXY: 'off' },
    });
    const cacheDir = join(work, 'cache');
    runtime = new CniRuntime({ binDirs: [...CNI_BIN_DIRS], cacheDir });
    env = { CNI_PATH: CNI_BIN_DIRS.join(':'), CNI_CACHE_DIR: cacheDir, NETCONFPATH: join(work, 'conf') };
    list = {
      cniVersion: '1.0.0',
      name,
      plugins: [
        { type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', dataDir: join(work, 'host-local'), ranges: [[{ subnet: '10.236.200.0/24' }]] } },
        { type: 'firewall' },
      ],
    };
    const confDir = join(work, 'conf');
    await mkdir(confDir, { recursive: true });
    await writeFile(join(confDir, `${name}.conflist`), JSON.stringify(list));
    await execa('ip', ['netns', 'add', netns]);
  });
  after(async () => {
    await execa('ip', ['netns', 'del', netns], { reject: false });
    await execa('ip', ['link', 'del', bridge], { reject: false });
    await removeDir(work);
  });

  const libcni = (args: string[]) => execa(tool, args, { env, reject: false });

  test('libcni CHECKs and DELs, from the cache, an attachment docker-cni made', async () => {
    const rt: RuntimeConf = { containerId: `dcni-${suffix}-a`, netns: netnsPath, ifName: 'eth0', args: [['IgnoreUnknown', '1'], ['DOCKER_ENDPOINT_ID', `ep${suffix}`]] };
    await runtime.addNetworkList(list, rt);
    const check = await libcni(['check', name, rt.containerId, netnsPath]);
    assert.equal(check.exitCode, 0, check.stderr);
    const del = await libcni(['del', name, rt.containerId, netnsPath]);
    assert.equal(del.exitCode, 0, del.stderr);
    assert.deepEqual(await readdir(join(work, 'cache', 'results')), []);
    assert.equal((await execa('ip', ['-n', netns, 'link', 'show', 'eth0'], { reject: false })).exitCode, 1, 'eth0 is gone from the netns');
  });

  test('docker-cni DELs, from the cache, an attachment libcni made', async () => {
    const containerId = `lc-${suffix}-b`;
    const add = await libcni(['add', name, containerId, netnsPath]);
    assert.equal(add.exitCode, 0, add.stderr);
    await runtime.delNetworkList(undefined, { containerId, netns: netnsPath, ifName: 'eth0' });
    assert.deepEqual(await readdir(join(work, 'cache', 'results')), []);
    assert.equal((await execa('ip', ['-n', netns, 'link', 'show', 'eth0'], { reject: false })).exitCode, 1, 'eth0 is gone from the netns');
  });
});

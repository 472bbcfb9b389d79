/**
 * "One `docker plugin install`": the managed plugin, with config.json's
 * default mounts (no `docker plugin set <mount>.source`), is created and
 * enabled on a host that has none of /etc/cni/net.d, /opt/cni/bin,
 * /var/lib/cni and /var/lib/docker-cni, and then carries a container that
 * reaches another by name.
 *
 * The "host" is a private dockerd (own data-root, exec-root and socket) in a
 * mount namespace of its own (unshare --propagation slave) where /etc, /opt
 * and /var/lib are overlays on the real dirs with those four dirs deleted
 * (whiteouts in a temp upper dir). Everything the plugin creates lands in the
 * temp upper dirs: the real host dirs are never touched, and the overlays go
 * with the namespace when the daemon stops. The exception is the endpoint
 * records' default, /run/docker-cni on the host's own /run (the daemon's
 * socket lives there too, so it is not overlaid): made if missing, and
 * removed again afterwards if it was. The host's dockerd is used only to
 * `docker save` the test image.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { dockerAvailable, isRoot, skipUnless } from '../helpers/prereq.js';
import { DOCKER_BIN, IDLE_COMMAND, REPO_ROOT, TEST_IMAGE, ensureTestImage, freeSubnet, randomHex, uniqueName } from '../helpers/engine.js';
import { DaemonUnderTest } from '../helpers/dockerd-under-test.js';
import { hostDockerdBinary } from '../helpers/dockerd-process.js';
import { assertNoLeaks, takeSnapshot } from '../helpers/host-snapshot.js';
import { TEST_AUTO_POOLS_V4, pluginSource, type PluginSource } from './managed-plugin.js';

const HIDDEN = ['/etc/cni/net.d', '/opt/cni/bin', '/var/lib/cni', '/var/lib/docker-cni'] as const;
const PARENTS = ['/etc', '/opt', '/var/lib'] as const;
/** The run-state mount's default: the host's /run/docker-cni. */
const RUN_DIR = '/run/docker-cni';

const skip = skipUnless([
  [isRoot(), 'root'],
  [existsSync(DOCKER_BIN), `docker client ${DOCKER_BIN}`],
  [await dockerAvailable(), 'a running dockerd on /var/run/docker.sock'],
  [existsSync('/usr/bin/unshare') && existsSync('/usr/bin/nsenter'), 'unshare and nsenter (util-linux)'],
  [existsSync(join(REPO_ROOT, 'node_modules', 'typescript')), 'node_modules (npm ci) for the offline build'],
]);

/** Runs a command inside the daemon's mount namespace. */
async function inNamespace(pid: number, argv: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('nsenter', ['--target', String(pid), '--mount', '--', ...argv], { reject: false, timeout: 30_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout).trim(), stderr: String(r.stderr).trim() };
}

describe('managed plugin on a host without any CNI or state directory', { skip }, () => {
  let source: PluginSource | undefined;
  let daemon: DaemonUnderTest | undefined;
  let overlayRoot: string | undefined;
  const hostHadBefore = new Map(HIDDEN.map((dir) => [dir, existsSync(dir)]));
  const runDirExisted = existsSync(RUN_DIR);

  after(async () => {
    await daemon?.dispose();
    if (!runDirExisted) await rm(RUN_DIR, { recursive: true, force: true });
    if (overlayRoot) await rm(overlayRoot, { recursive: true, force: true });
    await source?.dispose();
    // The real host dirs are exactly as they were.
    for (const [dir, had] of hostHadBefore) assert.equal(existsSync(dir), had, `host ${dir} changed`);
  });

  test('install with defaults, enable, and a container reaches another by name', { timeout: 600_000 }, async () => {
    await ensureTestImage();
    source = await pluginSource();
    daemon = await DaemonUnderTest.create();
    const execRoot = daemon.execRoot ?? '';
    const dataRoot = daemon.dataRoot ?? '';
    mkdirSync(dataRoot, { recursive: true });
    await daemon.launch({
      exe: '/usr/bin/unshare',
      argv: [
        'unshare', '--mount', '--propagation', 'slave', '--',
        hostDockerdBinary(),
        '--data-root', dataRoot,
        '--exec-root', execRoot,
        '--pidfile', daemon.pidFile,
        '-H', `unix://${daemon.socket}`,
        '--bridge', 'none', '--iptables=false', '--ip6tables=false',
      ],
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const pid = daemon.pid();
    assert.ok(pid, 'private dockerd pid');

    // Hide the four dirs from the daemon (and so from the plugin it starts).
    overlayRoot = await mkdtemp(join(tmpdir(), 'dcni-fresh-host-'));
    for (const parent of PARENTS) {
      const upper = join(overlayRoot, basename(parent), 'upper');
      const work = join(overlayRoot, basename(parent), 'work');
      mkdirSync(upper, { recursive: true });
      mkdirSync(work, { recursive: true });
      const mounted = await inNamespace(pid, ['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${parent},upperdir=${upper},workdir=${work}`, parent]);
      assert.equal(mounted.exitCode, 0, `overlay on ${parent}: ${mounted.stderr}`);
    }
    for (const dir of HIDDEN) {
      assert.equal((await inNamespace(pid, ['rm', '-rf', dir])).exitCode, 0);
      assert.notEqual((await inNamespace(pid, ['test', '-e', dir])).exitCode, 0, `${dir} still exists for the daemon`);
    }

    const docker = daemon.docker;
    const archive = join(overlayRoot, 'image.tar');
    await execa(DOCKER_BIN, ['save', '-o', archive, TEST_IMAGE], { timeout: 120_000 });
    await docker.run(['load', '-i', archive]);

    const alias = `docker-cni-fresh-${randomHex(6)}:latest`;
    await docker.run(['plugin', 'create', alias, source.dir], 300_000);
    // Only what a second daemon needs; none of the four dir mounts is set.
    await docker.run([
      'plugin', 'set', alias,
      `docker-run.source=${execRoot}`,
      `DOCKER_SOCKET=/host/run/${basename(daemon.socket)}`,
      'LOG_LEVEL=debug',
      `DOCKER_CNI_DEFAULT_POOLS_V4=${TEST_AUTO_POOLS_V4}`,
      'DOCKER_CNI_RECONCILE_INTERVAL_MS=0',
    ]);
    const mounts = JSON.parse(await docker.run(['plugin', 'inspect', '-f', '{{json .Settings.Mounts}}', alias])) as Array<{ Name: string; Source: string }>;
    const sourceOf = new Map(mounts.map((m) => [m.Name, m.Source]));
    assert.deepEqual(
      ['cni-conf', 'cni-bin', 'cni-state', 'state', 'run-state'].map((name) => sourceOf.get(name)),
      ['/etc', '/opt', '/var/lib', '/var/lib', '/run'],
      'the dir mounts keep their defaults',
    );

    const before = await takeSnapshot();
    const network = uniqueName('dcni-fresh');
    const server = uniqueName('dcni-fresh-srv');
    let enabled = false;
    let networkCreated = false;
    const leakTokens: string[] = [network];
    try {
      await docker.run(['plugin', 'enable', alias], 120_000);
      enabled = true;

      // The plugin created the four dirs, in the daemon's view of the host only.
      for (const dir of HIDDEN) {
        const shown = await inNamespace(pid, ['stat', '-c', '%F %a', dir]);
        assert.equal(shown.exitCode, 0, `${dir} was not created: ${shown.stderr}`);
        assert.match(shown.stdout, /^directory /, dir);
      }
      assert.equal((await inNamespace(pid, ['stat', '-c', '%a', '/var/lib/docker-cni'])).stdout, '700');
      const upperVarLib = join(overlayRoot, 'lib', 'upper');
      assert.ok(statSync(join(upperVarLib, 'docker-cni')).isDirectory(), 'state dir in the overlay, not on the host');
      assert.equal((await inNamespace(pid, ['stat', '-c', '%F %a', RUN_DIR])).stdout, 'directory 700', `${RUN_DIR} for the endpoint records`);

      const subnet = await freeSubnet();
      await docker.run(['network', 'create', '-d', alias, '--ipam-driver', alias, '--subnet', subnet, network]);
      networkCreated = true;
      const networkId = await docker.run(['network', 'inspect', '-f', '{{.Id}}', network]);
      leakTokens.push(networkId.slice(0, 10), subnet.split('/')[0] ?? subnet);
      await docker.run(['run', '-d', '--name', server, '--network', network, TEST_IMAGE, ...IDLE_COMMAND]);
      const ping = await docker.result(['run', '--rm', '--network', network, TEST_IMAGE, 'ping', '-c', '3', '-W', '2', server]);
      assert.equal(ping.exitCode, 0, `ping ${server} by name: ${ping.stdout} ${ping.stderr}`);
      assert.match(ping.stdout, / 0% packet loss/);

      // The plugin's records went into the created dirs.
      assert.ok(readdirSync(join(upperVarLib, 'docker-cni', 'networks')).length > 0, 'network record in /var/lib/docker-cni');
      assert.ok(readdirSync(join(RUN_DIR, 'endpoints')).length > 0, `the running server's endpoint record in ${RUN_DIR}`);
    } finally {
      await docker.forceRemove([server]);
      if (networkCreated) await docker.result(['network', 'rm', network]);
      if (enabled) await docker.result(['plugin', 'disable', '-f', alias], 120_000);
      await docker.result(['plugin', 'rm', '-f', alias], 120_000);
    }
    await assertNoLeaks(before, { onlyMentioning: leakTokens });
  });
});

/**
 * State survival across a dockerd restart with the managed plugin: dockerd is
 * stopped with SIGTERM (a clean shutdown: without live-restore it stops every
 * container, then its plugins) and started again exactly as it had been
 * (command line, environment and cwd read back from /proc/<pid>, detached,
 * output appended to its old log file when that was a file). Afterwards:
 *   - dockerd enables the plugin again by itself;
 *   - the network is still usable: a new container gets networking;
 *   - containers started with `--restart always` come back with working
 *     networking: their addresses answer and their names resolve;
 *   - removing everything leaves nothing behind (leak snapshot).
 *
 * WHICH dockerd restarts:
 *   - under CI=true, or with DOCKER_CNI_TEST_RESTART_HOST_DOCKERD=1: the
 *     host's own (found through its pidfile, else /proc). Every container on
 *     it stops and only `--restart always` ones come back: disposable hosts only.
 *   - otherwise a private dockerd this test starts (own data-root, exec-root,
 *     pidfile and socket, --bridge none, --iptables=false), so other work on a
 *     shared host survives; the plugin is created on that daemon, with its
 *     docker-run mount pointed at the private exec-root.
 * dockerd runs again at the end in every case (the private one is then removed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonUnderTest } from '../helpers/dockerd-under-test.js';
import { mayRestartHostDockerd } from '../helpers/network-removal.js';
import {
  IDLE_COMMAND,
  TEST_IMAGE,
  engineSkipReason,
  ensureTestImage,
  freeSubnet,
  sharedHostMode,
  uniqueName,
  waitFor,
} from '../helpers/engine.js';
import { assertNoLeaks, takeSnapshot, type HostSnapshot } from '../helpers/host-snapshot.js';
import { ManagedPlugin, pluginSource, type PluginSource } from './managed-plugin.js';

const TEST_TIMEOUT = 420_000;
const HOST_MODE = mayRestartHostDockerd();
const skip = await engineSkipReason();

/** The path of a host socket as the plugin sees it through its host-run mount (host /run at /host/run). */
function pluginSidePath(hostPath: string): string {
  const relative = hostPath.replace(/^\/var\/run\//, '/run/');
  if (!relative.startsWith('/run/')) throw new Error(`${hostPath} is not under /run, which the plugin sees at /host/run`);
  return `/host${relative}`;
}

describe('managed plugin: dockerd restart', { skip }, () => {
  let daemon: DaemonUnderTest | undefined;
  let source: PluginSource | undefined;
  let plugin: ManagedPlugin | undefined;

  before(async () => {
    await ensureTestImage();
    daemon = await DaemonUnderTest.create({ host: HOST_MODE });
    if (!HOST_MODE) await daemon.startPrivate();
    if (daemon.pid() === undefined) throw new Error(`no dockerd found for ${daemon.socket}`);
    const execRoot = daemon.flag('--exec-root');
    source = await pluginSource();
    plugin = await ManagedPlugin.create(source.dir, {
      docker: daemon.docker,
      ...(execRoot ? { dockerRunSource: execRoot } : {}),
      ...(HOST_MODE ? {} : { env: { DOCKER_SOCKET: pluginSidePath(daemon.socket) } }),
    });
    await plugin.enable();
  });

  after(async () => {
    const problems: string[] = [];
    try {
      await daemon?.ensureRunning();
    } catch (err) {
      problems.push(`dockerd is not running again: ${String(err)}`);
    }
    if (plugin) problems.push(...(await plugin.dispose()));
    await source?.dispose();
    await daemon?.dispose();
    if (problems.length > 0) throw new Error(problems.join('\n'));
  });

  test('after SIGTERM and a start as before: plugin enabled, network usable, --restart always containers reachable by IP and name, nothing left after removal', { timeout: TEST_TIMEOUT }, async () => {
    const managed = plugin;
    const restartable = daemon;
    assert.ok(managed && restartable, 'the before hook did not finish');
    const cli = restartable.docker;
    const driver = managed.alias;
    const runId = uniqueName('dcni-restart');
    const network = `${runId}-net`;
    const names = { first: `${runId}-a`, second: `${runId}-b`, late: `${runId}-c` };
    const snapshotOptions = { dirs: managed.watchedDirs() };
    const before: HostSnapshot = await takeSnapshot(snapshotOptions);
    const ownedTokens: string[] = [runId];
    let bodyError: unknown;
    try {
      const subnet = await freeSubnet();
      const networkId = await cli.run(['network', 'create', '-d', driver, '--ipam-driver', driver, '--subnet', subnet, network]);
      ownedTokens.push(networkId.slice(0, 12), `dcni-${networkId.slice(0, 10)}`, subnet.split('.').slice(0, 3).join('.') + '.');
      for (const name of [names.first, names.second]) {
        await cli.run(['run', '-d', '--name', name, '--restart', 'always', '--network', network, TEST_IMAGE, ...IDLE_COMMAND]);
      }
      await cli.assertPings(names.first, names.second, 20_000);

      const startedBefore = await cli.run(['inspect', '-f', '{{.State.StartedAt}}', names.first]);
      const pidBefore = restartable.pid();
      const restartStarted = Date.now();
      await restartable.restart();
      const pidAfter = restartable.pid();
      assert.ok(pidAfter !== undefined && pidAfter !== pidBefore, `dockerd was not restarted (pid ${pidBefore} -> ${pidAfter})`);
      console.log(`dockerd ${HOST_MODE ? '(host)' : '(private)'} restarted in ${Date.now() - restartStarted} ms: pid ${pidBefore} -> ${pidAfter}`);

      await waitFor(async () => (await managed.inspect()).Enabled, { timeoutMs: 60_000, what: `${driver} to be enabled again` });
      for (const name of [names.first, names.second]) {
        await waitFor(async () => (await cli.run(['inspect', '-f', '{{.State.Running}}', name])) === 'true', {
          timeoutMs: 90_000,
          intervalMs: 500,
          what: `${name} (--restart always) to run again`,
        });
      }
      assert.notEqual(await cli.run(['inspect', '-f', '{{.State.StartedAt}}', names.first]), startedBefore, `${names.first} was not restarted with dockerd`);
      await cli.run(['run', '-d', '--name', names.late, '--network', network, TEST_IMAGE, ...IDLE_COMMAND]);
      const [firstIp, secondIp] = [await cli.ipOn(names.first, network), await cli.ipOn(names.second, network)];
      assert.ok(firstIp && secondIp, `the restarted containers have no address on ${network}: "${firstIp}" "${secondIp}"`);
      await cli.assertPings(names.late, firstIp, 20_000);
      await cli.assertPings(names.late, secondIp, 20_000);
      await cli.assertPings(names.late, names.first, 20_000);
      await cli.assertPings(names.first, names.second, 20_000);
      await cli.assertPings(names.second, names.late, 20_000);
    } catch (err) {
      bodyError = err;
    }

    const cleanup: string[] = [];
    for (const name of Object.values(names)) {
      await cli.run(['rm', '-f', name], 60_000).catch((err: unknown) => {
        if (!/No such container/i.test(String(err))) cleanup.push(String(err));
      });
    }
    await cli.run(['network', 'rm', network], 60_000).catch((err: unknown) => {
      if (!/No such network|not found/i.test(String(err))) cleanup.push(String(err));
    });
    if (bodyError !== undefined) {
      const id = await managed.inspect().then((p) => p.Id, () => '');
      console.error(`--- dockerd log (tail) ---\n${restartable.logTail(60)}\n(plugin id ${id})`);
      throw bodyError;
    }
    assert.deepEqual(cleanup, [], 'removing the test containers and network failed');
    await assertNoLeaks(before, {
      ...snapshotOptions,
      ...(sharedHostMode() ? { onlyMentioning: ownedTokens, ownedDirs: [managed.tempRoot] } : {}),
    });
  });
});

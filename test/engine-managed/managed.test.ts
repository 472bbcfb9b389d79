/**
 * The managed plugin as users get it: built by plugin/build from the offline
 * base image (see managed-plugin.ts; under test/run.mjs the 'managed' tier's
 * plugin dir is reused), created under a unique alias, enabled, asked to do
 * real work, reconfigured with `docker plugin set`, disabled and removed.
 *
 * Every mount that would point at host state (conf, bin, cache, records) is
 * redirected to temp dirs with `docker plugin set <mount>.source=...`, so the
 * run leaves the host's /etc/cni, /opt/cni, /var/lib/cni and
 * /var/lib/docker-cni untouched.
 *
 * DOCKER_CNI_PLUGIN_BASE picks another base image (default: the offline one,
 * built with plugin/base-image when missing).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { dockerAvailable, isRoot, skipUnless } from '../helpers/prereq.js';
import { DOCKER_BIN, REPO_ROOT, docker, dockerResult, freeSubnet, hostInSubnet, suiteLeakCheck, uniqueName, waitFor } from '../helpers/engine.js';
import { BASE_IMAGE, ManagedPlugin, pluginSource, type PluginSource } from './managed-plugin.js';

const PLUGIN_SOCKET_NAME = 'cni.sock';

const skip = skipUnless([
  [isRoot(), 'root'],
  [existsSync(DOCKER_BIN), `docker client ${DOCKER_BIN}`],
  [await dockerAvailable(), 'a running dockerd on /var/run/docker.sock'],
  [existsSync(join(REPO_ROOT, 'node_modules', 'typescript')), 'node_modules (npm ci) for the offline build'],
]);

/** POSTs one plugin-protocol call straight to the plugin's socket, as dockerd does. */
function callPlugin(socketPath: string, method: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolvePromise, rejectPromise) => {
    const req = request(
      { socketPath, path: `/${method}`, method: 'POST', headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolvePromise({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch (err) {
            rejectPromise(new Error(`${method}: reply is not JSON: ${text}`, { cause: err }));
          }
        });
      },
    );
    req.on('error', rejectPromise);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method}: no reply within 10 s`)));
    req.end();
  });
}

/**
 * Environment of the plugin's main process. Its root is "/" when read from
 * here (another mount namespace), so it is found as a child of the containerd
 * shim that runs the plugin: the shim's command line carries the plugin ID.
 */
function pluginProcessEnv(pluginId: string): Map<string, string> | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes('main.js')) continue;
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (!ppid || !readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0').includes(pluginId)) continue;
      const env = new Map<string, string>();
      for (const pair of readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0')) {
        const eq = pair.indexOf('=');
        if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      return env;
    } catch {
      // the process exited while we looked
    }
  }
  return undefined;
}

describe('managed plugin (docker plugin create/enable/set/disable/rm)', { skip }, () => {
  let source: PluginSource | undefined;
  let plugin: ManagedPlugin | undefined;
  const managed = (): ManagedPlugin => {
    if (!plugin) throw new Error('the before hook did not create the plugin');
    return plugin;
  };
  let alias = '';
  const tempDirs = { conf: '', state: '' };
  const networks: string[] = [];
  // Kernel state, the CNI cache and docker-cni's default dirs; the plugin's own dirs are temp dirs removed with it.
  const host = suiteLeakCheck();

  before(async () => {
    source = await pluginSource();
    await host.take();
    // config.json's own env values: the first test checks them.
    plugin = await ManagedPlugin.create(source.dir, { testDefaults: false });
    alias = plugin.alias;
    tempDirs.conf = plugin.dirs.conf;
    tempDirs.state = plugin.dirs.state;
  });

  after(async () => {
    for (const network of networks) await dockerResult(['network', 'rm', network]);
    await plugin?.dispose();
    await source?.dispose();
    await host.verify();
  });

  test('config.json passes docker plugin create with the documented settings', async () => {
    const plugin = await managed().inspect();
    assert.equal(plugin.Enabled, false);
    const env = new Set(plugin.Settings.Env);
    for (const expected of ['LOG_LEVEL=info', 'CNI_PATH=/opt/cni/bin:/usr/lib/cni', 'DOCKER_CNI_SOCKET=/run/docker/plugins/cni.sock']) {
      assert.ok(env.has(expected), `missing ${expected} in ${[...env].join(' ')}`);
    }
    const mounts = new Map(plugin.Settings.Mounts.map((m) => [m.Name, m.Source]));
    assert.equal(mounts.get('cni-conf'), tempDirs.conf);
    assert.equal(mounts.get('state'), tempDirs.state);
  });

  test('enabled, it answers on its socket and drives a network create/rm', async () => {
    await docker(['plugin', 'enable', alias], 60_000);
    const plugin = await managed().inspect();
    assert.equal(plugin.Enabled, true);

    const socketPath = `/run/docker/plugins/${plugin.Id}/${PLUGIN_SOCKET_NAME}`;
    await waitFor(async () => existsSync(socketPath), { timeoutMs: 10_000, what: `socket ${socketPath}` });
    const caps = await callPlugin(socketPath, 'NetworkDriver.GetCapabilities');
    assert.equal(caps.status, 200);
    assert.deepEqual(caps.body, { Scope: 'local', ConnectivityScope: 'local', GwAllocChecker: true });

    const network = uniqueName('dcni-managed');
    networks.push(network);
    const subnet = await freeSubnet();
    await docker(['network', 'create', '-d', alias, '--ipam-driver', alias, '--subnet', subnet, network]);
    const address = hostInSubnet(subnet, 9);
    // The base image has iproute2, so it serves as the container image too.
    const shown = await docker(['run', '--rm', '--network', network, '--ip', address, BASE_IMAGE, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    assert.match(shown, new RegExp(`inet ${address.replaceAll('.', '\\.')}/24`));
    await docker(['network', 'rm', network]);
    networks.splice(networks.indexOf(network), 1);
  });

  test('docker plugin set LOG_LEVEL=debug reaches the restarted plugin', async () => {
    // A network left by a failed earlier test would keep the plugin "in use".
    for (const network of networks.splice(0)) await dockerResult(['network', 'rm', network]);
    await docker(['plugin', 'disable', alias], 60_000);
    await docker(['plugin', 'set', alias, 'LOG_LEVEL=debug']);
    const settings = await managed().inspect();
    assert.ok(settings.Settings.Env.includes('LOG_LEVEL=debug'));

    await docker(['plugin', 'enable', alias], 60_000);
    const plugin = await managed().inspect();
    const env = await waitFor(async () => pluginProcessEnv(plugin.Id), { timeoutMs: 10_000, what: 'the plugin process' });
    assert.equal(env.get('LOG_LEVEL'), 'debug');

    await docker(['plugin', 'disable', alias], 60_000);
    await docker(['plugin', 'rm', alias]);
    const gone = await dockerResult(['plugin', 'inspect', alias]);
    assert.notEqual(gone.exitCode, 0, 'plugin should be removed');
  });
});

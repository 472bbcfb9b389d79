/**
 * Per-test scope of the engine tier: every network, container and file a test
 * makes is registered for undo, the undo runs even when the test failed, and
 * the host must then be back where it was (the leak snapshot).
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { execa } from 'execa';
import { TEST_IMAGE, randomHex, uniqueName } from './common.js';
import { docker, dockerNetworkExists, dockerResult } from './docker-cli.js';
import { hostLinkExists } from './host-links.js';
import { removeNetwork } from './network-removal.js';
import { ensureTestImage } from './engine-prereq.js';
import { assertNoLeaks, takeSnapshot, type HostSnapshot, type LeakCheckOptions, type LeakIgnore } from './host-snapshot.js';
import { startPlugin, type PluginHandle, type StartPluginOptions } from './plugin-launcher.js';
import { subnetToken } from './subnets.js';

/** Removing what is already gone is success; anything else (e.g. the plugin not answering) is reported. */
const ALREADY_GONE = /No such (container|network)/i;

/** Undo actions run in reverse order of registration; failures are collected, not thrown. */
export class Cleanup {
  private readonly actions: Array<{ what: string; run: () => Promise<unknown> }> = [];

  defer(what: string, run: () => Promise<unknown>): void {
    this.actions.push({ what, run });
  }

  async run(): Promise<string[]> {
    const failures: string[] = [];
    while (this.actions.length > 0) {
      const action = this.actions.pop();
      if (!action) break;
      try {
        await action.run();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!ALREADY_GONE.test(message)) failures.push(`${action.what}: ${message}`);
      }
    }
    return failures;
  }
}

export interface NetworkOptions {
  name?: string;
  /** Defaults to the plugin under test; pass null for Docker's default IPAM. */
  ipamDriver?: string | null;
  subnet?: string;
  gateway?: string;
  /** `-o key=value` options. */
  options?: Record<string, string>;
  internal?: boolean;
}

export interface CreatedNetwork {
  name: string;
  id: string;
  /** The bridge docker-cni generates: dcni-<10 hex of the ID>, or the bridge.name option. */
  bridge: string;
}

export interface ContainerOptions {
  network: string;
  name?: string;
  ip?: string;
  mac?: string;
  aliases?: string[];
  /** Defaults to an idle shell that exits promptly on SIGTERM. */
  command?: string[];
  /** Only create (docker create), do not start. */
  createOnly?: boolean;
}

/** PID 1 that sleeps but honours SIGTERM, so `docker restart`/`stop` take about a second. */
export const IDLE_COMMAND = ['sh', '-c', "trap 'exit 0' TERM INT; while true; do sleep 1; done"];

export class EngineScope {
  readonly cleanup = new Cleanup();
  /** Names that identify what this test made (see sharedHostMode). */
  readonly ownedTokens = new Set<string>();
  /** Subnets of the networks this test made: conntrack entries naming them must be gone afterwards. */
  readonly subnets: string[] = [];

  constructor(readonly plugin: PluginHandle) {}

  /** `docker network create -d <plugin> ...`; removed again at the end of the test. */
  async createNetwork(options: NetworkOptions = {}): Promise<CreatedNetwork> {
    const name = options.name ?? uniqueName('cnit-net');
    const args = ['network', 'create', '-d', this.plugin.driver];
    const ipamDriver = options.ipamDriver === undefined ? this.plugin.driver : options.ipamDriver;
    if (ipamDriver !== null) args.push('--ipam-driver', ipamDriver);
    if (options.subnet) args.push('--subnet', options.subnet);
    if (options.gateway) args.push('--gateway', options.gateway);
    if (options.internal) args.push('--internal');
    for (const [key, value] of Object.entries(options.options ?? {})) args.push('-o', `${key}=${value}`);
    args.push(name);
    this.cleanup.defer(`docker network rm ${name}`, () => removeNetwork(name));
    const id = await docker(args);
    const bridge = options.options?.['com.docker.network.bridge.name'] ?? `dcni-${id.slice(0, 10)}`;
    const subnets = (await dockerResult(['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', id])).stdout.split(/\s+/).filter(Boolean);
    this.subnets.push(...subnets);
    this.own(id.slice(0, 12), bridge, ...subnets.map(subnetToken));
    return { name, id, bridge };
  }

  /** `docker run -d` (or `docker create`) of the test image; force-removed at the end of the test. */
  async runContainer(options: ContainerOptions): Promise<string> {
    const name = options.name ?? uniqueName('cnit-ctr');
    const args = [options.createOnly ? 'create' : 'run'];
    if (!options.createOnly) args.push('-d');
    args.push('--name', name, '--network', options.network, '--label', 'docker-cni-test=1');
    if (options.ip) args.push('--ip', options.ip);
    if (options.mac) args.push('--mac-address', options.mac);
    for (const alias of options.aliases ?? []) args.push('--network-alias', alias);
    args.push(TEST_IMAGE, ...(options.command ?? IDLE_COMMAND));
    this.cleanup.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
    await docker(args);
    const endpoints = await dockerResult(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}', name]);
    this.own(...endpoints.stdout.split(/\s+/).filter(Boolean).map((endpointId) => `dc${endpointId.slice(0, 13)}`));
    return name;
  }

  /** Places a conflist in `confDir` for the duration of the test; returns its (network) name. */
  async placeConflist(confDir: string, plugins: object[], name = uniqueName('cnit-conf')): Promise<string> {
    await this.placeConflistFile(confDir, { cniVersion: '1.0.0', name, plugins });
    return name;
  }

  /** Places a whole conflist (e.g. a corpus fixture) as `<name>.conflist` for the duration of the test; returns its path. */
  async placeConflistFile(confDir: string, conflist: { name: string } & Record<string, unknown>): Promise<string> {
    const file = join(confDir, `${conflist.name}.conflist`);
    this.defer(`rm ${file}`, () => rm(file, { force: true }));
    await writeFile(file, JSON.stringify(conflist, null, 2));
    return file;
  }

  /** Deletes a host link at the end of the test, e.g. the bridge of a user conflist, which is the user's and no plugin removes. */
  deleteLinkLater(name: string): void {
    this.defer(`ip link del ${name}`, async () => {
      if (await hostLinkExists(name)) await execa('ip', ['link', 'del', name]);
    });
  }

  /**
   * An up link for macvlan/ipvlan to hang off, removed after the case. Kernels
   * without the dummy module get a veth pair; deleting one end removes both.
   */
  async parentLink(): Promise<string> {
    const parent = `cnitd${randomHex(8)}`;
    this.deleteLinkLater(parent);
    const dummy = await execa('ip', ['link', 'add', parent, 'type', 'dummy'], { reject: false });
    if (dummy.exitCode !== 0) {
      const peer = `cnitp${randomHex(8)}`;
      await execa('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', peer]);
      await execa('ip', ['link', 'set', peer, 'up']);
    }
    await execa('ip', ['link', 'set', parent, 'up']);
    return parent;
  }

  own(...tokens: string[]): void {
    for (const token of tokens) if (token.length >= 6) this.ownedTokens.add(token);
  }

  /** Registers any other undo action (e.g. deleting a file or a host link). */
  defer(what: string, run: () => Promise<unknown>): void {
    this.cleanup.defer(what, run);
  }
}

/** The plugin's conf dir, or a skip of `t` when it is unknown (an installed plugin without DOCKER_CNI_TEST_CONF_DIR). */
export function confDirOrSkip(t: TestContext, plugin: PluginHandle): string | undefined {
  const confDir = plugin.dirs.confDir;
  if (!confDir) t.skip('the conf dir of the plugin under test is unknown (set DOCKER_CNI_TEST_CONF_DIR)');
  return confDir;
}

const DOCKER_GWBRIDGE = 'docker_gwbridge';

/**
 * DOCKER_CNI_TEST_SHARED_HOST=1: other tests run on this host at the same
 * time, so leak checks only count leftovers naming this test's networks,
 * bridges, subnets and links (plus its private plugin dirs). Ignored under
 * CI, where the tests have the host to themselves and every leftover counts.
 */
export function sharedHostMode(): boolean {
  return process.env.DOCKER_CNI_TEST_SHARED_HOST === '1' && process.env.CI !== 'true';
}

export interface EngineCaseOptions {
  ignore?: LeakIgnore;
  settleMs?: number;
}

/**
 * Runs one engine test body with a fresh cleanup scope: snapshot the host,
 * run the body, undo everything it registered (even when it failed), then
 * require the host to be back where it was. Failures carry the plugin log.
 */
export async function engineCase(
  plugin: PluginHandle,
  body: (scope: EngineScope) => Promise<void>,
  options: EngineCaseOptions = {},
): Promise<void> {
  const snapshotOptions = { dirs: plugin.watchedDirs() };
  const gwbridgeBefore = await dockerNetworkExists(DOCKER_GWBRIDGE);
  const before: HostSnapshot = await takeSnapshot(snapshotOptions);
  const scope = new EngineScope(plugin);
  const logStart = plugin.logSize();
  let bodyError: unknown;
  try {
    await body(scope);
  } catch (err) {
    bodyError = err;
  }
  const cleanupFailures = await scope.cleanup.run();
  let leakError: unknown;
  try {
    await assertNoLeaks(before, {
      ...snapshotOptions,
      ignore: options.ignore,
      settleMs: options.settleMs,
      subnets: scope.subnets,
      ...(sharedHostMode() ? { onlyMentioning: [...scope.ownedTokens], ownedDirs: plugin.ownedDirs() } : {}),
    });
  } catch (err) {
    leakError = err;
  }
  // Docker creates docker_gwbridge when a driver's Join gives no gateway and
  // never removes it. The leak check above has reported it; remove it (when
  // unused) so the following tests start from a clean host again.
  if (!gwbridgeBefore && (await dockerNetworkExists(DOCKER_GWBRIDGE))) {
    await dockerResult(['network', 'rm', DOCKER_GWBRIDGE]);
  }
  const problems = [
    ...cleanupFailures.map((f) => `cleanup failed: ${f}`),
    ...(leakError instanceof Error ? [leakError.message] : []),
  ];
  if (bodyError === undefined && problems.length === 0) return;
  const diagnostics = `--- plugin ${plugin.driver} log during this test (tail) ---\n${plugin.logTail(80, logStart)}`;
  if (bodyError !== undefined) {
    console.error([...problems, diagnostics].join('\n'));
    throw bodyError;
  }
  console.error(diagnostics);
  throw new Error(problems.join('\n'));
}

/**
 * Registers before/after hooks in the calling describe(): build the test
 * image if needed, snapshot the host, start the plugin; afterwards stop it,
 * remove its temp dirs and require the host to be as it was before the file.
 * Returns an accessor for the running plugin.
 */
export function setupEngineSuite(options: StartPluginOptions = {}): () => PluginHandle {
  let plugin: PluginHandle | undefined;
  const host = suiteLeakCheck();
  before(async () => {
    await ensureTestImage();
    await host.take();
    plugin = await startPlugin(options);
  });
  after(async () => {
    await plugin?.dispose();
    await host.verify();
  });
  return () => {
    if (!plugin) throw new Error('the plugin under test was not started (see the before hook failure)');
    return plugin;
  };
}

/**
 * The host check around a whole suite: `take` in its first before hook,
 * `verify` in its last after hook (node runs after hooks in the order they
 * were registered). On a shared host nothing at this level can be told apart
 * from other tests' work, so verify checks nothing there.
 */
export function suiteLeakCheck(options: LeakCheckOptions = {}): { take(): Promise<void>; verify(): Promise<void> } {
  let hostBefore: HostSnapshot | undefined;
  return {
    async take() {
      hostBefore = await takeSnapshot(options);
    },
    async verify() {
      if (hostBefore && !sharedHostMode()) await assertNoLeaks(hostBefore, options);
    },
  };
}

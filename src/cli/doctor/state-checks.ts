/** The plugin socket, the state dir's permissions, interrupted work, and what GC would collect. */
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../log.js';
import type { Settings } from '../../settings.js';
import { isOnTmpfs } from '../../util/dir.js';
import { buildComponents } from '../../wiring.js';
import { answersActivate } from '../wait-ready.js';
import { fail, ok, warn, type Finding } from './finding.js';

const mode = (m: number): string => (m & 0o777).toString(8).padStart(4, '0');

/** Whether a plugin serves the socket; later checks read it. */
export async function socketFindings(settings: Settings): Promise<{ findings: Finding[]; serving: boolean }> {
  const path = settings.socketPath;
  const stats = await lstat(path).catch(() => undefined);
  if (!stats) return { findings: [warn('socket', path, 'does not exist: docker-cni is not serving', 'start it: systemctl start docker-cni, npm start, or docker plugin enable')], serving: false };
  if (!stats.isSocket()) return { findings: [fail('socket', path, 'exists but is not a socket', `remove ${path} and start docker-cni`)], serving: false };
  const findings: Finding[] = [];
  findings.push(
    (stats.mode & 0o007) === 0 && stats.uid === 0
      ? ok('socket', 'permissions', `${mode(stats.mode)}, owner root`)
      : fail('socket', 'permissions', `${mode(stats.mode)}, owner uid ${stats.uid}: others could reconfigure host networking`, `chmod 0660 ${path}; chown root ${path} (docker-cni sets this at start)`),
  );
  const serving = await answersActivate(path);
  findings.push(serving ? ok('socket', 'answers', 'Plugin.Activate answered') : fail('socket', 'answers', 'nobody answers Plugin.Activate (a stale socket file)', 'start docker-cni; it replaces a stale socket'));
  return { findings, serving };
}

export async function stateDirFindings(settings: Settings): Promise<Finding[]> {
  const runDirOnDisk = (await isOnTmpfs(settings.runDir)) === false;
  return [
    ...(await recordDirFindings(settings.stateDir, ['networks', 'pools'])),
    ...(await recordDirFindings(settings.runDir, ['endpoints'])),
    ...(runDirOnDisk
      ? [warn('state', settings.runDir, 'is not on a tmpfs: every endpoint record write goes through a disk journal, on Docker\'s path', 'put the run dir on a tmpfs (/run is one on systemd hosts): --run-dir / DOCKER_CNI_RUN_DIR')]
      : []),
  ];
}

async function recordDirFindings(dir: string, kinds: readonly string[]): Promise<Finding[]> {
  const stats = await lstat(dir).catch(() => undefined);
  if (!stats) return [ok('state', dir, 'does not exist yet (created at the first start)')];
  const findings: Finding[] = [];
  findings.push(
    (stats.mode & 0o077) === 0
      ? ok('state', dir, `${mode(stats.mode)}`)
      : fail('state', dir, `${mode(stats.mode)}: readable by others`, `chmod 0700 ${dir}`),
  );
  const loose: string[] = [];
  for (const sub of kinds) {
    const files = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const file of files) {
      const s = await lstat(join(dir, sub, file)).catch(() => undefined);
      if (s && (s.mode & 0o077) !== 0) loose.push(join(sub, file));
    }
  }
  if (loose.length > 0) findings.push(fail('state', 'record files', `${loose.length} readable by others, e.g. ${loose[0] ?? ''}`, `chmod 0600 ${dir}/*/*`));
  return findings;
}

export async function dockerFindings(settings: Settings): Promise<{ findings: Finding[]; reachable: boolean }> {
  try {
    // Loaded here, not at the top: `docker-cni serve` shares this module graph, and the plugin process stays lean without dockerode.
    const { default: Docker } = await import('dockerode');
    const docker = new Docker({ socketPath: settings.dockerSocket, timeout: 5_000 });
    const version = await docker.version();
    return { findings: [ok('docker', settings.dockerSocket, `dockerd ${version.Version} (API ${version.ApiVersion})`)], reachable: true };
  } catch (err) {
    return {
      findings: [fail('docker', settings.dockerSocket, `unreachable: ${(err as Error).message}`, 'start dockerd, or point --docker-socket / DOCKER_SOCKET at it')],
      reachable: false,
    };
  }
}

/**
 * Interrupted work (endpoints not "ready") and leftover staging namespaces
 * count as stale only when no plugin serves: a serving plugin owns them.
 */
export async function staleFindings(settings: Settings, serving: boolean): Promise<Finding[]> {
  const { stores } = buildComponents(settings, silentLogger);
  const recorded = existsSync(settings.runDir) ? await stores.endpoints.list().catch(() => []) : [];
  const unfinished = recorded.map((r) => r.record).filter((e) => e.status !== 'ready');
  const staging = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.startsWith(`${settings.stagingPrefix}-`));
  if (serving) return [ok('state', 'stale', `a plugin is serving; ${unfinished.length} endpoint(s) in flight, ${staging.length} staging namespace(s)`)];
  const findings: Finding[] = [];
  findings.push(
    unfinished.length === 0
      ? ok('state', 'interrupted work', 'none')
      : warn('state', 'interrupted work', `${unfinished.length} endpoint(s) left ${[...new Set(unfinished.map((e) => e.status))].join('/')}`, 'start docker-cni: it finishes or undoes them at startup'),
  );
  findings.push(
    staging.length === 0
      ? ok('state', 'staging namespaces', 'none left')
      : warn('state', 'staging namespaces', `${staging.length} left under /run/netns (${staging.slice(0, 3).join(', ')})`, 'start docker-cni (it removes them), or ip netns del each'),
  );
  return findings;
}

export async function gcFindings(settings: Settings, dockerReachable: boolean): Promise<Finding[]> {
  if (!dockerReachable) return [warn('gc', 'preview', 'skipped: Docker is unreachable, and nothing is collected without it', 'start dockerd')];
  // Loading the driver state creates the state dir; doctor only looks.
  if (!existsSync(settings.stateDir)) return [ok('gc', 'preview', `nothing recorded (no ${settings.stateDir})`)];
  const components = buildComponents(settings, silentLogger);
  await components.network.init({ recover: false });
  // What `docker-cni gc` would do now: one pass, like it.
  const report = await components.oneShotReconciler().runPass({ dryRun: true });
  if (report.actions.length === 0) return [ok('gc', 'preview', 'nothing to collect')];
  return report.actions.map((a) => warn('gc', `${a.kind} ${a.id}`, `would be removed: ${a.reason}`, 'docker-cni gc (after the grace period), or docker-cni gc --grace-seconds 0'));
}

/**
 * `docker network rm` for engine tests, with the one repair Docker 20.10 needs.
 *
 * Docker 20.10 keeps each network's endpoint count as its own record in
 * its store, and updates it by read-modify-write. When endpoints of one
 * network are deleted at the same moment, an update can be lost (moby#42119).
 * The network is then refused with "has active endpoints" while Docker holds
 * no endpoint in it, and stays refused until dockerd restarts and logs
 * "Fixing inconsistent endpoint_cnt". Docker's own bridge networks show it on
 * this host after 50 parallel `docker rm`, so the count is not the plugin's.
 *
 * The repair restarts the host's dockerd, which stops every container on it:
 * it runs only where the tests may do that (CI=true, or
 * DOCKER_CNI_TEST_RESTART_HOST_DOCKERD=1). Anywhere else the error says what
 * happened. Either way, a network in which Docker still lists an endpoint, or
 * an engine without the bug, fails as before.
 */
import { waitFor } from './common.js';
import { docker, dockerResult, DockerCommandError, type CommandResult } from './docker-cli.js';
import { DaemonUnderTest } from './dockerd-under-test.js';

const LOST_COUNT = 'has active endpoints';

/** Whether tests may stop and start the host's own dockerd (every container on it stops). */
export function mayRestartHostDockerd(): boolean {
  return process.env.CI === 'true' || process.env.DOCKER_CNI_TEST_RESTART_HOST_DOCKERD === '1';
}

/** Removes a network of the host's dockerd; repairs Docker 20.10's lost endpoint count when that alone refuses it. */
export async function removeNetwork(name: string): Promise<void> {
  const args = ['network', 'rm', name];
  const refused = await dockerResult(args);
  if (refused.exitCode === 0) return;
  const failure = new DockerCommandError(args, refused.exitCode, refused.stdout, refused.stderr);
  if (!refused.stderr.includes(LOST_COUNT)) throw failure;

  const held = await docker(['network', 'inspect', '-f', '{{range $key, $ep := .Containers}}{{$key}} {{end}}', name]);
  if (held !== '') throw new Error(`${failure.message}\nDocker still lists endpoints in ${name}: ${held}`);
  const version = await docker(['version', '-f', '{{.Server.Version}}']);
  if (!version.startsWith('20.')) throw new Error(`${failure.message}\nDocker ${version} lists no endpoint in ${name}, and has no known endpoint-count bug`);
  const diagnosis = `Docker ${version} lists no endpoint in ${name}: its endpoint count lost an update (moby#42119), which only a dockerd restart repairs`;
  if (!mayRestartHostDockerd()) throw new Error(`${failure.message}\n${diagnosis}; set DOCKER_CNI_TEST_RESTART_HOST_DOCKERD=1 to let the tests restart it`);

  await oneRepairAtATime(async () => {
    // A repair for another network may have restarted dockerd meanwhile.
    if ((await settledRemoval(args)).exitCode === 0) return;
    const daemon = await DaemonUnderTest.create({ host: true });
    let logged: string;
    try {
      logged = await daemon.restart();
    } finally {
      await daemon.dispose();
    }
    const repair = logged.split('\n').find((line) => line.includes(`Fixing inconsistent endpoint_cnt for network ${name}.`));
    if (!repair) throw new Error(`${failure.message}\n${diagnosis}, but the restarted dockerd did not log a repair of ${name}`);
    console.log(`${diagnosis}; dockerd was restarted and logged: ${repair.replace(/^.*msg="([^"]*)".*$/, '$1')}`);
    const after = await settledRemoval(args);
    if (after.exitCode !== 0) throw new Error(`${diagnosis}; dockerd was restarted and logged its repair, and still: ${after.stderr}`);
  });
}

/**
 * `docker network rm` once it either works or meets the lost count: after a
 * dockerd restart, a managed plugin may answer a few seconds after dockerd.
 */
function settledRemoval(args: readonly string[]): Promise<CommandResult> {
  return waitFor(
    async () => {
      const result = await dockerResult(args);
      return result.exitCode === 0 || result.stderr.includes(LOST_COUNT) ? result : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `docker ${args.join(' ')} to work or be refused for the endpoint count` },
  );
}

let repairs: Promise<unknown> = Promise.resolve();

/** Parallel removals may each meet the lost count; one dockerd restart at a time. */
function oneRepairAtATime(work: () => Promise<void>): Promise<void> {
  const next = repairs.then(work, work);
  repairs = next.catch(() => undefined);
  return next;
}

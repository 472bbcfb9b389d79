/**
 * The one docker CLI wrapper: a client bound to a daemon socket (the host's
 * by default), plus module-level shorthands for the host's daemon.
 */
import { execa } from 'execa';
import { DOCKER_BIN, sleep } from './common.js';

export class DockerCommandError extends Error {
  override readonly name = 'DockerCommandError';
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`docker ${args.join(' ')} failed (exit ${exitCode ?? 'none'}): ${stderr.trim() || stdout.trim()}`);
  }
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** What a container holds on one network, captured while it runs. */
export interface EndpointTrace {
  container: string;
  network: string;
  ip: string;
  endpointId: string;
  sandboxKey: string;
}

/** The docker CLI bound to one daemon socket (undefined: the default one). */
export class DockerClient {
  constructor(readonly socket: string | undefined) {}

  private argv(args: readonly string[]): string[] {
    return this.socket ? ['-H', `unix://${this.socket}`, ...args] : [...args];
  }

  /** Runs the docker CLI and reports the outcome without throwing on failure. */
  async result(args: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
    const r = await execa(DOCKER_BIN, this.argv(args), { reject: false, timeout: timeoutMs, stdin: 'ignore' });
    return {
      exitCode: r.exitCode ?? -1,
      stdout: String(r.stdout ?? '').trim(),
      stderr: String(r.stderr ?? '').trim(),
      timedOut: r.timedOut,
    };
  }

  /** Runs the docker CLI; returns trimmed stdout, throws DockerCommandError with stderr. */
  async run(args: readonly string[], timeoutMs = 120_000): Promise<string> {
    const r = await this.result(args, timeoutMs);
    if (r.exitCode !== 0) {
      const stderr = r.timedOut ? `timed out after ${timeoutMs} ms. ${r.stderr}` : r.stderr;
      throw new DockerCommandError(args, r.exitCode, r.stdout, stderr);
    }
    return r.stdout;
  }

  async answers(): Promise<boolean> {
    return (await this.result(['info', '--format', '{{.ServerVersion}}'], 10_000)).exitCode === 0;
  }

  /** IDs of every container (running or not) carrying `label=value`. */
  async containersLabelled(label: string, value: string): Promise<string[]> {
    const out = await this.run(['ps', '-aq', '--no-trunc', '--filter', `label=${label}=${value}`]);
    return out.split('\n').filter(Boolean);
  }

  /** Removes containers by ID or name, 20 per call; failures are returned, not thrown. */
  async forceRemove(containers: readonly string[]): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < containers.length; i += 20) {
      const batch = containers.slice(i, i + 20);
      const r = await this.result(['rm', '-f', ...batch]);
      if (r.exitCode !== 0 && !/No such container/i.test(r.stderr)) failures.push(r.stderr);
    }
    return failures;
  }

  /** Pings from inside `container` until answered (ARP and DNS may need a moment), then throws with the last output. */
  async assertPings(container: string, target: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: CommandResult | undefined;
    while (Date.now() < deadline) {
      last = await this.result(['exec', container, 'ping', '-c', '1', '-W', '2', target], 15_000);
      if (last.exitCode === 0) return;
      await sleep(300);
    }
    throw new Error(`${container} cannot ping ${target}: ${last?.stdout} ${last?.stderr}`.trim());
  }

  /** The IPv4 address (no prefix) Docker recorded for `container` on `network`; '' when none. */
  async ipOn(container: string, network: string): Promise<string> {
    return this.run(['inspect', '-f', `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`, container]);
  }

  async traceEndpoint(container: string, network: string): Promise<EndpointTrace> {
    const format = `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}} {{.EndpointID}}{{end}} {{.NetworkSettings.SandboxKey}}`;
    const [ip, endpointId, sandboxKey] = (await this.run(['inspect', '-f', format, container])).split(/\s+/);
    if (!ip || !endpointId || !/^[0-9a-f]{64}$/.test(endpointId)) {
      throw new Error(`${container} has no endpoint on ${network} (inspect gave "${ip} ${endpointId}")`);
    }
    return { container, network, ip, endpointId, sandboxKey: sandboxKey ?? '' };
  }
}

/** The host's dockerd (/var/run/docker.sock). */
export const hostDocker = new DockerClient(undefined);

export const dockerResult = (args: readonly string[], timeoutMs?: number): Promise<CommandResult> => hostDocker.result(args, timeoutMs);
export const docker = (args: readonly string[], timeoutMs?: number): Promise<string> => hostDocker.run(args, timeoutMs);
export const assertPings = (container: string, target: string, timeoutMs?: number): Promise<void> =>
  hostDocker.assertPings(container, target, timeoutMs);

/** Runs a command inside a container; returns stdout. */
export async function exec(container: string, command: readonly string[], timeoutMs = 30_000): Promise<string> {
  return docker(['exec', container, ...command], timeoutMs);
}

export async function execResult(container: string, command: readonly string[], timeoutMs = 30_000): Promise<CommandResult> {
  return dockerResult(['exec', container, ...command], timeoutMs);
}

/** One ping from inside `container`; true when it was answered. */
export async function canPing(container: string, target: string): Promise<boolean> {
  const result = await execResult(container, ['ping', '-c', '1', '-W', '2', target], 15_000);
  return result.exitCode === 0;
}

export interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  Options: Record<string, string> | null;
  IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string }> | null };
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }> | null;
}

export async function inspectNetwork(name: string): Promise<NetworkInspect> {
  const parsed = JSON.parse(await docker(['network', 'inspect', name])) as NetworkInspect[];
  const network = parsed[0];
  if (!network) throw new Error(`docker network inspect ${name}: empty answer`);
  return network;
}

export async function dockerNetworkExists(name: string): Promise<boolean> {
  return (await dockerResult(['network', 'inspect', name])).exitCode === 0;
}

/** The IPv4 address (no prefix) Docker recorded for `container` on `network`. */
export async function containerIp(container: string, network: string): Promise<string> {
  const ip = await hostDocker.ipOn(container, network);
  if (!ip) throw new Error(`${container} has no IPv4 address on ${network}`);
  return ip;
}

/** The endpoint ID Docker holds for `container` on `network`. */
export async function endpointIdOf(container: string, network: string): Promise<string> {
  const id = await docker(['inspect', '-f', `{{with index .NetworkSettings.Networks "${network}"}}{{.EndpointID}}{{end}}`, container]);
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`${container} has no endpoint on ${network}: "${id}"`);
  return id;
}

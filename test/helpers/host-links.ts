/**
 * Looking at links from the host: bridge ports, whether a link exists, and
 * what a container sees on its interfaces and routes.
 */
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { waitFor } from './common.js';
import { docker, exec, execResult } from './docker-cli.js';

/** Link names of `ip -o link show` output (the part before `@peer`). */
export function linkNames(output: string): string[] {
  return output
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => Boolean(name));
}

/** Names of the links attached to a host bridge; [] when the bridge does not exist. */
export async function linksOnBridge(bridge: string): Promise<string[]> {
  const result = await execa('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false });
  if (result.exitCode !== 0) return [];
  return linkNames(String(result.stdout));
}

/**
 * Waits until a bridge has `count` links. DeleteEndpoint answers before the
 * link is deleted (the teardown finishes in the background), so links leave a
 * little after `docker rm` or `network disconnect` returns. A timeout names
 * the links still there.
 */
export async function waitForBridgeLinks(bridge: string, count: number, what: string, timeoutMs = 10_000): Promise<void> {
  let seen: string[] = [];
  await waitFor(async () => (seen = await linksOnBridge(bridge)).length === count, { timeoutMs, what }).catch((err: Error) => {
    throw new Error(`${err.message}; ${bridge} still has ${seen.join(' ') || 'no links'}`, { cause: err });
  });
}

export async function hostLinkExists(name: string): Promise<boolean> {
  const result = await execa('ip', ['link', 'show', 'dev', name], { reject: false });
  return result.exitCode === 0;
}

/**
 * Links other than lo inside a Docker sandbox netns that still exists. Docker
 * removes sandbox netns files lazily (libnetwork's namespace GC runs about
 * once a minute), so only their contents can be checked right away.
 */
export async function linksInSandbox(sandboxKey: string): Promise<string[]> {
  if (!sandboxKey || !existsSync(sandboxKey)) return [];
  const r = await execa('nsenter', [`--net=${sandboxKey}`, 'ip', '-o', 'link', 'show'], { reject: false, timeout: 10_000 });
  if (r.exitCode !== 0) return []; // no longer a namespace (unmounted, file not yet removed)
  return linkNames(String(r.stdout)).filter((name) => name !== 'lo');
}

/** `inet a.b.c.d/len` entries of one interface inside a container. */
export async function containerInterface(container: string, ifname: string): Promise<{ inet: string[]; mac: string } | undefined> {
  const result = await execResult(container, ['ip', '-o', 'addr', 'show', 'dev', ifname]);
  if (result.exitCode !== 0) return undefined;
  const inet = [...result.stdout.matchAll(/\sinet (\S+)/g)].map((m) => m[1] ?? '');
  const link = await exec(container, ['ip', '-o', 'link', 'show', 'dev', ifname]);
  const mac = /link\/ether (\S+)/.exec(link)?.[1] ?? '';
  return { inet, mac };
}

/**
 * The container routes through the network's gateway and has no other
 * interface: without a gateway in the Join reply Docker would have attached
 * it to docker_gwbridge as eth1.
 */
export async function assertGatewayRoute(container: string, network: string): Promise<void> {
  // `docker network inspect` lists a gateway only when Docker picked the subnet; the
  // endpoint's gateway is what the driver's Join reply set.
  const format = `{{with index .NetworkSettings.Networks "${network}"}}{{.Gateway}}{{end}}`;
  const gateway = await docker(['inspect', '-f', format, container]);
  if (!gateway) throw new Error(`${container} has no IPv4 gateway on ${network} (the Join reply carried none)`);
  const routes = await exec(container, ['ip', '-4', 'route', 'show']);
  if (!new RegExp(`^default via ${gateway.replaceAll('.', '\\.')} dev eth0`, 'm').test(routes)) {
    throw new Error(`${container} has no default route via ${gateway} on eth0; routes:\n${routes}`);
  }
  const extra = await execResult(container, ['ip', 'link', 'show', 'dev', 'eth1']);
  if (extra.exitCode === 0) throw new Error(`${container} has an unexpected eth1 (docker_gwbridge?): ${extra.stdout}`);
}

/**
 * Routed mode: each host reaches another host's blocks through that host's
 * underlay address. This file computes the routes that should exist (pure)
 * and applies the difference to the kernel, touching only routes tagged with
 * docker-cni's protocol number.
 */
import { parseCidr, parseIp } from '../util/ip-math.js';
import type { CommandRunner } from '../host/command.js';
import type { Logger } from '../log.js';
import { ROUTE_PROTO } from './names.js';
import type { BlockRecord, HostRecord } from './records.js';

export interface Route {
  dst: string;
  via: string;
}

/**
 * Routes for every block of `pools` owned by another host that is alive and
 * announced an underlay address. A departed host's blocks get no route: its
 * containers are gone, and a reclaiming host will announce them anew.
 */
export function desiredRoutes(
  selfId: string,
  blocks: ReadonlyArray<{ poolId: string; record: BlockRecord }>,
  hosts: ReadonlyMap<string, HostRecord>,
  pools: ReadonlySet<string>,
): Route[] {
  const routes = new Map<string, Route>();
  for (const { poolId, record } of blocks) {
    if (!pools.has(poolId) || record.host === selfId) continue;
    const via = hosts.get(record.host)?.underlayIp;
    if (!via || !parseIp(via) || !parseCidr(record.cidr)) continue;
    routes.set(record.cidr, { dst: record.cidr, via });
  }
  return [...routes.values()].sort((a, b) => a.dst.localeCompare(b.dst));
}

/** Parses `ip -j route show proto 218` output into routes. */
export function parseRouteJson(text: string): Route[] {
  const parsed = JSON.parse(text.trim() === '' ? '[]' : text) as Array<{ dst?: string; gateway?: string }>;
  return parsed.flatMap((r) => (r.dst && r.gateway ? [{ dst: r.dst, via: r.gateway }] : []));
}

export function diffRoutes(current: readonly Route[], desired: readonly Route[]): { add: Route[]; remove: Route[] } {
  const key = (r: Route): string => `${r.dst} ${r.via}`;
  const want = new Set(desired.map(key));
  const have = new Set(current.map(key));
  return { add: desired.filter((r) => !have.has(key(r))), remove: current.filter((r) => !want.has(key(r))) };
}

/** The kernel side: our tagged routes in the plugin's network namespace. */
export class RouteTable {
  constructor(
    private readonly run: CommandRunner,
    private readonly logger: Logger,
  ) {}

  async list(): Promise<Route[]> {
    return parseRouteJson(await this.run('ip', ['-j', '-4', 'route', 'show', 'proto', ROUTE_PROTO]));
  }

  /** Brings the tagged routes to exactly `desired`, in one `ip -batch` call. */
  async sync(desired: readonly Route[]): Promise<{ add: Route[]; remove: Route[] }> {
    const change = diffRoutes(await this.list(), desired);
    const lines = [
      ...change.remove.map((r) => `route del ${r.dst} via ${r.via} proto ${ROUTE_PROTO}`),
      // replace: a block that moved to another host changes its next hop in place.
      ...change.add.map((r) => `route replace ${r.dst} via ${r.via} proto ${ROUTE_PROTO}`),
    ];
    if (lines.length === 0) return change;
    for (const r of [...change.add, ...change.remove]) {
      if (!parseCidr(r.dst) || !parseIp(r.via)) throw new Error(`refusing malformed route ${r.dst} via ${r.via}`);
    }
    await this.run('ip', ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n` });
    this.logger.info({ added: change.add, removed: change.remove }, 'cluster: routes to other hosts updated');
    return change;
  }
}

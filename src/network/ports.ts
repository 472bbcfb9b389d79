import { PluginError, invalid } from '../errors.js';
import { ephemeralPortRange, type PortProbe } from '../host/ports.js';
import { IP_PROTO, PortBindings, type PortBinding } from '../docker/api.js';
import type { CniPortMapping } from '../cni/types.js';

const PROTO_NAMES: Record<number, CniPortMapping['protocol']> = {
  [IP_PROTO.tcp]: 'tcp',
  [IP_PROTO.udp]: 'udp',
  [IP_PROTO.sctp]: 'sctp',
};

/** Reads com.docker.network.portmap, which Docker sends as a JSON array of bindings. */
export function readPortBindings(value: unknown): PortBinding[] {
  if (value === undefined || value === null) return [];
  const parsed = PortBindings.safeParse(value);
  if (!parsed.success) throw invalid(`invalid port bindings: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  return parsed.data;
}

export type { PortProbe } from '../host/ports.js';

const key = (m: { protocol: string; hostPort: number }): string => `${m.protocol}/${m.hostPort}`;

/** Two host IPs clash if equal, or if either is the wildcard. */
function hostIpsOverlap(a: string | undefined, b: string | undefined): boolean {
  return !a || !b || a === '0.0.0.0' || b === '0.0.0.0' || a === '::' || b === '::' || a === b;
}

/**
 * Turns Docker's bindings into CNI portmap entries: picks a free port for
 * HostPort 0 (ephemeral, -P) and for HostPort..HostPortEnd ranges, and refuses
 * ports already mapped by another endpoint or bound by a host process.
 */
export async function allocatePortMappings(
  bindings: readonly PortBinding[],
  options: { defaultHostIp?: string; inUse: readonly CniPortMapping[]; probe: PortProbe },
): Promise<CniPortMapping[]> {
  const taken: CniPortMapping[] = [...options.inUse];
  const out: CniPortMapping[] = [];
  const isFree = async (protocol: CniPortMapping['protocol'], hostIP: string, port: number): Promise<boolean> =>
    !taken.some((m) => m.protocol === protocol && m.hostPort === port && hostIpsOverlap(m.hostIP, hostIP)) &&
    (await options.probe(protocol, hostIP, port));
  for (const binding of bindings) {
    const protocol = PROTO_NAMES[binding.Proto];
    if (!protocol) throw invalid(`unsupported port protocol number ${binding.Proto} (tcp, udp and sctp are supported)`);
    if (binding.Port < 1) throw invalid(`invalid container port ${binding.Port}`);
    const hostIP = binding.HostIP || options.defaultHostIp || '';
    const start = binding.HostPort;
    const end = Math.max(binding.HostPortEnd, binding.HostPort);
    let chosen: number | undefined;
    if (start === 0) {
      const [low, high] = await ephemeralPortRange();
      const span = high - low + 1;
      const offset = Math.floor(Math.random() * span);
      for (let i = 0; i < span && chosen === undefined; i++) {
        const port = low + ((offset + i) % span);
        if (await isFree(protocol, hostIP, port)) chosen = port;
      }
      if (chosen === undefined) throw new PluginError('EXHAUSTED', `no free ephemeral host port for ${binding.Port}/${protocol}`);
    } else {
      for (let port = start; port <= end && chosen === undefined; port++) {
        if (await isFree(protocol, hostIP, port)) chosen = port;
      }
      if (chosen === undefined) {
        const wanted = start === end ? `${start}` : `${start}-${end}`;
        throw new PluginError(
          'CONFLICT',
          `host port ${hostIP ? `${hostIP}:` : ''}${wanted}/${protocol} is already in use (published by another container or bound by a host process)`,
        );
      }
    }
    const mapping: CniPortMapping = { hostPort: chosen, containerPort: binding.Port, protocol };
    if (hostIP) mapping.hostIP = hostIP;
    out.push(mapping);
    taken.push(mapping);
  }
  const seen = new Set<string>();
  for (const m of out) {
    const k = `${m.hostIP ?? ''}|${key(m)}`;
    if (seen.has(k)) throw new PluginError('CONFLICT', `host port ${key(m)} requested twice`);
    seen.add(k);
  }
  return out;
}

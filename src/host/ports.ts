/** What the host says about its ports: whether one can be bound now, and the kernel's ephemeral range. */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** Answers whether a host port can be bound right now (so a DNAT rule would not shadow a listener). */
export type PortProbe = (protocol: PortProtocol, hostIP: string, port: number) => Promise<boolean>;

export const probeHostPort: PortProbe = (protocol, hostIP, port) => {
  const host = hostIP === '' ? undefined : hostIP;
  if (protocol === 'udp') {
    return new Promise((resolve) => {
      const socket = createSocket(host?.includes(':') ? 'udp6' : 'udp4');
      socket.once('error', () => resolve(false));
      socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
    });
  }
  if (protocol === 'sctp') return Promise.resolve(true); // Node cannot bind SCTP; rely on bookkeeping
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
};

/** The kernel's ephemeral port range, where -P ports are picked. */
export async function ephemeralPortRange(): Promise<[number, number]> {
  try {
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number);
    if (low && high && low <= high) return [low, high];
  } catch {
    // fall through to Docker's documented default range
  }
  return [49153, 60999];
}

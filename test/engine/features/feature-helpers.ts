/**
 * Helpers shared by the feature engine tests: talking to published ports from
 * the host with bounded timeouts, reading what the plugin reports, and small
 * container recipes. Everything only targets addresses on this host.
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { execa } from 'execa';
import type { LeakIgnore } from '../../helpers/host-snapshot.js';
import { CNI_BIN_DIRS } from '../../helpers/prereq.js';
import { PLUGIN_ENTRY, TEST_IMAGE, docker, engineCase, sleep, stateFlags, type EngineScope, type PluginHandle } from '../../helpers/engine.js';

/** A web server answering `GET /` with `body` on `port` (busybox httpd, PID 1, stops on SIGTERM). */
export function webServerCommand(body: string, port = 80): string[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(body)) throw new Error(`web body "${body}" must be a simple word`);
  return ['sh', '-c', `mkdir -p /tmp/www && echo ${body} > /tmp/www/index.html && exec httpd -f -p ${port} -h /tmp/www`];
}

/**
 * One HTTP/1.0 GET over TCP from the host; resolves with the response body,
 * rejects on refusal, reset or timeout.
 */
export function httpGet(host: string, port: number, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${host}:${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const body = data.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      if (!data.startsWith('HTTP/')) reject(new Error(`${host}:${port}: not an HTTP answer: ${JSON.stringify(data.slice(0, 80))}`));
      else resolve(body.trim());
    });
  });
}

/** Retries httpGet until it returns `expected` (the server may need a moment to start). */
export async function assertServes(host: string, port: number, expected: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const body = await httpGet(host, port);
      if (body === expected) return;
      last = `answered ${JSON.stringify(body)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(300);
  }
  throw new Error(`${host}:${port} did not serve "${expected}": ${last}`);
}

/** True when a TCP connection to host:port is refused or times out (nothing answers any more). */
export async function tcpRefused(host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  try {
    await httpGet(host, port, timeoutMs);
    return false;
  } catch {
    return true;
  }
}

/** Sends one UDP datagram and does not wait for anything. */
export function sendDatagram(host: string, port: number, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.send(payload, port, host, (err) => {
      socket.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Datagrams the container's UDP stack received (InDatagrams + NoPorts of its
 * /proc/net/snmp, which is per network namespace). busybox has no UDP server
 * (nc lacks -u), so arrival is counted instead of answered.
 */
export async function udpDatagramsReceived(container: string): Promise<number> {
  const snmp = await docker(['exec', container, 'cat', '/proc/net/snmp']);
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const field = (name: string): number => Number(values[names.indexOf(name)] ?? 'NaN');
  const total = field('InDatagrams') + field('NoPorts');
  if (!Number.isFinite(total)) throw new Error(`cannot read Udp counters of ${container}: ${lines.join(' | ')}`);
  return total;
}

export interface ReportedPorts {
  endpoint: string;
  network: string;
  ports: Array<{ hostPort: number; containerPort: number; protocol: string; hostIP?: string }>;
}

/** `docker-cni ports --json` against the plugin's records. */
export async function reportedPorts(plugin: PluginHandle): Promise<ReportedPorts[]> {
  const result = await execa(process.execPath, [PLUGIN_ENTRY, 'ports', '--json', ...stateFlags(plugin.dirs)], { timeout: 30_000 });
  return JSON.parse(String(result.stdout)) as ReportedPorts[];
}

/** The nat table as iptables-save prints it. */
export async function natRules(): Promise<string> {
  return String((await execa('iptables-save', ['-t', 'nat'], { timeout: 30_000 })).stdout);
}

/** Host addresses other than loopback (IPv4), e.g. eth0's, to check that a 127.0.0.1 binding stays private. */
export async function nonLoopbackHostIpv4(): Promise<string | undefined> {
  const out = String((await execa('ip', ['-o', '-4', 'addr', 'show', 'scope', 'global'])).stdout);
  for (const line of out.split('\n')) {
    const match = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\//.exec(line);
    // Skip container bridges: only a real host interface proves "not on another host address".
    if (match && !/^(docker|br-|dcni-|cnit)/.test(match[1] ?? '')) return match[2];
  }
  return undefined;
}

/** A unique bridge name that no other docker-cni instance's garbage collection mistakes for its own (dcni-*). */
export function testBridgeName(hex: string): string {
  return `cnitb${hex.slice(0, 8)}`;
}

/** Lines of `ip route` inside a container. */
export async function containerRoutes(container: string, v6 = false): Promise<string[]> {
  const out = await docker(['exec', container, 'ip', ...(v6 ? ['-6'] : []), 'route']);
  return out.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** The CNI_PATH the plugin under test searches (test/run.mjs sets it per matrix cell). */
export function pluginDirs(): string[] {
  return process.env.CNI_PATH ? process.env.CNI_PATH.split(':').filter(Boolean) : [...CNI_BIN_DIRS];
}

/** True when the firewall plugin the plugin under test finds speaks spec 1.1.0. */
export async function firewallSpeaks110(): Promise<boolean> {
  const dir = pluginDirs().find((d) => existsSync(join(d, 'firewall')));
  if (!dir) return false;
  const out = await execa(join(dir, 'firewall'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', reject: false });
  return String(out.stdout).includes('"1.1.0"');
}

export { TEST_IMAGE };

/**
 * On a host shared with other docker-cni runs (developers' machines), their
 * networks come and go during a test. DOCKER_CNI_TEST_SHARED_HOST=1 ignores
 * objects of the default naming (dcni-* bridges and their veths and rules),
 * which these tests never use for their own networks (they name bridges
 * cnitb*). CI runs one suite at a time and keeps the full check.
 */
export const sharedHostIgnore: LeakIgnore | undefined =
  process.env.DOCKER_CNI_TEST_SHARED_HOST === '1'
    ? {
        links: [/^dcni-[0-9a-f]{10}/, / master dcni-[0-9a-f]{10}$/, /^veth[0-9a-f]{8}$/, /^dc[0-9a-f]{13}$/],
        rules: [/dcni-[0-9a-f]{10}/, /CNI-DN-|CNI-HOSTPORT-DNAT .*dcni-/, /dcni-probe/],
        files: [/\/var\/lib\/cni\//],
      }
    : undefined;

/** engineCase with the shared-host allowance above. */
export function featureCase(plugin: PluginHandle, body: (scope: EngineScope) => Promise<void>): Promise<void> {
  return engineCase(plugin, body, sharedHostIgnore ? { ignore: sharedHostIgnore } : {});
}

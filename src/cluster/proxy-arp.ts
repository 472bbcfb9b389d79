/**
 * Routed mode keeps the pool's prefix on every container (Docker applies the
 * IPAM address as ip/len), so a container ARPs for peers on other hosts as if
 * they were local. With proxy ARP on the bridge the host answers for every
 * address it routes elsewhere (another host's block) and forwards the packet;
 * local containers still answer for themselves.
 */
import { writeFile } from 'node:fs/promises';
import { PluginError } from '../errors.js';

const LINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export async function enableProxyArp(bridge: string, procSys = '/proc/sys'): Promise<void> {
  if (!LINK_NAME.test(bridge)) throw new PluginError('INVALID_ARGUMENT', `invalid bridge name "${bridge}"`);
  try {
    await writeFile(`${procSys}/net/ipv4/conf/${bridge}/proxy_arp`, '1\n');
  } catch (err) {
    throw new PluginError('HOST_FAILED', `could not enable proxy ARP on ${bridge}`, { cause: err });
  }
}

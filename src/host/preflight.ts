import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { PluginError } from '../errors.js';
import type { Logger } from '../log.js';

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(program: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (dir && (await isExecutable(join(dir, program)))) return true;
  }
  return false;
}

/**
 * Fails fast, with an actionable message, on a host that cannot run the
 * plugin; warns about what only some networks need.
 */
export async function preflight(binDirs: readonly string[], logger: Logger): Promise<void> {
  const missingTools: string[] = [];
  for (const tool of ['ip', 'iptables-save', 'iptables-restore']) {
    if (!(await onPath(tool))) missingTools.push(tool);
  }
  if (missingTools.length > 0) {
    throw new PluginError('NOT_FOUND', `required host programs not found on PATH: ${missingTools.join(', ')} (install iproute2 and iptables)`);
  }
  if (process.getuid?.() !== 0) logger.warn('not running as root: creating namespaces, links and iptables rules will fail');
  const missingPlugins: string[] = [];
  for (const plugin of ['bridge', 'static', 'portmap', 'host-local']) {
    const found = await Promise.all(binDirs.map((dir) => isExecutable(join(dir, plugin))));
    if (!found.some(Boolean)) missingPlugins.push(plugin);
  }
  if (missingPlugins.length > 0) {
    logger.warn(
      { missing: missingPlugins, cniPath: binDirs },
      'CNI reference plugins missing: generated networks and the cni IPAM driver will fail (install containernetworking-plugins)',
    );
  }
}

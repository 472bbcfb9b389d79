/** The CNI plugins docker-cni runs (where, which spec versions) and every file of the conf dir. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpawnPluginExecutor, confListFromBytes } from '../../cni/index.js';
import type { Settings } from '../../settings.js';
import { fail, ok, warn, type Finding } from './finding.js';

/** Needed by generated networks and the cni IPAM driver; the rest only by some networks. */
const REQUIRED = ['bridge', 'static', 'portmap', 'host-local'];
const OPTIONAL = ['bandwidth', 'firewall', 'tuning', 'ptp', 'macvlan'];

export async function pluginFindings(settings: Settings): Promise<Finding[]> {
  const executor = new SpawnPluginExecutor();
  const findings: Finding[] = [];
  for (const type of [...REQUIRED, ...OPTIONAL]) {
    const path = await executor.findInPath(type, settings.binDirs).catch(() => undefined);
    if (!path) {
      const where = settings.binDirs.join(':');
      findings.push(
        REQUIRED.includes(type)
          ? fail('cni', type, `not found in ${where}`, 'apt-get install containernetworking-plugins, or put the plugin in /opt/cni/bin')
          : warn('cni', type, `not found in ${where}; only networks that use it need it`, 'apt-get install containernetworking-plugins'),
      );
      continue;
    }
    try {
      const out = await executor.execPlugin(path, Buffer.from('{"cniVersion":"1.0.0"}'), { CNI_COMMAND: 'VERSION' }, 10_000);
      const reply = JSON.parse(out.toString()) as { supportedVersions?: string[] };
      findings.push(ok('cni', type, `${path}: CNI ${(reply.supportedVersions ?? []).join(', ')}`));
    } catch (err) {
      findings.push(fail('cni', type, `${path} does not answer VERSION: ${(err as Error).message}`, `reinstall ${type} (containernetworking-plugins)`));
    }
  }
  return findings;
}

/** Each file libcni would load: valid JSON with a name and plugins, every plugin binary present. */
export async function confDirFindings(settings: Settings): Promise<Finding[]> {
  let files: string[];
  try {
    files = (await readdir(settings.confDir)).filter((f) => /\.(conf|conflist|json)$/.test(f)).sort();
  } catch {
    return [ok('conf', settings.confDir, 'does not exist: only generated networks (no -o cni.network) can be created')];
  }
  if (files.length === 0) return [ok('conf', settings.confDir, 'no conflists (only generated networks)')];
  const executor = new SpawnPluginExecutor();
  const findings: Finding[] = [];
  for (const file of files) {
    const path = join(settings.confDir, file);
    try {
      const list = confListFromBytes(await readFile(path), path);
      const missing: string[] = [];
      for (const plugin of list.plugins) {
        if (!(await executor.findInPath(plugin.type, settings.binDirs).then(() => true, () => false))) missing.push(plugin.type);
      }
      findings.push(
        missing.length === 0
          ? ok('conf', file, `network "${list.name}" (CNI ${list.cniVersion}): ${list.plugins.map((p) => p.type).join(' -> ')}`)
          : fail('conf', file, `network "${list.name}" needs plugins not in ${settings.binDirs.join(':')}: ${missing.join(', ')}`, `install ${missing.join(', ')} into /opt/cni/bin`),
      );
    } catch (err) {
      findings.push(fail('conf', file, (err as Error).message, `fix or remove ${path}`));
    }
  }
  return findings;
}

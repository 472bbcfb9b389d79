/** Which conflists of the conf dir can become networks, and which cannot (by name, with the reason). */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { confListBytes, loadConfLists } from '../cni/conf.js';
import { confListSubnets } from '../cni/ranges.js';
import type { ConfProblem, WantedNetwork } from './plan.js';

export interface ConfDirReading {
  wanted: WantedNetwork[];
  problems: ConfProblem[];
}

/** Resolves a plugin binary or throws (the network driver's own check at CreateNetwork). */
export type LocatePlugin = (type: string) => Promise<unknown>;

export async function readConfDir(confDir: string, locatePlugin: LocatePlugin): Promise<ConfDirReading> {
  const problems: ConfProblem[] = [];
  const lists = await loadConfLists(confDir, (path, err) => problems.push({ file: basename(path), reason: err.message }));
  const wanted: WantedNetwork[] = [];
  const seen = new Set<string>();
  for (const list of lists) {
    const file = basename(list.sourcePath ?? list.name);
    // libcni's order decides which file a name means; later ones are shadowed.
    if (seen.has(list.name)) {
      problems.push({ file, reason: `network name "${list.name}" is already taken by an earlier file; ignored` });
      continue;
    }
    seen.add(list.name);
    const missing: string[] = [];
    for (const plugin of list.plugins) {
      for (const type of [plugin.type, ...(plugin.ipam?.type ? ['static'] : [])]) {
        if (missing.includes(type)) continue;
        await locatePlugin(type).catch(() => missing.push(type));
      }
    }
    if (missing.length > 0) {
      problems.push({ file, name: list.name, reason: `CNI plugin${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')}` });
      continue;
    }
    wanted.push({
      name: list.name,
      file,
      digest: createHash('sha256').update(confListBytes(list)).digest('hex'),
      subnets: confListSubnets(list),
    });
  }
  return { wanted, problems };
}

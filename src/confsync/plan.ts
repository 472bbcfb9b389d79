/**
 * The conf-dir sync's decisions, pure: from the conflists found and the
 * Docker networks that exist, what to create, recreate, remove, leave alone,
 * or wait for. Nothing that a container uses is ever removed.
 */
import type { ConfSubnet } from '../cni/ranges.js';
import { CONFLIST_DIGEST_LABEL, shortId } from '../names.js';
import type { DockerNetworkSummary } from '../reconcile/docker-view.js';

/** A conflist that may become a network: parsed, its plugins present. */
export interface WantedNetwork {
  name: string;
  digest: string;
  file: string;
  subnets: ConfSubnet[];
}

/** A config file that cannot become a network, and why. */
export interface ConfProblem {
  file: string;
  /** The network name, when the file got far enough to have one. */
  name?: string;
  reason: string;
}

export type SyncAction =
  | { kind: 'create'; wanted: WantedNetwork }
  | { kind: 'recreate'; wanted: WantedNetwork; existing: DockerNetworkSummary }
  | { kind: 'remove'; existing: DockerNetworkSummary }
  | { kind: 'keep'; name: string; existing: DockerNetworkSummary }
  | { kind: 'wait'; name: string; existing: DockerNetworkSummary; reason: string }
  | { kind: 'skip'; name: string; reason: string }
  | { kind: 'invalid'; problem: ConfProblem };

export interface PlanInput {
  wanted: WantedNetwork[];
  problems: ConfProblem[];
  /** Networks this instance manages (labelled with its driver name). */
  managed: DockerNetworkSummary[];
  /** Networks of a wanted name that are not among `managed` (someone else's). */
  foreign: DockerNetworkSummary[];
}

const inUse = (n: DockerNetworkSummary): string => `${n.containers} container${n.containers === 1 ? '' : 's'} still use${n.containers === 1 ? 's' : ''} it`;

export function planSync(input: PlanInput): SyncAction[] {
  const actions: SyncAction[] = [];
  const managedByName = new Map(input.managed.map((n) => [n.name, n]));
  const foreignByName = new Map(input.foreign.map((n) => [n.name, n]));
  // A conflist that is there but broken keeps its network: an edit in progress must not tear it down.
  const brokenNames = new Set(input.problems.map((p) => p.name).filter((n): n is string => n !== undefined));
  for (const problem of input.problems) actions.push({ kind: 'invalid', problem });

  for (const wanted of input.wanted) {
    const mine = managedByName.get(wanted.name);
    const other = foreignByName.get(wanted.name);
    if (!mine && other) {
      actions.push({
        kind: 'skip',
        name: wanted.name,
        reason: `a Docker network named "${wanted.name}" (${shortId(other.id)}, driver ${other.driver}) already exists and is not managed by docker-cni; leaving both alone`,
      });
    } else if (!mine) {
      actions.push({ kind: 'create', wanted });
    } else if (mine.labels[CONFLIST_DIGEST_LABEL] === wanted.digest) {
      actions.push({ kind: 'keep', name: wanted.name, existing: mine });
    } else if (mine.containers > 0) {
      actions.push({ kind: 'wait', name: wanted.name, existing: mine, reason: `conflist ${wanted.file} changed; recreating the network once unused (${inUse(mine)})` });
    } else {
      actions.push({ kind: 'recreate', wanted, existing: mine });
    }
  }

  const wantedNames = new Set(input.wanted.map((w) => w.name));
  for (const existing of input.managed) {
    if (wantedNames.has(existing.name)) continue;
    if (brokenNames.has(existing.name)) {
      actions.push({ kind: 'keep', name: existing.name, existing });
    } else if (existing.containers > 0) {
      actions.push({ kind: 'wait', name: existing.name, existing, reason: `its conflist is gone; removing the network once unused (${inUse(existing)})` });
    } else {
      actions.push({ kind: 'remove', existing });
    }
  }
  return actions;
}

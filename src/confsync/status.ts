/** The sync's last outcome per network, kept in a file so `docker-cni sync status` can show why one waits. */
import { join } from 'node:path';
import { readJsonIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import { shortId } from '../names.js';

export type EntryState = 'ready' | 'created' | 'recreated' | 'removed' | 'waiting' | 'skipped' | 'invalid' | 'failed';

export interface StatusEntry {
  name: string;
  state: EntryState;
  file?: string;
  networkId?: string;
  reason?: string;
}

export interface SyncStatus {
  at: string;
  confDir: string;
  driver: string;
  dockerReachable: boolean;
  error?: string;
  entries: StatusEntry[];
}

export const statusPath = (stateDir: string): string => join(stateDir, 'confsync', 'status.json');

export const writeStatus = (stateDir: string, status: SyncStatus): Promise<void> => writeJsonAtomically(statusPath(stateDir), status, { fsync: false });

export const readStatus = (stateDir: string): Promise<SyncStatus | undefined> => readJsonIfExists<SyncStatus>(statusPath(stateDir));

export function formatStatus(status: SyncStatus | undefined): string {
  if (!status) return 'conf-dir sync has not run (disabled, or the plugin has not started)\n';
  const lines = [`conf dir ${status.confDir}, driver ${status.driver}, last pass ${status.at}${status.dockerReachable ? '' : ` (Docker not reachable: ${status.error ?? 'unknown'})`}`];
  for (const e of status.entries) {
    lines.push(`${e.name.padEnd(24)} ${e.state.padEnd(9)} ${e.networkId ? shortId(e.networkId) : '-'.padEnd(12)} ${e.file ?? ''}${e.reason ? `  ${e.reason}` : ''}`);
  }
  if (status.entries.length === 0) lines.push('(no conflists)');
  return `${lines.join('\n')}\n`;
}

/**
 * What a user conflist's chain leaves on the host that its DEL does not
 * remove: the bridge (bridge plugin) and the firewall plugin's per-bridge
 * isolation rules (ingressPolicy same-bridge). docker-cni removes them with
 * the last network of the conflist, but only when it made them: whether the
 * bridge existed is written down before the chain's first ADD, so a bridge
 * that was there (a Kubernetes node's cni0) is never touched.
 */
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { readJsonIfExists, removeIfExists, writeJsonAtomically } from '../util/atomic-file.js';
import type { CommandRunner } from './command.js';
import { assertLinkName, type HostLinks } from './links.js';

interface BridgeNote {
  bridge: string;
  createdByDockerCni: boolean;
  at: string;
}

/** The firewall plugin's chains whose rules name one bridge each. */
const ISOLATION_RULE = /^-A CNI-ISOLATION-STAGE-[12] /;

export class ConflistBridges {
  /** Bridges already noted, so the endpoint hot path reads the disk once per bridge. */
  private readonly noted = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly links: Pick<HostLinks, 'exists' | 'deleteIfExists'>,
    private readonly run: CommandRunner,
    private readonly logger: Logger,
  ) {}

  private path(bridge: string): string {
    assertLinkName(bridge);
    return join(this.dir, `${bridge}.json`);
  }

  /** Before a conflist chain's ADD: notes once whether its bridge already exists. */
  async beforeAdd(bridge: string): Promise<void> {
    if (this.noted.has(bridge)) return;
    const path = this.path(bridge);
    if (!(await readJsonIfExists<BridgeNote>(path))) {
      const note: BridgeNote = { bridge, createdByDockerCni: !(await this.links.exists(bridge)), at: new Date().toISOString() };
      await writeJsonAtomically(path, note);
    }
    this.noted.add(bridge);
  }

  /** After the last network of the conflist is gone: removes the bridge and its isolation rules if docker-cni made them. */
  async afterLastNetwork(bridge: string): Promise<void> {
    const path = this.path(bridge);
    const note = await readJsonIfExists<BridgeNote>(path);
    this.noted.delete(bridge);
    if (!note) return;
    if (note.createdByDockerCni) {
      await this.removeIsolationRules(bridge);
      await this.links.deleteIfExists(bridge);
      this.logger.info({ bridge }, 'removed the bridge and firewall-plugin isolation rules the conflist chain made');
    } else {
      this.logger.info({ bridge }, 'bridge existed before docker-cni used it; left in place');
    }
    await removeIfExists(path);
  }

  private async removeIsolationRules(bridge: string): Promise<void> {
    const names = new RegExp(`(^| )-[io] ${bridge.replace(/[.]/g, '\\.')}( |$)`);
    for (const [save, restore] of [['iptables-save', 'iptables-restore'], ['ip6tables-save', 'ip6tables-restore']] as const) {
      let saved: string;
      try {
        saved = await this.run(save, ['-t', 'filter']);
      } catch {
        continue; // no such family on this host
      }
      const rules = saved.split('\n').filter((line) => ISOLATION_RULE.test(line) && names.test(line));
      if (rules.length === 0) continue;
      const script = `*filter\n${rules.map((line) => `-D${line.slice(2)}`).join('\n')}\nCOMMIT\n`;
      await this.run(restore, ['--noflush'], { input: script });
    }
  }
}

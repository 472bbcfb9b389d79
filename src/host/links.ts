import { access } from 'node:fs/promises';
import { PluginError } from '../errors.js';
import type { CommandRunner } from './command.js';
import { IpWorkerUnavailable, type NetnsCommands } from './netns-ip-worker.js';

const LINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function assertLinkName(name: string): void {
  if (!LINK_NAME.test(name)) {
    throw new PluginError('INVALID_ARGUMENT', `invalid interface name "${name}": 1-15 chars of [A-Za-z0-9_.-]`);
  }
}

/**
 * Link operations in the plugin's own netns and the staging netns. Existence
 * checks read /sys instead of spawning `ip`, because they sit on the
 * container start/stop path.
 */
export class HostLinks {
  /**
   * `workers`: when given, moves out of a staging netns and host link deletes go through long-lived ip processes
   * instead of a spawn each.
   */
  constructor(
    private readonly run: CommandRunner,
    private readonly workers?: NetnsCommands,
  ) {}

  /** True if a link of that name exists in the plugin's own network namespace. */
  async exists(name: string): Promise<boolean> {
    assertLinkName(name);
    try {
      await access(`/sys/class/net/${name}`);
      return true;
    } catch {
      return false;
    }
  }

  /** Moves `ifName` out of a named netns into ours, renaming it in the same netlink call. */
  async moveToHost(netnsName: string, ifName: string, hostName: string): Promise<void> {
    assertLinkName(ifName);
    assertLinkName(hostName);
    const move = ['link', 'set', 'dev', ifName, 'netns', String(process.pid), 'name', hostName];
    if (this.workers) {
      try {
        await this.workers.run(netnsName, move);
        return;
      } catch (err) {
        if (!(err instanceof IpWorkerUnavailable)) throw err;
      }
      // The worker was lost with the move asked of it: it may have happened.
      if (await this.exists(hostName)) return;
    }
    await this.run('ip', ['-n', netnsName, ...move]);
  }

  /** Moves a host link into a named netns under another name (the reverse of moveToHost). */
  async moveToNetns(hostName: string, netnsName: string, ifName: string): Promise<void> {
    assertLinkName(ifName);
    assertLinkName(hostName);
    await this.run('ip', ['link', 'set', 'dev', hostName, 'netns', netnsName, 'name', ifName]);
  }

  /** Adds addresses (CIDRs) to a link inside a netns, e.g. before a DEL that finds rules through them. */
  async addAddresses(netnsName: string, ifName: string, cidrs: readonly string[]): Promise<void> {
    assertLinkName(ifName);
    if (cidrs.length === 0) return;
    for (const cidr of cidrs) {
      if (!/^[0-9A-Fa-f.:]{2,45}\/\d{1,3}$/.test(cidr)) throw new PluginError('INVALID_ARGUMENT', `invalid CIDR "${cidr}"`);
    }
    const script = cidrs.map((cidr) => `address add ${cidr} dev ${ifName}`).join('\n');
    await this.run('ip', ['-n', netnsName, '-batch', '-'], { input: `${script}\n` });
  }

  /** Deletes a host link; a link that is already gone is success. */
  async deleteIfExists(name: string): Promise<void> {
    if (!(await this.exists(name))) return;
    const del = ['link', 'del', 'dev', name];
    try {
      if (this.workers) {
        try {
          await this.workers.runOnHost(del);
          return;
        } catch (err) {
          if (!(err instanceof IpWorkerUnavailable)) throw err;
        }
        // The worker was lost with the delete asked of it: it may have happened.
        if (!(await this.exists(name))) return;
      }
      await this.run('ip', del);
    } catch (err) {
      if (await this.exists(name)) throw err;
    }
  }
}

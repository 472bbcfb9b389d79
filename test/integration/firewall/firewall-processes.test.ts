/**
 * Two processes changing our rules at once (the plugin and the CLI's gc, or a
 * host and a managed plugin): iptables-restore -w serialises each write, but
 * not a process's read-diff-write against another's, so both would read "no
 * rules for this network" and both add them, or both delete the same rules
 * and one restore fails. The firewall holds a host-wide lock for the whole
 * change; here two processes ensure the same 8 networks at the same moment,
 * then remove them at the same moment, and iptables-save must show each
 * network's rules exactly once, then none, with no change failing. Bridges
 * are never created, subnets overlap no host route, no traffic is sent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetworkFirewall, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import { runCommand } from '../../../src/host/command.js';
import { silentLogger } from '../../../src/log.js';
import { networkTag } from '../../../src/names.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { FAMILIES, existingBridges, expectedRules, freeSubnetsV4, removeOurChains, snapshot, structure, specFor, tagged, untagged, v6TestPrefix, type Family } from './rules.js';

const skip = skipUnless([[isRoot(), 'root (the test changes the host firewall)']]);
const CHILD = fileURLToPath(new URL('./firewall-child.ts', import.meta.url));
const NETWORKS = 8;
const ROUNDS = 3;

/** Runs the child in two processes at once; resolves to each one's exit code and stderr. */
async function inTwoProcesses(action: 'ensure' | 'remove', specsFile: string): Promise<Array<{ code: number | null; stderr: string }>> {
  return Promise.all(
    [0, 1].map(async () => {
      const proc = spawn(process.execPath, [...process.execArgv, CHILD, action, specsFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = (await once(proc, 'exit')) as [number | null];
      return { code, stderr };
    }),
  );
}

describe('NetworkFirewall in two processes at once', { skip }, () => {
  let dir = '';
  let initial: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  const ours: Record<Family, Set<string>> = { ipv4: new Set(), ipv6: new Set() };
  let specs: NetworkFirewallSpec[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcni-fw-procs-'));
    const subnets = await freeSubnetsV4(NETWORKS * ROUNDS);
    const v6Prefix = await v6TestPrefix();
    specs = Array.from({ length: NETWORKS * ROUNDS }, (_, i) => specFor(i, subnets[i]!, v6Prefix));
    assert.deepEqual(await existingBridges(specs), [], 'random bridge names that exist');
    // Our shared chains first, from this process: the race under test is the rules'.
    const pristine = await snapshot();
    const warmup = specFor(3, subnets[0]!, v6Prefix);
    await new NetworkFirewall(runCommand, silentLogger).ensureNetwork(warmup);
    await new NetworkFirewall(runCommand, silentLogger).removeNetwork(warmup.networkId);
    initial = await snapshot();
    for (const family of FAMILIES) {
      for (const line of structure(pristine[family])) if (!pristine[family].includes(line)) ours[family].add(line);
    }
  });

  after(async () => {
    await Promise.allSettled(specs.map((s) => new NetworkFirewall(runCommand, silentLogger).removeNetwork(s.networkId)));
    await removeOurChains(ours);
    await rm(dir, { recursive: true, force: true });
  });

  test(`${ROUNDS} rounds: both ensure the same ${NETWORKS} networks, then both remove them; exact rules, no failure`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const batch = specs.slice(round * NETWORKS, (round + 1) * NETWORKS);
      const file = join(dir, `round-${round}.json`);
      await writeFile(file, JSON.stringify(batch));

      assert.deepEqual(await inTwoProcesses('ensure', file), [{ code: 0, stderr: '' }, { code: 0, stderr: '' }]);
      const made = await snapshot();
      for (const family of FAMILIES) {
        assert.deepEqual(untagged(made[family], batch.map((s) => networkTag(s.networkId)), new Set()), initial[family], `${family}: other rules changed`);
        for (const s of batch) assert.deepEqual(tagged(made[family], networkTag(s.networkId)), expectedRules(s, family), `${family}: rules of ${s.bridge}`);
      }

      assert.deepEqual(await inTwoProcesses('remove', file), [{ code: 0, stderr: '' }, { code: 0, stderr: '' }]);
      const removed = await snapshot();
      for (const family of FAMILIES) assert.deepEqual(removed[family], initial[family], `${family}: host rules differ from before`);
    }
  });
});

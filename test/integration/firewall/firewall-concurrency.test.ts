/**
 * The kernel-level counterpart of test/unit/host/firewall-concurrency.test.ts:
 * 20 networks are ensured at once through NetworkFirewall with the real command
 * runner against the host's iptables and ip6tables, then removed at once (with
 * a few ensure-then-remove of the same network interleaved), and
 * iptables-save is compared exactly: our chains with one jump each, exactly
 * the tagged rules of each network, and afterwards every other rule as it was.
 * Bridges are random names that are never created, subnets overlap no host
 * route, and no traffic is sent. Our shared chains stay after the last network
 * goes (by design); if the host had none before, the test removes them itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { CHAINS, NetworkFirewall, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import { runCommand } from '../../../src/host/command.js';
import { silentLogger } from '../../../src/log.js';
import { networkTag } from '../../../src/names.js';
import { isRoot, skipUnless } from '../../helpers/prereq.js';
import { FAMILIES, type Family, existingBridges, removeOurChains, expectedRules, freeSubnetsV4, saved, snapshot, specFor, structure, tagged, untagged, v6TestPrefix } from './rules.js';

const skip = skipUnless([[isRoot(), 'root (the test changes the host firewall)']]);

const NETWORKS = 20;

describe('NetworkFirewall against the kernel: parallel ensure and remove', { skip }, () => {
  const firewall = (): NetworkFirewall => new NetworkFirewall(runCommand, silentLogger);
  let initial: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  const addedStructure: Record<Family, Set<string>> = { ipv4: new Set(), ipv6: new Set() };
  let specs: NetworkFirewallSpec[] = [];
  /** Ensured and removed again while the 20 are being removed. */
  let transient: NetworkFirewallSpec[] = [];
  const allTags = (): string[] => [...specs, ...transient].map((s) => networkTag(s.networkId));

  before(async () => {
    const v6Prefix = await v6TestPrefix();
    const subnets = await freeSubnetsV4(NETWORKS + 3);
    specs = Array.from({ length: NETWORKS }, (_, i) => specFor(i, subnets[i]!, v6Prefix));
    transient = Array.from({ length: 3 }, (_, i) => specFor(NETWORKS + i, subnets[NETWORKS + i]!, v6Prefix));
    assert.deepEqual(await existingBridges([...specs, ...transient]), [], 'random bridge names that exist');
    initial = await snapshot();
    for (const family of FAMILIES) {
      for (const line of structure(initial[family])) if (!initial[family].includes(line)) addedStructure[family].add(line);
    }
  });

  after(async () => {
    await Promise.allSettled([...specs, ...transient].map((s) => firewall().removeNetwork(s.networkId)));
    await removeOurChains(addedStructure);
  });

  test('20 networks ensured at once: our chains, one jump each, exactly each network\'s rules', async () => {
    await Promise.all(specs.map((s) => firewall().ensureNetwork(s)));
    const after1 = await snapshot();
    for (const family of FAMILIES) {
      const lines = after1[family];
      assert.deepEqual(untagged(lines, allTags(), addedStructure[family]), initial[family], `${family}: other rules changed`);
      // Structure lines are set-like: a second jump or a repeated order rule is a failure.
      for (const line of structure(initial[family])) {
        assert.equal(lines.filter((l) => l === line).length, 1, `${family}: "${line}" is not there exactly once`);
      }
      assert.equal(lines.filter((l) => l.endsWith(`-j ${CHAINS.isolation}`)).length, 1, `${family}: jumps to ${CHAINS.isolation}`);
      assert.equal(lines.filter((l) => l.endsWith(`-j ${CHAINS.masquerade}`)).length, 1, `${family}: jumps to ${CHAINS.masquerade}`);
      for (const s of specs) {
        assert.deepEqual(tagged(lines, networkTag(s.networkId)), expectedRules(s, family), `${family}: rules of ${s.bridge}`);
      }
    }
    // Idempotent under concurrency too: the same 20 again (a startup sync racing creates) change nothing.
    await Promise.all(specs.map((s) => firewall().ensureNetwork(s)));
    assert.deepEqual(await snapshot(), after1);
  });

  test('removed at once, with ensure-then-remove of the same networks interleaved: none of their rules, the rest as before', async () => {
    await Promise.all([
      ...specs.map((s) => firewall().removeNetwork(s.networkId)),
      ...specs.slice(0, 3).map((s) => firewall().ensureNetwork(s).then(() => firewall().removeNetwork(s.networkId))),
      ...transient.map((s) => firewall().ensureNetwork(s).then(() => firewall().removeNetwork(s.networkId))),
      ...specs.slice(3, 6).map((s) => firewall().removeNetwork(s.networkId)),
    ]);
    const after2 = await snapshot();
    for (const family of FAMILIES) {
      for (const tag of allTags()) assert.ok(!after2[family].some((l) => l.includes(tag)), `${family}: rules of ${tag} left`);
      // Exactly as before, in order, apart from our shared chains (kept by design) when the host had none.
      assert.deepEqual(untagged(after2[family], [], addedStructure[family]), initial[family], `${family}: host rules differ from before`);
      for (const line of structure(initial[family])) {
        assert.equal(after2[family].filter((l) => l === line).length, 1, `${family}: "${line}" is not there exactly once`);
      }
    }
  });
});

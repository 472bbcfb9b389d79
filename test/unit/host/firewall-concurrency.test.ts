// Many networks created and removed at once: every change is save -> diff ->
// restore, so the firewall must serialise them. A stateful fake iptables
// applies each restore to what the previous ones left (and fails a -D of a
// rule that is not there, as iptables-restore does), with a pause between
// save and restore so unserialised changes would interleave.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAINS, NetworkFirewall, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import { networkTag } from '../../../src/names.js';
import { silentLogger } from '../../../src/log.js';
import { FakeRunner } from './fake-runner.js';

class FakeIptables {
  readonly tables = new Map<string, { chains: string[]; rules: string[] }>([
    ['filter', { chains: ['INPUT', 'FORWARD', 'OUTPUT', 'DOCKER-USER'], rules: ['-A FORWARD -j DOCKER-USER', '-A DOCKER-USER -j RETURN'] }],
    ['nat', { chains: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], rules: [] }],
  ]);

  save(): string {
    const out: string[] = [];
    for (const [name, t] of this.tables) out.push(`*${name}`, ...t.chains.map((c) => `:${c} - [0:0]`), ...t.rules, 'COMMIT');
    return `${out.join('\n')}\n`;
  }

  restore(script: string): void {
    let table: { chains: string[]; rules: string[] } | undefined;
    for (const line of script.split('\n')) {
      if (line.startsWith('*')) table = this.tables.get(line.slice(1));
      else if (!table || line === 'COMMIT' || line === '') continue;
      else if (line.startsWith(':')) {
        const chain = line.slice(1).split(' ')[0]!;
        if (table.chains.includes(chain)) throw new Error(`iptables-restore: chain ${chain} already exists`);
        table.chains.push(chain);
      } else if (line.startsWith('-A ')) table.rules.push(line);
      else if (line.startsWith('-I ')) {
        const [, chain, , ...rest] = line.split(' ');
        const at = table.rules.findIndex((r) => r.startsWith(`-A ${chain} `));
        table.rules.splice(at < 0 ? table.rules.length : at, 0, `-A ${chain} ${rest.join(' ')}`);
      } else if (line.startsWith('-D ')) {
        const at = table.rules.indexOf(line.replace(/^-D /, '-A '));
        if (at < 0) throw new Error(`iptables-restore: line failed: ${line}: rule does not exist`);
        table.rules.splice(at, 1);
      }
    }
  }
}

const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

function fakeHost(ipt: FakeIptables): FakeRunner {
  const runner = new FakeRunner();
  runner.respond('iptables-save', async () => {
    const text = ipt.save();
    await pause();
    return text;
  });
  runner.respond('iptables-restore', async (_args, options) => {
    await pause();
    ipt.restore(options.input ?? '');
    return '';
  });
  runner.respond('ip6tables-save', () => {
    throw new Error('no ip6tables');
  });
  return runner;
}

const spec = (i: number): NetworkFirewallSpec => {
  const hex = i.toString(16).padStart(2, '0');
  return {
    networkId: `${hex}${'a'.repeat(62)}`,
    bridge: `dcni-${hex}aaaaaaaa`,
    subnetsV4: [`10.99.${i}.0/24`],
    subnetsV6: [],
    internal: false,
    icc: true,
    masquerade: true,
    isolate: true,
  };
};

describe('NetworkFirewall under concurrency', () => {
  test('20 networks ensured in parallel, then removed in parallel, leave exactly the expected rules', async () => {
    const ipt = new FakeIptables();
    const runner = fakeHost(ipt);
    const specs = Array.from({ length: 20 }, (_, i) => spec(i + 1));
    // Separate instances on purpose: the queue is per process, not per object.
    await Promise.all(specs.map((s) => new NetworkFirewall(runner.run, silentLogger).ensureNetwork(s)));
    // Ensure is idempotent: a second round (startup rule sync racing creates) changes nothing.
    const once = ipt.save();
    await Promise.all(specs.map((s) => new NetworkFirewall(runner.run, silentLogger).ensureNetwork(s)));
    assert.equal(ipt.save(), once);

    const filter = ipt.tables.get('filter')!.rules;
    const nat = ipt.tables.get('nat')!.rules;
    assert.deepEqual(filter.filter((r) => r.endsWith(`-j ${CHAINS.isolation}`)), [`-A DOCKER-USER -j ${CHAINS.isolation}`]);
    assert.deepEqual(filter.filter((r) => r.startsWith(`-A ${CHAINS.isolation} `)), [
      `-A ${CHAINS.isolation} -j ${CHAINS.ingress}`,
      `-A ${CHAINS.isolation} -j ${CHAINS.egress}`,
    ]);
    assert.deepEqual(nat.filter((r) => r.endsWith(`-j ${CHAINS.masquerade}`)), [`-A POSTROUTING -j ${CHAINS.masquerade}`]);
    for (const s of specs) {
      const tag = networkTag(s.networkId);
      const own = [...filter, ...nat].filter((r) => r.includes(tag));
      assert.deepEqual(own, [
        `-A ${CHAINS.ingress} -i ${s.bridge} -o ${s.bridge} -m comment --comment ${tag} -j ACCEPT`,
        `-A ${CHAINS.ingress} -o ${s.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment ${tag} -j ACCEPT`,
        `-A ${CHAINS.ingress} -o ${s.bridge} -m comment --comment ${tag} -j DROP`,
        `-A ${CHAINS.egress} -i ${s.bridge} -o docker0 -m comment --comment ${tag} -j DROP`,
        `-A ${CHAINS.egress} -i ${s.bridge} -o br-+ -m comment --comment ${tag} -j DROP`,
        `-A ${CHAINS.egress} -i ${s.bridge} -m comment --comment ${tag} -j ACCEPT`,
        `-A ${CHAINS.masquerade} -s ${s.subnetsV4[0]} ! -o ${s.bridge} -m comment --comment ${tag} -j MASQUERADE`,
      ].sort((a, b) => (a.startsWith(`-A ${CHAINS.masquerade}`) ? 1 : 0) - (b.startsWith(`-A ${CHAINS.masquerade}`) ? 1 : 0)));
    }
    assert.equal(filter.length, 2 + 1 + 2 + 20 * 6);

    await Promise.all(specs.map((s) => new NetworkFirewall(runner.run, silentLogger).removeNetwork(s.networkId)));
    // And removal is idempotent too.
    await Promise.all(specs.map((s) => new NetworkFirewall(runner.run, silentLogger).removeNetwork(s.networkId)));
    assert.deepEqual(ipt.tables.get('filter')!.rules, [
      `-A FORWARD -j DOCKER-USER`,
      `-A DOCKER-USER -j ${CHAINS.isolation}`,
      '-A DOCKER-USER -j RETURN',
      `-A ${CHAINS.isolation} -j ${CHAINS.ingress}`,
      `-A ${CHAINS.isolation} -j ${CHAINS.egress}`,
    ]);
    assert.deepEqual(ipt.tables.get('nat')!.rules, [`-A POSTROUTING -j ${CHAINS.masquerade}`]);
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkFirewall, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import type { CommandRunner } from '../../../src/host/command.js';
import { silentLogger } from '../../../src/log.js';

const spec = (fields: Partial<NetworkFirewallSpec>): NetworkFirewallSpec => ({
  networkId: 'ab12cd34ef56ab12cd34ef56',
  bridge: 'dcni-ab12cd34ef',
  subnetsV4: ['10.233.11.0/24'],
  subnetsV6: [],
  internal: false,
  icc: true,
  masquerade: true,
  isolate: true,
  ...fields,
});

async function scriptFor(s: NetworkFirewallSpec): Promise<string> {
  const inputs: string[] = [];
  const run: CommandRunner = async (file, _args, options) => {
    if (file === 'iptables-restore') inputs.push(options?.input ?? '');
    return file === 'iptables-save' ? '*filter\n:DOCKER-USER - [0:0]\nCOMMIT\n*nat\nCOMMIT\n' : '';
  };
  await new NetworkFirewall(run, silentLogger).ensureNetwork(s);
  return inputs.join('');
}

describe('firewall of a network spanning hosts (routed mode)', () => {
  test('its subnet behind other hosts is the same network: accepted both ways, never masqueraded', async () => {
    const script = await scriptFor(spec({ spansHosts: true }));
    const tag = '-m comment --comment dcni:ab12cd34ef56';
    const lines = script.split('\n');
    const at = (line: string): number => lines.indexOf(line);
    const acceptIn = at(`-A DOCKER-CNI-INGRESS -s 10.233.11.0/24 -o dcni-ab12cd34ef ${tag} -j ACCEPT`);
    const dropIn = at(`-A DOCKER-CNI-INGRESS -o dcni-ab12cd34ef ${tag} -j DROP`);
    assert.ok(acceptIn >= 0 && dropIn > acceptIn, 'accepted before the isolation drop');
    assert.ok(at(`-A DOCKER-CNI-EGRESS -i dcni-ab12cd34ef -d 10.233.11.0/24 ${tag} -j ACCEPT`) >= 0);
    const keep = at(`-A DOCKER-CNI-MASQ -s 10.233.11.0/24 -d 10.233.11.0/24 ${tag} -j RETURN`);
    const masq = at(`-A DOCKER-CNI-MASQ -s 10.233.11.0/24 ! -o dcni-ab12cd34ef ${tag} -j MASQUERADE`);
    assert.ok(keep >= 0 && masq > keep, 'cross-host traffic returns before masquerade');
  });

  test('an internal spanning network still reaches its other hosts, and nothing else', async () => {
    const script = await scriptFor(spec({ spansHosts: true, internal: true, masquerade: false }));
    const lines = script.split('\n');
    const accept = lines.findIndex((l) => l.startsWith('-A DOCKER-CNI-EGRESS -i dcni-ab12cd34ef -d 10.233.11.0/24'));
    const drop = lines.findIndex((l) => l.startsWith('-A DOCKER-CNI-EGRESS -i dcni-ab12cd34ef -m comment') && l.endsWith('-j DROP'));
    assert.ok(accept >= 0 && drop > accept);
    assert.ok(!script.includes('MASQUERADE'));
  });

  test('a single-host network gets none of these rules', async () => {
    const script = await scriptFor(spec({}));
    assert.ok(!script.includes('-s 10.233.11.0/24 -o'));
    assert.ok(!script.includes('-j RETURN'));
  });
});

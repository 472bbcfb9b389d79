// A second process changing the firewall, for firewall-processes.test.ts:
// argv = action (ensure | remove) and a JSON file of specs; every change runs
// at once through NetworkFirewall with the real command runner. Exits 1 with
// the errors on stderr if any change failed.
import { readFile } from 'node:fs/promises';
import { NetworkFirewall, type NetworkFirewallSpec } from '../../../src/host/firewall.js';
import { runCommand } from '../../../src/host/command.js';
import { silentLogger } from '../../../src/log.js';

const [action = '', file = ''] = process.argv.slice(2);
const specs = JSON.parse(await readFile(file, 'utf8')) as NetworkFirewallSpec[];
const firewall = new NetworkFirewall(runCommand, silentLogger);
const results = await Promise.allSettled(
  specs.map((s) => (action === 'ensure' ? firewall.ensureNetwork(s) : firewall.removeNetwork(s.networkId))),
);
const errors = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
if (errors.length > 0) {
  process.stderr.write(`${errors.join('\n')}\n`);
  process.exitCode = 1;
}

// Engine acceptance: dual-stack networks (--ipv6 with an IPv4 and an IPv6
// subnet), with docker-cni's IPAM and with Docker's: both addresses in the
// container, usable at once (no DAD wait), and ping6 by address and by name.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  docker,
  engineSkipReason,
  freeSubnet,
  randomHex,
  setupEngineSuite,
  waitFor,
  type EngineScope,
} from '../../helpers/engine.js';
import { containerRoutes, featureCase, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

/** fd7d:c11d:4e7:X::/64 with X taken from the random IPv4 /24 (10.231.X.0/24), so the pair is unique together. */
function v6SubnetFor(v4Subnet: string): string {
  const third = Number(v4Subnet.split('.')[2]);
  return `fd7d:c11d:4e7:${third.toString(16)}::/64`;
}

async function dualStackNetwork(s: EngineScope, ipamDriver: string | null): Promise<{ name: string; v6Subnet: string }> {
  const v4 = await freeSubnet();
  const v6 = v6SubnetFor(v4);
  const name = `cnit-v6-${randomHex(6)}`;
  const args = ['network', 'create', '-d', s.plugin.driver, '--ipv6', '--subnet', v4, '--subnet', v6];
  if (ipamDriver) args.push('--ipam-driver', ipamDriver);
  args.push('-o', `com.docker.network.bridge.name=${testBridgeName(randomHex(8))}`, name);
  s.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name]));
  await docker(args);
  return { name, v6Subnet: v6 };
}

async function globalV6(container: string, network: string): Promise<string> {
  return docker(['inspect', '-f', `{{with index .NetworkSettings.Networks "${network}"}}{{.GlobalIPv6Address}}{{end}}`, container]);
}

async function ping6(container: string, target: string): Promise<void> {
  await waitFor(
    async () => (await docker(['exec', container, 'ping6', '-c', '1', '-W', '2', target]).then(() => true, () => false)),
    { timeoutMs: 15_000, intervalMs: 300, what: `${container} to ping6 ${target}` },
  );
}

describe('engine: IPv6 dual stack', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  for (const ipam of ['docker-cni', 'default'] as const) {
    test(`--ipv6 with two subnets (${ipam} IPAM): both addresses in the container, ping6 by address and by name`, { timeout: TEST_TIMEOUT }, () =>
      featureCase(plugin(), async (s) => {
        const net = await dualStackNetwork(s, ipam === 'docker-cni' ? plugin().driver : null);
        const first = await s.runContainer({ network: net.name });
        const second = await s.runContainer({ network: net.name });
        const prefix = net.v6Subnet.split('::')[0] ?? '';
        for (const container of [first, second]) {
          const v6 = await globalV6(container, net.name);
          assert.ok(v6.startsWith(`${prefix}:`), `${container} has IPv6 "${v6}", expected one in ${net.v6Subnet}`);
          const addr = await docker(['exec', container, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']);
          assert.match(addr, /\sinet 10\.231\.\d+\.\d+\/24/);
          const globalLine = addr.split('\n').find((line) => line.includes(` inet6 ${v6}/64`));
          assert.ok(globalLine, `eth0 lacks ${v6}/64: ${addr}`);
          // Docker adds it with nodad; a tentative global address would make the first ping6 fail.
          assert.ok(!/tentative|dadfailed/.test(globalLine), `address not usable yet: ${globalLine}`);
          const routes = await containerRoutes(container, true);
          assert.ok(routes.some((r) => r.startsWith('default via ')), `no IPv6 default route: ${routes.join('; ')}`);
        }
        await ping6(first, await globalV6(second, net.name));
        await ping6(second, await globalV6(first, net.name));
        await ping6(first, second);
      }));
  }
});

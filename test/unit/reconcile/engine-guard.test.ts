import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PluginError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { EngineGuard } from '../../../src/reconcile/engine-guard.js';

describe('EngineGuard (Docker 29 nftables firewall backend)', () => {
  test('nftables is refused with a message naming the fix; iptables, an old engine and an unreachable Docker are not', async () => {
    let answer: () => Promise<string | undefined> = async () => 'iptables';
    const guard = new EngineGuard(() => answer(), silentLogger);
    await guard.check();
    assert.equal(guard.problem(), undefined);
    answer = async () => undefined; // before API 1.50
    await guard.check();
    assert.equal(guard.problem(), undefined);
    answer = async () => 'nftables';
    await guard.check();
    assert.match(guard.problem() ?? '', /no DOCKER-USER chain.*--firewall-backend=iptables/);
    assert.throws(() => guard.assertSupported(), (err: unknown) => err instanceof PluginError && /nftables/.test(err.message));
    answer = async () => {
      throw new Error('connect ENOENT /var/run/docker.sock');
    };
    await guard.check();
    assert.ok(guard.problem(), 'an unreachable Docker keeps the last answer');
  });
});

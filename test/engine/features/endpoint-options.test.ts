// Engine acceptance: per-endpoint options. Values from
// `docker network connect --driver-opt k=v` and
// `docker run --network name=NET,driver-opt=k=v` arrive in CreateEndpoint;
// cni.args.<KEY> reaches CNI_ARGS, unknown cni.* keys are refused clearly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  docker,
  dockerResult,
  engineSkipReason,
  freeSubnet,
  randomHex,
  setupEngineSuite,
  uniqueName,
  TEST_IMAGE,
  endpointIdOf,
  endpointRecordPath,
  type PluginDirs,
} from '../../helpers/engine.js';
import { featureCase, testBridgeName } from './feature-helpers.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

async function recordedCniArgs(dirs: PluginDirs, endpointId: string): Promise<Array<[string, string]>> {
  const record = JSON.parse(await readFile(endpointRecordPath(dirs, endpointId), 'utf8')) as { cniArgs: Array<[string, string]> };
  return record.cniArgs;
}

describe('engine: per-endpoint driver options', { skip }, () => {
  const plugin = setupEngineSuite({ env: { DOCKER_CNI_RECONCILE_INTERVAL_MS: '0' } });

  test('cni.args.<KEY> from network connect --driver-opt and from run --network driver-opt= reach CNI_ARGS', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const first = await s.createNetwork({ subnet: await freeSubnet(), options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) } });
      const second = await s.createNetwork({ subnet: await freeSubnet(), options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) } });
      const value = `v${randomHex(8)}`;
      const name = uniqueName('cnit-eopt');
      s.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
      await docker(['run', '-d', '--name', name, '--network', `name=${first.name},driver-opt=cni.args.RUN_KEY=${value}`, TEST_IMAGE, 'sleep', '600']);
      const fromRun = await recordedCniArgs(plugin().dirs, await endpointIdOf(name, first.name));
      assert.deepEqual(fromRun.find(([k]) => k === 'RUN_KEY'), ['RUN_KEY', value]);

      await docker(['network', 'connect', '--driver-opt', `cni.args.CONNECT_KEY=${value}`, second.name, name]);
      const fromConnect = await recordedCniArgs(plugin().dirs, await endpointIdOf(name, second.name));
      assert.deepEqual(fromConnect.find(([k]) => k === 'CONNECT_KEY'), ['CONNECT_KEY', value]);
      // The CNI cache (what other CNI tools read) carries the same args.
      const cached = await readFile(join(plugin().dirs.cacheDir, 'results', `dcni-${second.id.slice(0, 12)}-${await endpointIdOf(name, second.name)}-eth0`), 'utf8');
      const cachedArgs = (JSON.parse(cached) as { cniArgs?: Array<[string, string]> }).cniArgs ?? [];
      assert.deepEqual(cachedArgs.find(([k]) => k === 'CONNECT_KEY'), ['CONNECT_KEY', value], `cni.args missing from the CNI cache entry: ${cached.slice(0, 300)}`);
    }));

  test('unknown cni.* endpoint keys and bad cni.args values fail with a clear message', { timeout: TEST_TIMEOUT }, () =>
    featureCase(plugin(), async (s) => {
      const net = await s.createNetwork({ subnet: await freeSubnet(), options: { 'com.docker.network.bridge.name': testBridgeName(randomHex(8)) } });
      const cases: Array<[string, RegExp]> = [
        ['cni.bogus=1', /unsupported endpoint option "cni\.bogus"/],
        ['cni.args.K=a;b', /a CNI_ARGS value cannot contain ';' or '='/],
        ['cni.args.docker_endpoint_id=x', /DOCKER_ENDPOINT_ID is set by docker-cni/],
        ['cni.bandwidth.ingress_rate=fast', /expected a positive integer/],
        ['cni.bandwidth.ingress_rate=1000000', /cni\.bandwidth\.ingress_rate and cni\.bandwidth\.ingress_burst must be given together/],
      ];
      for (const [opt, expected] of cases) {
        const name = uniqueName('cnit-eopt');
        s.defer(`docker rm -f ${name}`, () => docker(['rm', '-f', name]));
        const result = await dockerResult(['run', '-d', '--name', name, '--network', `name=${net.name},driver-opt=${opt}`, TEST_IMAGE, 'true']);
        assert.notEqual(result.exitCode, 0, `docker run accepted driver-opt ${opt}`);
        assert.match(result.stderr, expected, `driver-opt ${opt}`);
      }
    }));
});

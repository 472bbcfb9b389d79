// Engine acceptance: bad input is refused with a message that names the
// problem (Docker shows the plugin's Err verbatim), nothing is left behind,
// and the plugin keeps serving.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DockerCommandError,
  assertPings,
  cidrContains,
  confDirOrSkip,
  containerIp,
  engineCase,
  engineSkipReason,
  freeSubnet,
  hostInSubnet,
  randomHex,
  setupEngineSuite,
  uniqueName,
  type EngineScope,
  type NetworkOptions,
} from '../helpers/engine.js';

const TEST_TIMEOUT = 240_000;
const skip = await engineSkipReason();

/**
 * The bad configuration must be refused either by `docker network create` or,
 * if the plugin only finds out when it runs CNI, by `docker run`. Either way
 * Docker's message must match `problem`.
 */
async function expectRefused(s: EngineScope, options: NetworkOptions, problem: RegExp): Promise<'create' | 'run'> {
  let networkName: string;
  try {
    networkName = (await s.createNetwork(options)).name;
  } catch (err) {
    if (!(err instanceof DockerCommandError)) throw err;
    assert.match(err.stderr, problem, `docker network create failed, but its message does not name the problem`);
    return 'create';
  }
  let runError: DockerCommandError | undefined;
  try {
    await s.runContainer({ network: networkName });
  } catch (err) {
    if (!(err instanceof DockerCommandError)) throw err;
    runError = err;
  }
  assert.ok(runError, `both docker network create and docker run accepted ${JSON.stringify(options.options)}`);
  assert.match(runError.stderr, problem, `docker run failed, but its message does not name the problem`);
  return 'run';
}

/** A valid network and two containers that reach each other: the plugin still serves. */
async function assertStillServing(s: EngineScope): Promise<void> {
  const subnet = await freeSubnet();
  const network = await s.createNetwork({ subnet });
  const first = await s.runContainer({ network: network.name });
  const second = await s.runContainer({ network: network.name });
  assert.ok(cidrContains(subnet, await containerIp(first, network.name)));
  await assertPings(first, second);
}

describe('engine: bad input', { skip }, () => {
  const plugin = setupEngineSuite();

  test('-o com.docker.network.driver.mtu=abc is refused naming the option, then the plugin keeps serving', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      await expectRefused(s, { subnet: await freeSubnet(), options: { 'com.docker.network.driver.mtu': 'abc' } }, /mtu/i);
      await assertStillServing(s);
    }));

  test('-o cni.network=<missing conflist> is refused naming the conflist, then the plugin keeps serving', { timeout: TEST_TIMEOUT }, () =>
    engineCase(plugin(), async (s) => {
      const missing = uniqueName('cnit-missing');
      await expectRefused(s, { subnet: await freeSubnet(), options: { 'cni.network': missing } }, new RegExp(missing));
      await assertStillServing(s);
    }));

  test('a conflist naming a CNI plugin type that does not exist is refused naming the type, then the plugin keeps serving', { timeout: TEST_TIMEOUT }, async (t) => {
    const confDir = confDirOrSkip(t, plugin());
    if (!confDir) return;
    await engineCase(plugin(), async (s) => {
      const missingType = `cnit-noplugin-${randomHex(6)}`;
      const subnet = await freeSubnet();
      const confName = await s.placeConflist(confDir, [
        { type: missingType, ipam: { type: 'host-local', ranges: [[{ subnet, gateway: hostInSubnet(subnet, 1) }]] } },
      ]);
      await expectRefused(s, { subnet, options: { 'cni.network': confName } }, new RegExp(missingType));
      await assertStillServing(s);
    });
  });
});

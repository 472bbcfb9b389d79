/**
 * What an engine test needs before it starts: root, the CNI plugins, a docker
 * client and daemon, the built plugin (child mode), and the offline test image.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { DOCKER_BIN, PLUGIN_ENTRY, REPO_ROOT, TEST_IMAGE } from './common.js';
import { dockerResult } from './docker-cli.js';
import { pluginMode } from './plugin-launcher.js';
import { dockerAvailable, hasCniPlugins, isRoot, skipUnless } from './prereq.js';

const IMAGE_BUILD_SCRIPT = join(REPO_ROOT, 'test', 'fixtures', 'image', 'build.sh');

/**
 * False when everything an engine test needs is here, else the skip reason.
 * Under CI=true a gap throws (the file fails) instead of skipping.
 */
export async function engineSkipReason(): Promise<string | false> {
  const mode = pluginMode();
  return skipUnless([
    [isRoot(), 'root'],
    [hasCniPlugins(), 'CNI plugins (containernetworking-plugins) in /usr/lib/cni or /opt/cni/bin'],
    [existsSync(DOCKER_BIN), `docker client ${DOCKER_BIN}`],
    [await dockerAvailable(), 'a running dockerd on /var/run/docker.sock'],
    [mode.kind !== 'child' || existsSync(PLUGIN_ENTRY), `${PLUGIN_ENTRY} (run npm run build)`],
  ]);
}

/** Builds the offline busybox image when it is missing. */
export async function ensureTestImage(): Promise<void> {
  const present = await dockerResult(['image', 'inspect', TEST_IMAGE]);
  if (present.exitCode === 0) return;
  const built = await execa('bash', [IMAGE_BUILD_SCRIPT], {
    reject: false,
    env: { DOCKER_BIN, DOCKER_CNI_TEST_IMAGE: TEST_IMAGE },
    timeout: 120_000,
  });
  if (built.exitCode !== 0) throw new Error(`building ${TEST_IMAGE} failed: ${String(built.stderr)}${String(built.stdout)}`);
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PLUGIN_NODE_FLAGS, REPO_ROOT } from '../../helpers/common.js';

/** Every way the plugin is started gives node the same flags the engine tiers and the bench run it with. */
const launchers: Array<[file: string, line: RegExp]> = [
  ['plugin/entrypoint', /^exec node (.*) \/opt\/docker-cni\/dist\/cli\/main\.js "\$@"$/m],
  ['plugin/systemd/docker-cni.service', /^ExecStart=node (.*) \/opt\/docker-cni\/dist\/cli\/main\.js serve$/m],
  ['package.json', /"start": "npm run build && node (.*) dist\/cli\/main\.js serve"/],
];

for (const [file, line] of launchers) {
  test(`${file} starts the plugin with ${PLUGIN_NODE_FLAGS.join(' ')}`, async () => {
    const text = await readFile(join(REPO_ROOT, file), 'utf8');
    const flags = line.exec(text)?.[1];
    assert.equal(flags, PLUGIN_NODE_FLAGS.join(' '), `${file}: the node command line`);
  });
}

/**
 * config.json (the managed plugin's manifest) against the entrypoint and the
 * README: every bind source is a dir every Linux host has, so `docker plugin
 * enable` works on a fresh host; each settable dir mount is placed by the
 * entrypoint; `documentation` is a URL to the README's install section.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers/engine.js';

interface Mount {
  name: string;
  destination: string;
  type: string;
  source: string;
  options: string[];
  settable?: string[];
}
interface Manifest {
  documentation: string;
  mounts: Mount[];
}

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'config.json'), 'utf8')) as Manifest;
const entrypoint = readFileSync(join(REPO_ROOT, 'plugin', 'entrypoint'), 'utf8');
const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { homepage?: string; repository?: string | { url?: string } };

/** Dirs that exist on every host dockerd runs on (FHS; Debian's base-files creates /opt). */
const ALWAYS_THERE = new Set(['/etc', '/opt', '/var/lib', '/run', '/var/run/docker']);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

describe('managed plugin manifest', () => {
  test('every bind source exists on a fresh host', () => {
    for (const mount of manifest.mounts.filter((m) => m.type === 'bind')) {
      assert.ok(ALWAYS_THERE.has(mount.source), `${mount.name}: ${mount.source} is not a dir every host has`);
    }
  });

  test('the dir mounts stay settable and are placed by the entrypoint', () => {
    const expected = new Map([
      ['cni-conf', '/etc/cni/net.d'],
      ['cni-bin', '/opt/cni/bin'],
      ['cni-state', '/var/lib/cni'],
      ['state', '/var/lib/docker-cni'],
      ['run-state', '/run/docker-cni'],
    ]);
    for (const [name, target] of expected) {
      const mount = manifest.mounts.find((m) => m.name === name);
      assert.ok(mount, `mount ${name}`);
      assert.deepEqual(mount.settable, ['source'], `${name} settable with docker plugin set ${name}.source=...`);
      assert.equal(mount.destination, `/host/source/${name}`);
      assert.match(entrypoint, new RegExp(`^place ${name} \\S+ \\S+ ${target} `, 'm'), `entrypoint places ${name} at ${target}`);
    }
  });

  test('the parent mounts are not recursive (no copies of container mounts under /var/lib)', () => {
    for (const mount of manifest.mounts.filter((m) => m.destination.startsWith('/host/parent/') || m.destination.startsWith('/host/source/'))) {
      assert.ok(!mount.options.includes('rbind'), `${mount.name}: ${mount.options.join(',')}`);
      assert.match(entrypoint, new RegExp(`umount -l "\\$mounted"`), 'entrypoint unmounts the parents');
      assert.ok(entrypoint.includes(mount.destination), `entrypoint unmounts ${mount.destination}`);
    }
  });

  test('documentation is a URL to the README install section', () => {
    const url = new URL(manifest.documentation);
    assert.equal(url.protocol, 'https:');
    const headings = [...readme.matchAll(/^#+ (.+)$/gm)].map((m) => anchorOf(m[1] ?? ''));
    assert.ok(headings.includes(url.hash.slice(1)), `README has no heading with anchor ${url.hash}`);
    assert.match(url.hash, /install/);
    const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
    for (const declared of [pkg.homepage, repo]) {
      if (declared === undefined) continue;
      const base = declared.replace(/^git\+/, '').replace(/\.git$/, '').replace(/#.*$/, '');
      assert.ok(manifest.documentation.startsWith(base), `${manifest.documentation} is not under package.json's ${declared}`);
    }
  });
});

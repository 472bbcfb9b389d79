/**
 * plugin/systemd/docker-cni.service: `systemd-analyze verify` accepts it, and
 * it says what the README promises (readiness before docker.service, the
 * network-online pair, mixed kill mode, hardening). Needs systemd-analyze
 * (Debian package systemd); missing, the test is skipped, or fails under CI.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { skipUnless } from '../../helpers/prereq.js';
import { REPO_ROOT } from '../../helpers/engine.js';

const UNIT = join(REPO_ROOT, 'plugin', 'systemd', 'docker-cni.service');
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => existsSync(path));

/** `Key=value` lines per section; a key may repeat. */
function parseUnit(text: string): Map<string, Array<[string, string]>> {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1] ?? '', current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `not a Key=value line inside a section: ${line}`);
    current.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return sections;
}

function values(unit: Map<string, Array<[string, string]>>, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

describe('systemd unit', () => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));

  test('systemd-analyze verify accepts it', { skip: skipUnless([[ANALYZE !== undefined, 'systemd-analyze (apt-get install systemd)']]) }, async () => {
    const r = await execa(ANALYZE ?? 'systemd-analyze', ['verify', '--man=no', UNIT], { reject: false, timeout: 60_000 });
    // verify also loads the units this one names (docker.service, ...);
    // only complaints about this file count.
    const own = String(r.stderr).split('\n').filter((line) => line.includes('docker-cni'));
    assert.deepEqual(own, [], String(r.stderr));
    assert.equal(r.exitCode, 0, String(r.stderr));
  });

  test('ordering: up before docker.service, after the network is online', () => {
    assert.deepEqual(values(unit, 'Unit', 'Before'), ['docker.service']);
    assert.deepEqual(values(unit, 'Unit', 'Wants'), ['network-online.target']);
    assert.deepEqual(values(unit, 'Unit', 'After'), ['network-online.target']);
  });

  test('readiness: started means the socket answers (wait-ready in ExecStartPost)', () => {
    assert.deepEqual(values(unit, 'Service', 'Type'), ['exec']);
    const [start] = values(unit, 'Service', 'ExecStart');
    const [post] = values(unit, 'Service', 'ExecStartPost');
    assert.match(start ?? '', /dist\/cli\/main\.js serve$/);
    assert.match(post ?? '', /dist\/cli\/main\.js wait-ready\b/);
  });

  test('stop: SIGTERM to serve only, a bounded stop time, restart on failure', () => {
    assert.deepEqual(values(unit, 'Service', 'KillMode'), ['mixed']);
    const [stop] = values(unit, 'Service', 'TimeoutStopSec');
    // Longer than the default CNI plugin timeout (20 s), so a running plugin can finish.
    assert.ok(Number(stop) > 20, `TimeoutStopSec=${stop}`);
    assert.deepEqual(values(unit, 'Service', 'Restart'), ['always']);
  });

  test('hardening: only the capabilities the plugin needs, a read-only system', () => {
    const caps = (values(unit, 'Service', 'CapabilityBoundingSet')[0] ?? '').split(/\s+/).sort();
    assert.deepEqual(caps, ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN']);
    assert.deepEqual(values(unit, 'Service', 'ProtectSystem'), ['strict']);
    assert.deepEqual(values(unit, 'Service', 'NoNewPrivileges'), ['yes']);
    const writable = (values(unit, 'Service', 'ReadWritePaths')[0] ?? '').split(/\s+/);
    assert.deepEqual(writable.sort(), ['/run', '/var/lib/cni']);
    assert.deepEqual(values(unit, 'Service', 'StateDirectory'), ['docker-cni']);
    assert.deepEqual(values(unit, 'Service', 'StateDirectoryMode'), ['0700']);
  });

  test('systemd-analyze security rates the exposure no worse than "OK"', { skip: skipUnless([[ANALYZE !== undefined, 'systemd-analyze (apt-get install systemd)']]) }, async () => {
    const r = await execa(ANALYZE ?? 'systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { reject: false, timeout: 60_000 });
    const verdict = /Overall exposure level for docker-cni\.service: ([\d.]+) (\w+)/.exec(String(r.stdout));
    assert.ok(verdict, String(r.stdout) + String(r.stderr));
    assert.ok(['SAFE', 'OK'].includes(verdict[2] ?? ''), verdict[0]);
  });
});

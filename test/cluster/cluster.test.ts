/**
 * The multi-host tier: 3 simulated hosts (own netns, mount ns, dockerd and
 * containerd each) on one underlay, a 3-member etcd, a swarm, and the
 * managed plugin installed on every host. Run it alone, under the engine
 * lock:  flock /tmp/docker-cni-engine.lock node --import tsx --test --test-concurrency=1 test/cluster/cluster.test.ts
 * (name the file: on Node 20 `--test test/cluster/` finds no .ts file and runs nothing).
 * Everything is torn down afterwards and checked gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isRoot, skipUnless } from '../helpers/prereq.js';
import { dk, HOSTS, REPO, SIM_DIR, simDown, simUp, TEST_IMAGE } from './sim.js';
import { spawnSync } from 'node:child_process';
import { etcdDown, memberKilled } from './faults.js';
import { independentDaemons } from './independent.js';
import { hostLeft } from './host-left.js';
import { thirtyAtOnce } from './many.js';
import { pluginKilled } from './plugin-kill.js';
import { swarmService } from './service.js';
import { ipOf, LEASE_TTL_S, reach, PLUGIN, RECONCILE_MS, removeSpanning, spanning } from './span.js';

const run = promisify(execFile);
/** Small blocks, so that 10 containers per host need several, claimed while the other hosts claim theirs. */
const BLOCK_PREFIX_V4 = 29;
const PLUGIN_DIR = `${SIM_DIR}-plugin`;

const have = (file: string, args: string[]): boolean => spawnSync(file, args, { stdio: 'ignore' }).status === 0;
const skip = skipUnless([
  [isRoot(), 'root'],
  [have('/usr/bin/etcd', ['--version']), 'etcd (Debian etcd-server)'],
  // The tests read etcd's keys with it.
  [have('/usr/bin/etcdctl', ['version']), 'etcdctl (Debian etcd-client)'],
  [have('ctr', ['--version']), 'ctr (Debian containerd)'],
  [have('nsenter', ['--version']), 'nsenter (util-linux)'],
  [have('/usr/bin/docker', ['image', 'inspect', TEST_IMAGE]), `image ${TEST_IMAGE} (test/fixtures/image/build.sh)`],
  [have('/usr/bin/docker', ['image', 'inspect', 'docker-cni/base:bookworm']), 'image docker-cni/base:bookworm (plugin/base-image)'],
]);

async function conflist(name: string, body: object): Promise<void> {
  for (const i of HOSTS) {
    const dir = join(SIM_DIR, `host${i}`, 'cni-conf');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, plugins: [body] }));
  }
}

describe('docker-cni across 3 hosts (swarm + etcd)', { skip }, () => {
  before(async () => {
    await rm(PLUGIN_DIR, { recursive: true, force: true });
    await run(join(REPO, 'plugin', 'build'), ['--base', 'docker-cni/base:bookworm', '--no-create', '--out', PLUGIN_DIR], {
      env: { ...process.env, DOCKER: '/usr/bin/docker' },
      timeout: 600_000,
      maxBuffer: 64 << 20,
    });
    await simUp({
      pluginDir: PLUGIN_DIR,
      pluginName: PLUGIN,
      pluginSettings: [
        `DOCKER_CNI_CLUSTER_LEASE_TTL=${LEASE_TTL_S}`,
        `DOCKER_CNI_CLUSTER_BLOCK_PREFIX_V4=${BLOCK_PREFIX_V4}`,
        // The background reconciler removes what a killed plugin half made (plugin-kill.ts); 60 s by default.
        `DOCKER_CNI_RECONCILE_INTERVAL_MS=${RECONCILE_MS}`,
      ],
    });
  });

  after(async () => {
    const left = await simDown();
    await rm(PLUGIN_DIR, { recursive: true, force: true });
    assert.match(left, /left: 0 netns, 0 links/);
  });

  for (const mode of ['l2', 'routed'] as const) {
    test(`${mode}: containers on different hosts reach each other by IP and by name`, async () => {
      const net = `span-${mode}`;
      const subnet = mode === 'l2' ? '10.233.10.0/24' : '10.233.11.0/24';
      if (mode === 'l2') {
        await conflist('l2span', { type: 'macvlan', master: 'eth0', mode: 'bridge', ipam: { type: 'host-local', ranges: [[{ subnet }]] } });
        await spanning(net, subnet, ['-o', 'cni.network=l2span']);
      } else {
        await spanning(net, subnet, ['-o', 'cni.cluster.mode=routed']);
      }
      const names = HOSTS.map((i) => `${mode}-c${i}`);
      try {
        await Promise.all(HOSTS.map((i) => dk(i, ['run', '-d', '--name', names[i - 1]!, '--network', net, TEST_IMAGE, 'sleep', '600'])));
        const ips = await Promise.all(HOSTS.map((i) => ipOf(i, names[i - 1]!, net)));
        assert.equal(new Set(ips).size, 3, `distinct addresses ${ips.join(' ')}`);
        for (const i of HOSTS) {
          for (const j of HOSTS) {
            if (i === j) continue;
            await reach(i, names[i - 1]!, ips[j - 1]!, `host${i} -> ${ips[j - 1]} by IP`);
            await reach(i, names[i - 1]!, names[j - 1]!, `host${i} -> ${names[j - 1]} by name`);
          }
        }
      } finally {
        await Promise.all(HOSTS.map((i) => dk(i, ['rm', '-f', names[i - 1]!]).catch(() => undefined)));
        await removeSpanning(net);
      }
    });
  }

  test('30 containers started at once across the hosts get unique addresses and leave nothing in etcd', thirtyAtOnce);
  test('a 3-replica dnsrr swarm service, one task per host: a client reaches every task by tasks.<svc>; removal leaves nothing', swarmService);
  test("host2's docker-cni SIGKILLed during churn: dockerd restarts it and nothing leaks", pluginKilled);
  test('an etcd member SIGKILLed: docker run and rm keep working on every host', memberKilled);
  test('etcd wholly down: a new run fails naming etcd, running containers keep talking, runs work once etcd is back', etcdDown);
  test('outside swarm: the same network made on each dockerd alone shares one pool through etcd; reach by IP, names per daemon', independentDaemons);
  // Last: it freezes host3 and resumes it; later tests would otherwise depend on its recovery.
  test("host3 leaves (frozen, containers killed): its blocks are taken only once its lease expired and another host needs one", hostLeft);
});

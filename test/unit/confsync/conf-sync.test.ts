import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfSync } from '../../../src/confsync/conf-sync.js';
import { planSync, type WantedNetwork } from '../../../src/confsync/plan.js';
import type { SyncStatus } from '../../../src/confsync/status.js';
import { silentLogger } from '../../../src/log.js';
import { CONFLIST_DIGEST_LABEL, MANAGED_NETWORK_LABEL } from '../../../src/names.js';
import type { DockerNetworkAdmin, DockerNetworkSummary, ManagedNetworkSpec } from '../../../src/reconcile/docker-view.js';

const DRIVER = 'cnitest';

const wanted = (name: string, digest = 'd1'): WantedNetwork => ({ name, digest, file: `${name}.conflist`, subnets: [] });
const managed = (name: string, digest = 'd1', containers = 0): DockerNetworkSummary => ({
  id: `${name}-id`,
  name,
  driver: DRIVER,
  labels: { [MANAGED_NETWORK_LABEL]: DRIVER, [CONFLIST_DIGEST_LABEL]: digest },
  containers,
});

describe('conf-dir sync decisions', () => {
  test('a new conflist is created; an unchanged one is kept', () => {
    const actions = planSync({ wanted: [wanted('a'), wanted('b')], problems: [], managed: [managed('b')], foreign: [] });
    assert.deepEqual(actions.map((a) => a.kind), ['create', 'keep']);
  });

  test('a name clash with a network docker-cni does not manage is skipped, naming it', () => {
    const foreign: DockerNetworkSummary = { id: 'f00dbabe1234567', name: 'a', driver: 'bridge', labels: {}, containers: 0 };
    const [action] = planSync({ wanted: [wanted('a')], problems: [], managed: [], foreign: [foreign] });
    assert.equal(action?.kind, 'skip');
    assert.match(action?.kind === 'skip' ? action.reason : '', /"a".*f00dbabe1234.*not managed by docker-cni/);
  });

  test('a changed conflist is recreated when unused, and waits (saying why) while containers use it', () => {
    const [unused] = planSync({ wanted: [wanted('a', 'd2')], problems: [], managed: [managed('a', 'd1', 0)], foreign: [] });
    assert.equal(unused?.kind, 'recreate');
    const [used] = planSync({ wanted: [wanted('a', 'd2')], problems: [], managed: [managed('a', 'd1', 2)], foreign: [] });
    assert.equal(used?.kind, 'wait');
    assert.match(used?.kind === 'wait' ? used.reason : '', /changed.*2 containers still use it/);
  });

  test('a removed conflist removes its network when unused, and waits while one container uses it', () => {
    assert.deepEqual(planSync({ wanted: [], problems: [], managed: [managed('a', 'd1', 0)], foreign: [] }).map((a) => a.kind), ['remove']);
    const [used] = planSync({ wanted: [], problems: [], managed: [managed('a', 'd1', 1)], foreign: [] });
    assert.equal(used?.kind, 'wait');
    assert.match(used?.kind === 'wait' ? used.reason : '', /gone.*1 container still uses it/);
  });

  test('a conflist that turned invalid is reported and its network kept', () => {
    const actions = planSync({ wanted: [], problems: [{ file: 'a.conflist', name: 'a', reason: 'CNI plugin not found: nope' }], managed: [managed('a')], foreign: [] });
    assert.deepEqual(actions.map((a) => a.kind), ['invalid', 'keep']);
  });
});

class FakeDocker implements DockerNetworkAdmin {
  networks: Array<DockerNetworkSummary & { spec?: ManagedNetworkSpec }> = [];
  reachable = true;
  private next = 0;
  private check(): void {
    if (!this.reachable) throw new Error('connect ENOENT /var/run/docker.sock');
  }
  async listByLabel(label: string, value: string): Promise<DockerNetworkSummary[]> {
    this.check();
    return this.networks.filter((n) => n.labels[label] === value);
  }
  async inspect(name: string): Promise<DockerNetworkSummary | undefined> {
    this.check();
    return this.networks.find((n) => n.name === name);
  }
  async create(spec: ManagedNetworkSpec): Promise<string> {
    this.check();
    const id = `net${this.next++}`;
    this.networks.push({ id, name: spec.name, driver: spec.driver, labels: spec.labels, containers: 0, spec });
    return id;
  }
  async remove(id: string): Promise<void> {
    this.check();
    this.networks = this.networks.filter((n) => n.id !== id);
  }
}

describe('conf-dir sync passes (fake Docker)', () => {
  let dir: string;
  let docker: FakeDocker;
  let status: SyncStatus | undefined;
  let sync: ConfSync;
  const present = new Set(['bridge', 'portmap', 'firewall', 'static', 'host-local']);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'confsync-'));
    docker = new FakeDocker();
    status = undefined;
    sync = new ConfSync({
      confDir: dir,
      driver: DRIVER,
      docker,
      locatePlugin: async (type) => {
        if (!present.has(type)) throw new Error(`${type} not found`);
        return type;
      },
      saveStatus: async (s) => {
        status = s;
      },
      logger: silentLogger,
    });
  });
  afterEach(async () => {
    sync.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const conflist = (name: string, subnet: string, extra: object[] = []): string =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name,
      plugins: [{ type: 'bridge', bridge: `br-${name}`, ipam: { type: 'host-local', ranges: [[{ subnet, gateway: subnet.replace(/0\/24$/, '1') }], [{ subnet: 'fd00:1::/64' }]] } }, ...extra],
    });

  test('creates a labelled network with the conflist\'s subnets, both families, named by -o and --ipam-opt', async () => {
    await writeFile(join(dir, '10-web.conflist'), conflist('web', '10.99.1.0/24', [{ type: 'portmap', capabilities: { portMappings: true } }]));
    assert.equal(await sync.runPass(), true);
    const [net] = docker.networks;
    assert.equal(net?.name, 'web');
    assert.deepEqual(net?.spec?.subnets, [{ subnet: '10.99.1.0/24', gateway: '10.99.1.1' }, { subnet: 'fd00:1::/64' }]);
    assert.equal(net?.spec?.enableIPv6, true);
    assert.deepEqual(net?.spec?.options, { 'cni.network': 'web' });
    assert.deepEqual(net?.spec?.ipamOptions, { 'cni.network': 'web' });
    assert.equal(net?.spec?.driver, DRIVER);
    assert.equal(net?.spec?.ipamDriver, DRIVER);
    assert.equal(net?.labels[MANAGED_NETWORK_LABEL], DRIVER);
    assert.deepEqual(status?.entries.map((e) => [e.name, e.state]), [['web', 'created']]);
    assert.equal(await sync.runPass(), true);
    assert.deepEqual(status?.entries.map((e) => [e.name, e.state]), [['web', 'ready']]);
  });

  test('bad conflists are reported by name and do not stop the others', async () => {
    await writeFile(join(dir, '10-broken.conflist'), '{ not json');
    await writeFile(join(dir, '20-missing.conflist'), conflist('missing', '10.99.2.0/24', [{ type: 'nosuchplugin' }]));
    await writeFile(join(dir, '30-good.conflist'), conflist('good', '10.99.3.0/24'));
    assert.equal(await sync.runPass(), true);
    assert.deepEqual(docker.networks.map((n) => n.name), ['good']);
    const byName = new Map(status?.entries.map((e) => [e.name, e]));
    assert.equal(byName.get('10-broken.conflist')?.state, 'invalid');
    assert.match(byName.get('10-broken.conflist')?.reason ?? '', /invalid JSON/);
    assert.equal(byName.get('missing')?.state, 'invalid');
    assert.match(byName.get('missing')?.reason ?? '', /not found: nosuchplugin/);
  });

  test('a change recreates, a removal removes; waits while containers use it', async () => {
    const file = join(dir, '10-web.conflist');
    await writeFile(file, conflist('web', '10.99.1.0/24'));
    await sync.runPass();
    const first = docker.networks[0]!;
    await writeFile(file, conflist('web', '10.99.4.0/24'));
    first.containers = 1;
    await sync.runPass();
    assert.equal(docker.networks[0]?.id, first.id, 'an used network is not recreated');
    assert.equal(status?.entries[0]?.state, 'waiting');
    first.containers = 0;
    await sync.runPass();
    assert.notEqual(docker.networks[0]?.id, first.id);
    assert.deepEqual(docker.networks[0]?.spec?.subnets[0], { subnet: '10.99.4.0/24', gateway: '10.99.4.1' });
    assert.equal(status?.entries[0]?.state, 'recreated');
    await rm(file);
    await sync.runPass();
    assert.deepEqual(docker.networks, []);
    assert.equal(status?.entries[0]?.state, 'removed');
  });

  test('leaves networks of another driver and non-managed clashes alone', async () => {
    docker.networks.push({ id: 'user1', name: 'web', driver: 'bridge', labels: {}, containers: 0 });
    docker.networks.push({ ...managed('theirs'), driver: 'other', labels: { [MANAGED_NETWORK_LABEL]: 'other' } });
    await writeFile(join(dir, '10-web.conflist'), conflist('web', '10.99.1.0/24'));
    await sync.runPass();
    assert.deepEqual(docker.networks.map((n) => n.id), ['user1', 'theirs-id']);
    assert.equal(status?.entries[0]?.state, 'skipped');
  });

  test('Docker unreachable: the pass reports it and returns false (the caller retries with backoff)', async () => {
    docker.reachable = false;
    await writeFile(join(dir, '10-web.conflist'), conflist('web', '10.99.1.0/24'));
    assert.equal(await sync.runPass(), false);
    assert.equal(status?.dockerReachable, false);
    docker.reachable = true;
    assert.equal(await sync.runPass(), true);
    assert.equal(docker.networks.length, 1);
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { networkSpecOf } from '../../../src/confsync/conf-sync.js';
import { readConfDir } from '../../../src/confsync/wanted.js';
import { parseCidr } from '../../../src/util/ip-math.js';

const CORPUS = fileURLToPath(new URL('../../fixtures/conflists/', import.meta.url));

describe('real-world conflist corpus through the conf-dir sync decisions', () => {
  test('every conflist is read, none is reported, and each becomes a network with its own, non-overlapping subnets', async () => {
    const reading = await readConfDir(CORPUS, async (type) => type);
    assert.deepEqual(reading.problems, []);
    assert.deepEqual(reading.wanted.map((w) => w.name).sort(), [
      'cnit-containerd-net', 'cnit-nerdctl', 'cnit-podman', 'cnit-ref-bridge', 'cnit-ref-ipvlan', 'cnit-ref-macvlan', 'cnit-ref-ptp',
    ]);
    const all = reading.wanted.flatMap((w) => networkSpecOf(w, 'cni').subnets.map((s) => s.subnet));
    assert.equal(new Set(all).size, all.length);
    for (const subnet of all) assert.ok(parseCidr(subnet), subnet);
    const containerd = networkSpecOf(reading.wanted.find((w) => w.name === 'cnit-containerd-net')!, 'cni');
    assert.deepEqual(containerd.subnets, [{ subnet: '10.236.1.0/24' }, { subnet: 'fd7d:c11d:4e7:a1::/64' }]);
    assert.equal(containerd.enableIPv6, true);
    const podman = networkSpecOf(reading.wanted.find((w) => w.name === 'cnit-podman')!, 'cni');
    assert.deepEqual(podman.subnets, [{ subnet: '10.236.2.0/24', gateway: '10.236.2.1' }]);
  });
});

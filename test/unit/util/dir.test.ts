import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOnTmpfs } from '../../../src/util/dir.js';

describe('isOnTmpfs', () => {
  it('tells a tmpfs from other file systems, and says nothing for a missing path', async () => {
    assert.equal(await isOnTmpfs('/dev/shm'), true, '/dev/shm is a tmpfs on Linux');
    assert.equal(await isOnTmpfs('/proc'), false, 'procfs is not a tmpfs');
    assert.equal(await isOnTmpfs('/nonexistent-docker-cni-path'), undefined);
  });
});

import assert from 'node:assert/strict';
import { PluginError, type ErrorCode } from '../../src/errors.js';

/** Awaits `promise`, asserts it rejected with a PluginError of `code` (and message `pattern`), returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<PluginError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PluginError, `expected a PluginError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

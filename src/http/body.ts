/** Request bodies: Docker sends no Content-Type and sometimes no body, so every body is read raw and parsed here. */
import type { z } from 'zod';
import { PluginError } from '../errors.js';
import { truncate } from '../util/text.js';
import { oneLine } from './error-reply.js';

/** The raw parser leaves `undefined` when there was no body at all and a Buffer otherwise. */
export function parseJsonBody(raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  if (!Buffer.isBuffer(raw)) throw new PluginError('INTERNAL', 'request body was not read as bytes');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new PluginError('INVALID_ARGUMENT', 'invalid JSON body: not valid UTF-8');
  }
  if (/^[\t\n\r ]*$/.test(text)) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: expected an object, got ${jsonKind(value)}`);
  }
  if (exceedsDepth(value, MAX_JSON_DEPTH)) {
    throw new PluginError('INVALID_ARGUMENT', `invalid JSON body: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value as Record<string, unknown>;
}

/**
 * Docker's bodies nest 4 levels at most (Options -> portmap -> entry -> field).
 * Refusing absurd depth here spares every recursive consumer downstream
 * (schema checks, JSON.stringify when state is persisted) a stack overflow.
 */
export const MAX_JSON_DEPTH = 64;

function exceedsDepth(root: object, limit: number): boolean {
  // Iterative, so that the check itself cannot overflow the stack.
  const pending: Array<[unknown, number]> = [[root, 1]];
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(node)) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
  return false;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** `invalid request: IPv4Data[0].Pool: Invalid input: expected string, received number` (first few issues). */
export function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  const more = error.issues.length - shown.length;
  return oneLine(`invalid request: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`);
}

/** Keys in the path can come from the request (Options maps), so quote anything unusual. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(body)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else {
      const text = typeof segment === 'symbol' ? segment.toString() : segment;
      out += `[${JSON.stringify(truncate(text, 64))}]`;
    }
  }
  return out;
}

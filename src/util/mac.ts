import { randomBytes } from 'node:crypto';

/** A random unicast, locally administered MAC (first octet x2, x6, xA or xE), as Docker picks for its bridge. */
export function randomLocalMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

import type { Store } from './store.js';

/**
 * Moves every record of one store into another, for an upgrade that changes where a kind of record is kept.
 * Copy, then delete: a crash in between leaves the record in both, and the next start copies it again. A record the
 * target already has was written there by this version, so after the old one: it stays and the old copy goes. A
 * record that cannot be read stays where it is, reported, for an operator to look at. Returns the IDs moved.
 */
export async function moveRecords<T extends object>(
  from: Store<T>,
  to: Store<T>,
  onCorrupt: (id: string, err: unknown) => void,
): Promise<string[]> {
  const moved: string[] = [];
  for (const { id, record } of await from.list(onCorrupt)) {
    if ((await to.get(id)) === undefined) {
      await to.put(id, record);
      moved.push(id);
    }
    await from.delete(id);
  }
  return moved;
}

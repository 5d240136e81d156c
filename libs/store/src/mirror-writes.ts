// Read-your-writes for PrefixMirror without writers having to remember it: both Store
// implementations record every acknowledged write here, against the watched prefixes (those a
// mirror or a lastWrite caller registered) that contain the written key. A write costs one map
// lookup per distinct registered prefix length, whatever the number of keys or mirrors.

/** The newest revision this process wrote under one registered prefix. */
export interface WriteMark {
  revision: number;
}

interface Registry {
  marks: Map<string, WriteMark>;
  /** Distinct lengths of the registered prefixes, ascending. */
  lengths: number[];
}

// Per store object: a mirror waits for writes made through the same object.
const registries = new WeakMap<object, Registry>();

/** A write as the listeners of a store hear it: one key, or every key under a prefix. */
export type WriteNotice = { key: string; revision: number } | { prefix: string; revision: number };

// Who else must know of a store's writes: a worker thread's view of the store (port-store.ts),
// whose mirrors then wait for writes made here as this thread's do.
const listeners = new WeakMap<object, Set<(notice: WriteNotice) => void>>();

/** Calls `listener` after every write recorded for `store`; returns the function that stops it. */
export function onWrite(store: object, listener: (notice: WriteNotice) => void): () => void {
  let set = listeners.get(store);
  if (!set) listeners.set(store, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

/** The mark of `prefix` on `store`, registering the prefix on first use: later writes under it move it. */
export function writeMark(store: object, prefix: string): WriteMark {
  let registry = registries.get(store);
  if (!registry) registries.set(store, (registry = { marks: new Map(), lengths: [] }));
  let mark = registry.marks.get(prefix);
  if (!mark) {
    registry.marks.set(prefix, (mark = { revision: 0 }));
    if (!registry.lengths.includes(prefix.length)) {
      registry.lengths.push(prefix.length);
      registry.lengths.sort((a, b) => a - b);
    }
  }
  return mark;
}

/**
 * The newest revision this process wrote under `prefix` through `store` (0: none since the prefix
 * was registered; this call registers it). PrefixMirror.sync waits for it on its own.
 */
export function lastWrite(store: object, prefix: string): number {
  return writeMark(store, prefix).revision;
}

/**
 * Called by the stores after a write changed `key` at `revision` (only keys that really changed:
 * a delete of a missing key makes no event, and a mirror would wait for it in vain).
 */
export function recordWrite(store: object, key: string, revision: number): void {
  const heard = listeners.get(store);
  if (heard) for (const listener of heard) listener({ key, revision });
  const registry = registries.get(store);
  if (!registry) return;
  for (const length of registry.lengths) {
    if (length > key.length) break;
    const mark = registry.marks.get(key.slice(0, length));
    if (mark && revision > mark.revision) mark.revision = revision;
  }
}

/**
 * Called by the stores after deletePrefix(`prefix`) deleted keys at `revision`. Rare, so every
 * overlapping registered prefix is moved (one nested in `prefix` that lost no key waits for an
 * event that never comes, and re-lists once after the catch-up timeout).
 */
export function recordPrefixWrite(store: object, prefix: string, revision: number): void {
  const heard = listeners.get(store);
  if (heard) for (const listener of heard) listener({ prefix, revision });
  const registry = registries.get(store);
  if (!registry) return;
  for (const [watched, mark] of registry.marks) {
    const overlaps = watched.startsWith(prefix) || prefix.startsWith(watched);
    if (overlaps && revision > mark.revision) mark.revision = revision;
  }
}

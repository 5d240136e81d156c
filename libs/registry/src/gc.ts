// Online garbage collection: removes blob files and blob links no manifest references, while
// pushes go on. The protocol (docs/architecture.md "Garbage collection"):
//   mark  — note the store revision R and the time T, then collect every digest referenced by a
//           manifest record in any repository (the manifest itself, its config and layers, index
//           children, and a referrer's subject). Untagged manifests are roots too: DTR 2.5's GC
//           marks "from all manifests"; deleting a manifest is what frees its blobs.
//   sweep — for each unmarked digest (blob file, blob link or touch record), take the sweep lock
//           with a compare-and-swap that succeeds only if nobody touched the digest since the GC
//           read its touch record (which must predate R and T − grace). Under the lock: delete the
//           file, every link and the touch record, then release the lock.
// Writers touch digests (metadata.touchBlobs, refused while a lock exists) before they check or
// place a blob, so each writer is ordered either before the lock (the CAS fails, the blob stays)
// or after the sweep (its check sees no link: BLOB_UNKNOWN, and the client uploads again).
import type { KeyValue, Lease, Store } from '@orca/store';
import type { BlobStore } from './blob-store.js';
import { parseDigest } from './grammar.js';
import { parseManifest } from './manifest.js';
import { dtrKeys, type ManifestRecord } from './metadata.js';

export interface GcOptions {
  /** Blobs touched less than this long before the GC started are kept (an upload whose manifest
   *  has not arrived yet). */
  gracePeriodMs: number;
  log(line: string): void;
  /** Checked between steps; true stops the sweep early (what was swept stays swept). */
  canceled?(): boolean;
}

export interface GcResult {
  marked: number;
  candidates: number;
  swept: string[];
  kept: number;
  freedBytes: number;
}

/** Digests a manifest keeps alive: itself, its blobs, its children and its subject. */
export function manifestReferences(record: ManifestRecord, body: Buffer | undefined): string[] {
  const refs = [record.digest];
  if (record.configDigest) refs.push(record.configDigest);
  if (record.subject) refs.push(record.subject);
  if (body) {
    const parsed = parseManifest(record.mediaType, body);
    for (const d of [...parsed.blobs, ...parsed.children]) refs.push(d.digest);
    if (parsed.subject) refs.push(parsed.subject.digest);
  }
  return refs;
}

/** The mark set over every manifest; a manifest whose body is gone or unreadable still marks what
 *  its record names, and `onUnreadable` hears about it (never sweep on a guess). */
export function markReferenced(
  manifests: Iterable<{ record: ManifestRecord; body: Buffer | undefined }>,
  onUnreadable: (digest: string, reason: string) => void = () => undefined,
): Set<string> {
  const marked = new Set<string>();
  for (const { record, body } of manifests) {
    let refs: string[];
    try {
      refs = manifestReferences(record, body);
      if (!body) onUnreadable(record.digest, 'manifest body missing');
    } catch (error) {
      onUnreadable(record.digest, (error as Error).message);
      refs = manifestReferences(record, undefined);
    }
    for (const r of refs) marked.add(r);
  }
  return marked;
}

const SWEEP_LEASE_SECONDS = 30;

export async function runGarbageCollection(
  store: Store,
  blobs: BlobStore,
  options: GcOptions,
): Promise<GcResult> {
  const { log } = options;
  // R: any touch at or after this revision is newer than the mark.
  const startRevision = (await store.range(dtrKeys.settings(), { limit: 1 })).revision;
  const startedAt = Date.now();
  log(`gc: mark started at store revision ${startRevision}, grace ${options.gracePeriodMs} ms`);

  const manifestRows = (await store.range(dtrKeys.allManifests())).kvs;
  const manifests: { record: ManifestRecord; body: Buffer | undefined }[] = [];
  for (const kv of manifestRows) {
    const record = JSON.parse(kv.value) as ManifestRecord;
    const digest = parseDigest(record.digest);
    manifests.push({ record, body: digest ? await blobs.readSmall(digest) : undefined });
  }
  const marked = markReferenced(manifests, (digest, reason) =>
    log(`gc: manifest ${digest} unreadable (${reason}); keeping what its record names`),
  );
  log(`gc: marked ${marked.size} digests from ${manifests.length} manifests`);

  // Links and touches collected after R include every one written before R.
  const linksByDigest = new Map<string, string[]>();
  const linkPrefix = dtrKeys.allBlobLinks();
  for (const kv of (await store.range(linkPrefix, { keysOnly: true })).kvs) {
    const rest = kv.key.slice(linkPrefix.length);
    const digest = rest.slice(rest.lastIndexOf('/') + 1);
    linksByDigest.set(digest, [...(linksByDigest.get(digest) ?? []), kv.key]);
  }
  const touchPrefix = dtrKeys.blobTouches();
  const touches = new Map<string, KeyValue>();
  for (const kv of (await store.range(touchPrefix)).kvs) touches.set(kv.key.slice(touchPrefix.length), kv);
  const files = new Set<string>();
  for await (const digest of blobs.list()) files.add(digest);

  const candidates = [...new Set([...files, ...linksByDigest.keys(), ...touches.keys()])].filter(
    (d) => !marked.has(d),
  );
  log(`gc: ${candidates.length} unreferenced candidates`);
  const result: GcResult = {
    marked: marked.size,
    candidates: candidates.length,
    swept: [],
    kept: 0,
    freedBytes: 0,
  };
  if (candidates.length === 0) return result;

  // The sweep locks live on a lease: if this replica dies mid-sweep, writers are not blocked long.
  const lease: Lease = await store.grantLease(SWEEP_LEASE_SECONDS);
  try {
    for (const digestString of candidates) {
      if (options.canceled?.()) {
        log('gc: canceled');
        break;
      }
      const touch = touches.get(digestString);
      if (touch) {
        const touchedAt = (JSON.parse(touch.value) as { touchedAt?: number }).touchedAt ?? 0;
        if (touch.modRevision >= startRevision || touchedAt > startedAt - options.gracePeriodMs) {
          result.kept++;
          continue;
        }
      }
      const lockKey = dtrKeys.blobSweep(digestString);
      const touchKey = dtrKeys.blobTouch(digestString);
      const locked = await store.txn(
        [
          touch
            ? { key: touchKey, target: 'modRevision', op: '=', value: touch.modRevision }
            : { key: touchKey, target: 'createRevision', op: '=', value: 0 },
          { key: lockKey, target: 'createRevision', op: '=', value: 0 },
        ],
        [{ type: 'put', key: lockKey, value: JSON.stringify({ since: Date.now() }), lease }],
      );
      if (!locked.succeeded) {
        result.kept++;
        continue;
      }
      try {
        const digest = parseDigest(digestString);
        if (digest) {
          const stat = await blobs.stat(digest);
          if (stat) result.freedBytes += stat.size;
          await blobs.delete(digest);
        }
        await store.txn(
          [],
          [...(linksByDigest.get(digestString) ?? []), touchKey].map((key) => ({ type: 'delete', key })),
        );
      } finally {
        await store.delete(lockKey);
      }
      result.swept.push(digestString);
      log(`gc: swept ${digestString}`);
    }
  } finally {
    await lease.revoke().catch(() => undefined);
  }
  log(
    `gc: done: swept ${result.swept.length}, kept ${result.kept} recently touched, freed ${result.freedBytes} bytes`,
  );
  return result;
}

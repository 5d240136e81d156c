// Repository, tag, manifest and upload metadata, all in the store so several DTR replicas can
// serve the same registry (layout in docs/architecture.md). Key segments come only from names,
// tags and digests that passed the grammars in grammar.ts.
import type { Compare, Store, TxnOp } from '@orca/store';
import { randomUUID } from 'node:crypto';
import type { RepositoryName } from './grammar.js';

const ROOT = '/orca/v1/dtr/';
export const dtrKeys = {
  repo: (r: RepositoryName) => `${ROOT}repos/${r.full}`,
  repos: () => `${ROOT}repos/`,
  reposIn: (namespace: string) => `${ROOT}repos/${namespace}/`,
  blob: (r: RepositoryName, digest: string) => `${ROOT}blobs/${r.full}/${digest}`,
  blobs: (r: RepositoryName) => `${ROOT}blobs/${r.full}/`,
  manifest: (r: RepositoryName, digest: string) => `${ROOT}manifests/${r.full}/${digest}`,
  manifests: (r: RepositoryName) => `${ROOT}manifests/${r.full}/`,
  tag: (r: RepositoryName, tag: string) => `${ROOT}tags/${r.full}/${tag}`,
  tags: (r: RepositoryName) => `${ROOT}tags/${r.full}/`,
  referrer: (r: RepositoryName, subject: string, digest: string) =>
    `${ROOT}referrers/${r.full}/${subject}/${digest}`,
  referrers: (r: RepositoryName, subject?: string) =>
    subject ? `${ROOT}referrers/${r.full}/${subject}/` : `${ROOT}referrers/${r.full}/`,
  teamAccess: (r: RepositoryName, teamId: string) => `${ROOT}teamaccess/${r.full}/${teamId}`,
  teamAccessAll: (r: RepositoryName) => `${ROOT}teamaccess/${r.full}/`,
  namespaceTeamAccess: (namespace: string, teamId: string) => `${ROOT}nsteamaccess/${namespace}/${teamId}`,
  namespaceTeamAccessAll: (namespace: string) => `${ROOT}nsteamaccess/${namespace}/`,
  settings: () => `${ROOT}settings`,
  signingKey: (kid: string) => `${ROOT}signingkeys/${kid}`,
  signingKeys: () => `${ROOT}signingkeys/`,
  /** Last time any repository referenced a digest (GC safety; docs/architecture.md "Garbage collection"). */
  blobTouch: (digest: string) => `${ROOT}blobtouch/${digest}`,
  blobTouches: () => `${ROOT}blobtouch/`,
  /** Present while a GC sweeps the digest; writers wait for it to go before touching. */
  blobSweep: (digest: string) => `${ROOT}blobsweep/${digest}`,
  allBlobLinks: () => `${ROOT}blobs/`,
  allManifests: () => `${ROOT}manifests/`,
};

/** A digest stayed under a GC sweep lock for longer than a writer waits. */
export class BlobSweepingError extends Error {
  constructor(readonly digest: string) {
    super(`blob ${digest} is being garbage collected`);
    this.name = 'BlobSweepingError';
  }
}

/** What touchBlobs wrote. */
export interface TouchGuard {
  digests: string[];
  /** The touch records' create revisions: a sweep deletes the record, so a later one differs. */
  createRevisions: number[];
}

const SWEEP_WAIT_MS = 15_000;
const SWEEP_POLL_MS = 20;

export type Visibility = 'public' | 'private';
export type AccessLevel = 'read-only' | 'read-write' | 'admin';
export const ACCESS_LEVELS: readonly AccessLevel[] = ['read-only', 'read-write', 'admin'];

export interface RepositoryRecord {
  id: string;
  namespace: string;
  namespaceType: 'user' | 'organization';
  name: string;
  shortDescription: string;
  longDescription: string;
  visibility: Visibility;
  scanOnPush: boolean;
  immutableTags: boolean;
  enableManifestLists: boolean;
  pulls: number;
  pushes: number;
  createdAt: string;
}

/** The Repository shape of the DTR API (responses.Repository). */
export function repositoryView(r: RepositoryRecord) {
  return {
    id: r.id,
    namespace: r.namespace,
    namespaceType: r.namespaceType,
    name: r.name,
    shortDescription: r.shortDescription,
    longDescription: r.longDescription,
    visibility: r.visibility,
    scanOnPush: r.scanOnPush,
    immutableTags: r.immutableTags,
    enableManifestLists: r.enableManifestLists,
    pulls: r.pulls,
    pushes: r.pushes,
  };
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What the store keeps of a manifest: small, bounded fields only (etcd values stay far below its
 *  request limit); annotations and the body itself are read from the BlobStore when needed. */
export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  createdAt: string;
  /** Digest of the manifest this one refers to (OCI `subject`). */
  subject?: string;
  artifactType?: string;
  configMediaType?: string;
  configDigest?: string;
  author?: string;
}

export interface TagRecord {
  digest: string;
  /** Who pushed it last (account name; empty when unknown). */
  author?: string;
  createdAt: string;
  updatedAt: string;
}

export interface TeamAccessRecord {
  teamId: string;
  teamName: string;
  orgName: string;
  accessLevel: AccessLevel;
}

export interface DtrSettings {
  createRepositoryOnPush: boolean;
}

/** DTR 2.5 accepts pushes only to repositories that exist unless an admin turns this on. */
export const DEFAULT_SETTINGS: DtrSettings = { createRepositoryOnPush: false };

export class RegistryMetadata {
  constructor(private readonly store: Store) {}

  private async json<T>(key: string): Promise<T | undefined> {
    const kv = await this.store.get(key);
    return kv ? (JSON.parse(kv.value) as T) : undefined;
  }

  private async values<T>(prefix: string): Promise<{ key: string; value: T }[]> {
    const { kvs } = await this.store.range(prefix);
    return kvs.map((kv) => ({ key: kv.key.slice(prefix.length), value: JSON.parse(kv.value) as T }));
  }

  // ---- settings ----

  async settings(): Promise<DtrSettings> {
    return { ...DEFAULT_SETTINGS, ...(await this.json<Partial<DtrSettings>>(dtrKeys.settings())) };
  }

  async updateSettings(patch: Partial<DtrSettings>): Promise<DtrSettings> {
    const next = { ...(await this.settings()), ...patch };
    await this.store.put(dtrKeys.settings(), JSON.stringify(next));
    return next;
  }

  // ---- repositories ----

  repository(name: RepositoryName): Promise<RepositoryRecord | undefined> {
    return this.json<RepositoryRecord>(dtrKeys.repo(name));
  }

  /** Creates the repository unless it exists; returns the stored record and whether this call made it. */
  async createRepository(
    name: RepositoryName,
    fields: Partial<RepositoryRecord> & { namespaceType: RepositoryRecord['namespaceType'] },
  ): Promise<{ created: boolean; record: RepositoryRecord }> {
    const record: RepositoryRecord = {
      id: randomUUID(),
      namespace: name.namespace,
      name: name.repository,
      shortDescription: '',
      longDescription: '',
      visibility: 'private',
      scanOnPush: false,
      immutableTags: false,
      enableManifestLists: false,
      pulls: 0,
      pushes: 0,
      createdAt: new Date().toISOString(),
      ...fields,
    };
    const key = dtrKeys.repo(name);
    const result = await this.store.txn(
      [{ key, target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key, value: JSON.stringify(record) }],
      [{ type: 'get', key }],
    );
    if (result.succeeded) return { created: true, record };
    return { created: false, record: JSON.parse(result.results[0]!.value) as RepositoryRecord };
  }

  async updateRepository(
    name: RepositoryName,
    patch: Partial<RepositoryRecord>,
  ): Promise<RepositoryRecord | undefined> {
    for (;;) {
      const kv = await this.store.get(dtrKeys.repo(name));
      if (!kv) return undefined;
      const next = { ...(JSON.parse(kv.value) as RepositoryRecord), ...patch };
      const result = await this.store.txn(
        [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: kv.key, value: JSON.stringify(next) }],
      );
      if (result.succeeded) return next;
    }
  }

  async listRepositories(namespace?: string): Promise<RepositoryRecord[]> {
    const rows = await this.values<RepositoryRecord>(
      namespace ? dtrKeys.reposIn(namespace) : dtrKeys.repos(),
    );
    return rows.map((r) => r.value);
  }

  /** Removes a repository with its tags, manifests, blob links, referrers and team access. */
  async deleteRepository(name: RepositoryName): Promise<void> {
    for (const prefix of [
      dtrKeys.tags(name),
      dtrKeys.manifests(name),
      dtrKeys.blobs(name),
      dtrKeys.referrers(name),
      dtrKeys.teamAccessAll(name),
    ])
      await this.store.deletePrefix(prefix);
    await this.store.delete(dtrKeys.repo(name));
  }

  // ---- GC safety: touch before relying on a blob ----

  /**
   * Records that `digests` are referenced now, unless a GC holds the sweep lock on one of them,
   * in which case this waits for the sweep to end. Callers touch before they check that a blob
   * exists (or place it), so a GC either sees the touch and keeps the blob, or finished deleting
   * it before the caller's check.
   */
  async touchBlobs(digests: readonly string[]): Promise<TouchGuard> {
    const unique = [...new Set(digests)];
    if (unique.length === 0) return { digests: [], createRevisions: [] };
    const value = JSON.stringify({ touchedAt: Date.now() });
    const deadline = Date.now() + SWEEP_WAIT_MS;
    for (;;) {
      const result = await this.store.txn(
        unique.map((d): Compare => ({
          key: dtrKeys.blobSweep(d),
          target: 'createRevision',
          op: '=',
          value: 0,
        })),
        [
          ...unique.map((d): TxnOp => ({ type: 'put', key: dtrKeys.blobTouch(d), value })),
          ...unique.map((d): TxnOp => ({ type: 'get', key: dtrKeys.blobTouch(d) })),
        ],
      );
      if (result.succeeded)
        return {
          digests: unique,
          createRevisions: result.results.slice(unique.length).map((kv) => kv?.createRevision ?? 0),
        };
      if (Date.now() > deadline) throw new BlobSweepingError(unique.join(','));
      await new Promise((resolve) => setTimeout(resolve, SWEEP_POLL_MS));
    }
  }

  /** Compares that hold while no GC swept the guard's digests since touchBlobs (the touch record
   *  is the same one, not deleted and recreated; other writers' touches are fine; no lock), plus a
   *  re-touch written with the caller's commit (so a GC that marked before the commit keeps them). */
  private guardOps(guard: TouchGuard | undefined): { compares: Compare[]; ops: TxnOp[] } {
    if (!guard || guard.digests.length === 0) return { compares: [], ops: [] };
    const value = JSON.stringify({ touchedAt: Date.now() });
    return {
      compares: guard.digests.flatMap((d, i): Compare[] => [
        {
          key: dtrKeys.blobTouch(d),
          target: 'createRevision',
          op: '=',
          value: guard.createRevisions[i] ?? 0,
        },
        { key: dtrKeys.blobSweep(d), target: 'createRevision', op: '=', value: 0 },
      ]),
      ops: guard.digests.map((d): TxnOp => ({ type: 'put', key: dtrKeys.blobTouch(d), value })),
    };
  }

  // ---- blobs linked into a repository ----

  async blobLink(name: RepositoryName, digest: string): Promise<{ size: number } | undefined> {
    return this.json<{ size: number }>(dtrKeys.blob(name, digest));
  }

  /** Links a blob; with a guard, only if no GC swept it since the touch (false otherwise). */
  async linkBlob(name: RepositoryName, digest: string, size: number, guard?: TouchGuard): Promise<boolean> {
    const { compares, ops } = this.guardOps(guard);
    const result = await this.store.txn(compares, [
      { type: 'put', key: dtrKeys.blob(name, digest), value: JSON.stringify({ size }) },
      ...ops,
    ]);
    return result.succeeded;
  }

  async unlinkBlob(name: RepositoryName, digest: string): Promise<boolean> {
    return (await this.store.delete(dtrKeys.blob(name, digest))).deleted > 0;
  }

  // ---- manifests and tags ----

  manifest(name: RepositoryName, digest: string): Promise<ManifestRecord | undefined> {
    return this.json<ManifestRecord>(dtrKeys.manifest(name, digest));
  }

  tag(name: RepositoryName, tag: string): Promise<TagRecord | undefined> {
    return this.json<TagRecord>(dtrKeys.tag(name, tag));
  }

  /** Records a manifest (and its tag and referrer entry) in one transaction; with a guard, only if
   *  no GC swept a referenced digest since the touch (false otherwise). */
  async putManifest(
    name: RepositoryName,
    record: ManifestRecord,
    tag?: string,
    guard?: TouchGuard,
  ): Promise<boolean> {
    const now = new Date().toISOString();
    const ops: TxnOp[] = [
      { type: 'put', key: dtrKeys.manifest(name, record.digest), value: JSON.stringify(record) },
    ];
    if (tag) {
      const existing = await this.tag(name, tag);
      const value: TagRecord = {
        digest: record.digest,
        author: record.author,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      ops.push({ type: 'put', key: dtrKeys.tag(name, tag), value: JSON.stringify(value) });
    }
    if (record.subject) {
      const descriptor: Descriptor = {
        mediaType: record.mediaType,
        digest: record.digest,
        size: record.size,
        ...(record.artifactType ? { artifactType: record.artifactType } : {}),
      };
      ops.push({
        type: 'put',
        key: dtrKeys.referrer(name, record.subject, record.digest),
        value: JSON.stringify(descriptor),
      });
    }
    const guarded = this.guardOps(guard);
    return (await this.store.txn(guarded.compares, [...ops, ...guarded.ops])).succeeded;
  }

  async tags(
    name: RepositoryName,
    after?: string,
    limit?: number,
  ): Promise<{ tags: string[]; more: boolean }> {
    const prefix = dtrKeys.tags(name);
    // startKey is inclusive: start just past `after` by appending the lowest code point.
    const { kvs, more } = await this.store.range(prefix, {
      keysOnly: true,
      startKey: after !== undefined ? `${prefix}${after}\u0000` : undefined,
      limit,
    });
    return { tags: kvs.map((kv) => kv.key.slice(prefix.length)), more };
  }

  async tagsOf(name: RepositoryName): Promise<{ tag: string; record: TagRecord }[]> {
    return (await this.values<TagRecord>(dtrKeys.tags(name))).map((r) => ({ tag: r.key, record: r.value }));
  }

  async deleteTag(name: RepositoryName, tag: string): Promise<boolean> {
    return (await this.store.delete(dtrKeys.tag(name, tag))).deleted > 0;
  }

  /** Removes a manifest, every tag pointing at it and its referrer entry. */
  async deleteManifest(name: RepositoryName, digest: string): Promise<boolean> {
    const record = await this.manifest(name, digest);
    if (!record) return false;
    const ops: TxnOp[] = [{ type: 'delete', key: dtrKeys.manifest(name, digest) }];
    for (const { tag, record: t } of await this.tagsOf(name))
      if (t.digest === digest) ops.push({ type: 'delete', key: dtrKeys.tag(name, tag) });
    if (record.subject) ops.push({ type: 'delete', key: dtrKeys.referrer(name, record.subject, digest) });
    await this.store.txn([], ops);
    return true;
  }

  async manifestsOf(name: RepositoryName): Promise<ManifestRecord[]> {
    return (await this.values<ManifestRecord>(dtrKeys.manifests(name))).map((r) => r.value);
  }

  async referrers(name: RepositoryName, subject: string): Promise<Descriptor[]> {
    return (await this.values<Descriptor>(dtrKeys.referrers(name, subject))).map((r) => r.value);
  }

  // ---- upload sessions ----

  // ---- team access ----

  async teamAccess(name: RepositoryName): Promise<TeamAccessRecord[]> {
    return (await this.values<TeamAccessRecord>(dtrKeys.teamAccessAll(name))).map((r) => r.value);
  }

  async setTeamAccess(name: RepositoryName, record: TeamAccessRecord): Promise<void> {
    await this.store.put(dtrKeys.teamAccess(name, record.teamId), JSON.stringify(record));
  }

  async removeTeamAccess(name: RepositoryName, teamId: string): Promise<boolean> {
    return (await this.store.delete(dtrKeys.teamAccess(name, teamId))).deleted > 0;
  }

  async namespaceTeamAccess(namespace: string): Promise<TeamAccessRecord[]> {
    return (await this.values<TeamAccessRecord>(dtrKeys.namespaceTeamAccessAll(namespace))).map(
      (r) => r.value,
    );
  }

  async setNamespaceTeamAccess(namespace: string, record: TeamAccessRecord): Promise<void> {
    await this.store.put(dtrKeys.namespaceTeamAccess(namespace, record.teamId), JSON.stringify(record));
  }

  async removeNamespaceTeamAccess(namespace: string, teamId: string): Promise<boolean> {
    return (await this.store.delete(dtrKeys.namespaceTeamAccess(namespace, teamId))).deleted > 0;
  }
}

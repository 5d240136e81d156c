// Repository, tag, manifest and upload metadata, all in the store so several DTR replicas can
// serve the same registry (layout in docs/architecture.md). Key segments come only from names,
// tags and digests that passed the grammars in grammar.ts.
import type { Store, TxnOp } from '@orca/store';
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
  upload: (id: string) => `${ROOT}uploads/${id}`,
  teamAccess: (r: RepositoryName, teamId: string) => `${ROOT}teamaccess/${r.full}/${teamId}`,
  teamAccessAll: (r: RepositoryName) => `${ROOT}teamaccess/${r.full}/`,
  namespaceTeamAccess: (namespace: string, teamId: string) => `${ROOT}nsteamaccess/${namespace}/${teamId}`,
  namespaceTeamAccessAll: (namespace: string) => `${ROOT}nsteamaccess/${namespace}/`,
  settings: () => `${ROOT}settings`,
  signingKey: (kid: string) => `${ROOT}signingkeys/${kid}`,
  signingKeys: () => `${ROOT}signingkeys/`,
};

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

export interface UploadRecord {
  id: string;
  /** The repository the session was started in: it may be used from that repository only. */
  repository: string;
  createdAt: string;
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

  // ---- blobs linked into a repository ----

  async blobLink(name: RepositoryName, digest: string): Promise<{ size: number } | undefined> {
    return this.json<{ size: number }>(dtrKeys.blob(name, digest));
  }

  async linkBlob(name: RepositoryName, digest: string, size: number): Promise<void> {
    await this.store.put(dtrKeys.blob(name, digest), JSON.stringify({ size }));
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

  /** Records a manifest (and its tag and referrer entry) in one transaction. */
  async putManifest(name: RepositoryName, record: ManifestRecord, tag?: string): Promise<void> {
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
    await this.store.txn([], ops);
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

  async createUpload(name: RepositoryName, id: string): Promise<UploadRecord> {
    const record: UploadRecord = { id, repository: name.full, createdAt: new Date().toISOString() };
    await this.store.put(dtrKeys.upload(id), JSON.stringify(record));
    return record;
  }

  upload(id: string): Promise<UploadRecord | undefined> {
    return this.json<UploadRecord>(dtrKeys.upload(id));
  }

  /** Links a finished upload's blob and ends the session in one write. */
  async completeUpload(name: RepositoryName, id: string, digest: string, size: number): Promise<void> {
    await this.store.txn(
      [],
      [
        { type: 'put', key: dtrKeys.blob(name, digest), value: JSON.stringify({ size }) },
        { type: 'delete', key: dtrKeys.upload(id) },
      ],
    );
  }

  async deleteUpload(id: string): Promise<void> {
    await this.store.delete(dtrKeys.upload(id));
  }

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

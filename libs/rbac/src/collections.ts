// Collections: the built-ins (in code) and stored ones at /orca/v1/rbac/collections/<id> with a
// path index, so a path is taken once. Children are found by their last parent id.
import { ApiError } from '@orca/api';
import type { Store, TxnOp, Compare } from '@orca/store';
import { randomUUID } from 'node:crypto';
import { bad, checkId, conflict, isObject, notFound, rbacKeys } from './keys.js';

export interface LabelConstraint {
  type: string;
  label_key: string;
  label_value: string;
  equality: boolean;
}

/** authz.Collection as served. */
export interface Collection {
  name: string;
  path: string;
  id: string;
  parent_ids: string[];
  label_constraints: LabelConstraint[];
  legacylabelkey: string;
  legacylabelvalue: string;
  created_at: string;
  updated_at: string;
}

/** Stored form: the wire fields plus, for private collections, whose they are. */
export interface CollectionRecord extends Collection {
  owner?: string;
}

const EPOCH = '2018-04-17T00:00:00Z';
const builtin = (id: string, name: string, path: string, parent_ids: string[]): Collection => ({
  name,
  path,
  id,
  parent_ids,
  label_constraints: [],
  legacylabelkey: '',
  legacylabelvalue: '',
  created_at: EPOCH,
  updated_at: EPOCH,
});

// Ids `swarm`, `shared`, `system` are the ones clients use; `private` and `legacy` are orca's
// choice (UCP's ids for those two were not found).
export const BUILTIN_COLLECTIONS: readonly Collection[] = [
  builtin('swarm', 'swarm', '/', []),
  builtin('system', 'System', '/System', ['swarm']),
  builtin('shared', 'Shared', '/Shared', ['swarm']),
  builtin('private', 'Private', '/Shared/Private', ['swarm', 'shared']),
  builtin('legacy', 'Legacy', '/Shared/Legacy', ['swarm', 'shared']),
];

export function toWire(c: CollectionRecord): Collection {
  const { owner: _owner, ...wire } = c;
  return wire;
}

export async function listCollections(store: Store): Promise<CollectionRecord[]> {
  const { kvs } = await store.range(rbacKeys.collections);
  return [...BUILTIN_COLLECTIONS, ...kvs.map((kv) => JSON.parse(kv.value) as CollectionRecord)];
}

export async function findCollection(store: Store, id: string): Promise<CollectionRecord | undefined> {
  const b = BUILTIN_COLLECTIONS.find((c) => c.id === id);
  if (b) return b;
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return undefined;
  const kv = await store.get(rbacKeys.collection(id));
  return kv ? (JSON.parse(kv.value) as CollectionRecord) : undefined;
}

export async function getCollection(store: Store, id: string): Promise<CollectionRecord> {
  const c = await findCollection(store, id);
  if (!c) throw notFound(`collection "${id}" not found`);
  return c;
}

export function normalizePath(raw: unknown): string {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.length > 1024) {
    throw bad('path must be an absolute collection path such as /Shared');
  }
  const trimmed = raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
  return trimmed === '' ? '/' : trimmed;
}

export async function findCollectionByPath(
  store: Store,
  rawPath: unknown,
): Promise<CollectionRecord | undefined> {
  const path = normalizePath(rawPath);
  const b = BUILTIN_COLLECTIONS.find((c) => c.path === path);
  if (b) return b;
  const kv = await store.get(rbacKeys.collectionPath(path));
  return kv ? findCollection(store, kv.value) : undefined;
}

/** Is `path` the collection at `ancestor` or inside it? */
export function covers(ancestor: string, path: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
}

/** Paging over id order: `start` is the first id to return (inclusive), as eNZi pages. */
export function page<T extends { id: string }>(items: T[], start: unknown, limit: number): T[] {
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const from = typeof start === 'string' && start !== '' ? sorted.findIndex((c) => c.id >= start) : 0;
  return from < 0 ? [] : sorted.slice(from, from + limit);
}

const NAME = /^[^/\s][^/]{0,99}$/;

function parseConstraints(raw: unknown): LabelConstraint[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 100) throw bad('label_constraints must be an array');
  return raw.map((c: unknown) => {
    if (
      !isObject(c) ||
      typeof c.label_key !== 'string' ||
      !c.label_key ||
      (c.label_value !== undefined && typeof c.label_value !== 'string') ||
      (c.type !== undefined && typeof c.type !== 'string') ||
      (c.equality !== undefined && typeof c.equality !== 'boolean')
    ) {
      throw bad(
        'each label constraint needs label_key (string), label_value (string), type (string), equality (boolean)',
      );
    }
    return {
      type: (c.type as string | undefined) ?? 'node',
      label_key: c.label_key,
      label_value: (c.label_value as string | undefined) ?? '',
      equality: (c.equality as boolean | undefined) ?? true,
    };
  });
}

function optionalString(value: unknown, name: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string' || value.length > 256) throw bad(`${name} must be a string`);
  return value;
}

/**
 * Creates a collection. Accepts authz.CollectionCreate and the partial bodies real clients send:
 * `{name, parent_id}` and `{name, path, parent_id}` (where path is the parent's, e.g. "/").
 */
export async function createCollection(store: Store, body: unknown): Promise<CollectionRecord> {
  if (!isObject(body)) throw bad('the request body must be a JSON object');
  if (typeof body.name !== 'string' || !NAME.test(body.name) || body.name === '.' || body.name === '..') {
    throw bad('name must be a non-empty string without "/" of at most 100 characters');
  }
  let parent: CollectionRecord | undefined;
  if (body.parent_id !== undefined && body.parent_id !== '') {
    parent = await getCollection(store, checkId(body.parent_id, 'parent_id'));
  } else if (body.path !== undefined) {
    parent = await findCollectionByPath(store, body.path);
    if (!parent) throw notFound(`collection path "${String(body.path)}" not found`);
  } else {
    throw bad('parent_id is required');
  }
  return insertCollection(store, parent, body.name, {
    label_constraints: parseConstraints(body.label_constraints),
    legacylabelkey: optionalString(body.legacy_label_key, 'legacy_label_key'),
    legacylabelvalue: optionalString(body.legacy_label_value, 'legacy_label_value'),
  });
}

async function insertCollection(
  store: Store,
  parent: CollectionRecord,
  name: string,
  extra: Pick<Collection, 'label_constraints' | 'legacylabelkey' | 'legacylabelvalue'> & { owner?: string },
): Promise<CollectionRecord> {
  const path = parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
  if (BUILTIN_COLLECTIONS.some((c) => c.path === path)) throw conflict(`collection "${path}" already exists`);
  const now = new Date().toISOString();
  const record: CollectionRecord = {
    name,
    path,
    id: randomUUID(),
    parent_ids: [...parent.parent_ids, parent.id],
    ...extra,
    created_at: now,
    updated_at: now,
  };
  const compares: Compare[] = [
    { key: rbacKeys.collectionPath(path), target: 'createRevision', op: '=', value: 0 },
  ];
  const ops: TxnOp[] = [
    { type: 'put', key: rbacKeys.collectionPath(path), value: record.id },
    { type: 'put', key: rbacKeys.collection(record.id), value: JSON.stringify(record) },
  ];
  const touch = await touchOps(store, parent.id);
  if (!touch) throw notFound(`collection "${parent.id}" not found`);
  const result = await store.txn([...compares, ...touch.compares], [...ops, ...touch.ops]);
  if (!result.succeeded) {
    if (await store.get(rbacKeys.collectionPath(path))) throw conflict(`collection "${path}" already exists`);
    throw conflict(`collection "${parent.path}" changed meanwhile: try again`);
  }
  return record;
}

/**
 * A compare-and-rewrite of a stored collection, so that a concurrent delete of it fails (used when
 * adding children or grants). Built-ins are never deleted: nothing to guard. Undefined when gone.
 */
export async function touchOps(
  store: Store,
  id: string,
): Promise<{ compares: Compare[]; ops: TxnOp[] } | undefined> {
  if (BUILTIN_COLLECTIONS.some((c) => c.id === id)) return { compares: [], ops: [] };
  const key = rbacKeys.collection(id);
  const kv = await store.get(key);
  if (!kv) return undefined;
  return {
    compares: [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
    ops: [{ type: 'put', key, value: kv.value }],
  };
}

export function childrenOf(all: CollectionRecord[], id: string): CollectionRecord[] {
  return all.filter((c) => c.parent_ids[c.parent_ids.length - 1] === id);
}

/** Deletes an empty collection and the grants on it. */
export async function deleteCollection(store: Store, id: string): Promise<void> {
  const c = await getCollection(store, id);
  if (BUILTIN_COLLECTIONS.some((b) => b.id === c.id)) {
    throw new ApiError(403, 'FORBIDDEN', `"${c.path}" is a built-in collection and cannot be deleted`);
  }
  if (childrenOf(await listCollections(store), c.id).length > 0) {
    throw conflict(`collection "${c.path}" has child collections: delete them first`);
  }
  const key = rbacKeys.collection(c.id);
  const kv = await store.get(key);
  if (!kv) throw notFound(`collection "${id}" not found`);
  const { kvs } = await store.range(rbacKeys.grants);
  const grantKeys = kvs
    .filter((g) => (JSON.parse(g.value) as { objectID: string }).objectID === c.id)
    .map((g) => g.key);
  const result = await store.txn(
    [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
    [
      { type: 'delete', key },
      { type: 'delete', key: rbacKeys.collectionPath(c.path) },
      ...grantKeys.map((k): TxnOp => ({ type: 'delete', key: k })),
    ],
  );
  if (!result.succeeded) throw conflict(`collection "${c.path}" changed while deleting it: try again`);
}

/** PATCH /collections/{id}: only label_constraints change (authz.CollectionUpdate). */
export async function updateCollection(store: Store, id: string, body: unknown): Promise<CollectionRecord> {
  if (!isObject(body)) throw bad('the request body must be a JSON object');
  if (!Array.isArray(body.label_constraints)) throw bad('label_constraints (array) is required');
  const c = await getCollection(store, id);
  if (BUILTIN_COLLECTIONS.some((b) => b.id === c.id)) {
    throw new ApiError(403, 'FORBIDDEN', `"${c.path}" is a built-in collection and cannot be changed`);
  }
  const label_constraints = parseConstraints(body.label_constraints);
  const key = rbacKeys.collection(c.id);
  const kv = await store.get(key);
  if (!kv) throw notFound(`collection "${id}" not found`);
  const updated: CollectionRecord = { ...c, label_constraints, updated_at: new Date().toISOString() };
  const result = await store.txn(
    [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
    [{ type: 'put', key, value: JSON.stringify(updated) }],
  );
  if (!result.succeeded) throw conflict(`collection "${c.path}" changed meanwhile: try again`);
  return updated;
}

/** The private collection /Shared/Private/<user>, created when missing (idempotent). */
export async function ensurePrivateCollection(store: Store, userName: string): Promise<CollectionRecord> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(userName)) throw bad('malformed user name');
  const path = `/Shared/Private/${userName}`;
  const existing = await findCollectionByPath(store, path);
  if (existing) return existing;
  const parent = BUILTIN_COLLECTIONS.find((c) => c.id === 'private') as Collection;
  try {
    return await insertCollection(store, parent, userName, {
      label_constraints: [],
      legacylabelkey: '',
      legacylabelvalue: '',
      owner: userName,
    });
  } catch (error) {
    // Someone else created it first.
    const raced = await findCollectionByPath(store, path);
    if (raced) return raced;
    throw error;
  }
}

/** The labels UCP puts on a resource in a collection (ucp-api.md §2.3). */
export function collectionLabels(collection: Collection): Record<string, string> {
  const labels: Record<string, string> = {
    'com.docker.ucp.access.label': collection.path,
    'com.docker.ucp.collection': collection.id,
    'com.docker.ucp.collection.root': 'true',
  };
  for (const id of [...collection.parent_ids, collection.id])
    labels[`com.docker.ucp.collection.${id}`] = 'true';
  return labels;
}

/** Default collections: PUT/GET/DELETE /defaultCollection/{userID}. */
export async function setDefaultCollection(store: Store, userId: string, body: unknown): Promise<void> {
  if (!isObject(body)) throw bad('the request body must be a JSON object');
  const c = await getCollection(store, checkId(body.id, 'collection id'));
  await store.put(rbacKeys.defaultCollection(userId), JSON.stringify({ id: c.id }));
}

/** The user's default collection; unset, their private collection (by name) or /Shared. */
export async function getDefaultCollection(
  store: Store,
  userId: string,
  userName?: string,
): Promise<CollectionRecord> {
  const kv = await store.get(rbacKeys.defaultCollection(userId));
  if (kv) {
    const c = await findCollection(store, (JSON.parse(kv.value) as { id: string }).id);
    if (c) return c;
  }
  if (userName) {
    const own = await findCollectionByPath(store, `/Shared/Private/${userName}`);
    if (own) return own;
  }
  return BUILTIN_COLLECTIONS.find((c) => c.id === 'shared') as Collection;
}

export async function deleteDefaultCollection(store: Store, userId: string): Promise<void> {
  await store.delete(rbacKeys.defaultCollection(userId));
}

// Grants: subject + role + resource set, at /orca/v1/rbac/grants/<subject>/<object>/<role>.
// Writing a grant rewrites its (stored) role and collection in the same transaction, so a
// concurrent delete of either sees the change and fails instead of leaving a dangling grant.
import type { Compare, Store, TxnOp } from '@orca/store';
import { findCollection, touchOps } from './collections.js';
import { bad, checkId, notFound, rbacKeys } from './keys.js';
import { getRole } from './roles.js';

export type GrantType = 'collection' | 'namespace' | 'grantobject';

export interface GrantRecord {
  subjectID: string;
  objectID: string;
  roleID: string;
  type: GrantType;
}

/** The all-namespaces object of `type=grantobject` grants. */
export const ALL_NAMESPACES = 'kubernetesnamespaces';

export function parseGrantType(raw: unknown): GrantType {
  if (raw === undefined || raw === '') return 'collection';
  if (raw === 'collection' || raw === 'namespace' || raw === 'grantobject') return raw;
  throw bad('type must be collection, namespace or grantobject');
}

export async function putGrant(
  store: Store,
  subjectID: string,
  objectID: string,
  roleID: string,
  type: GrantType = 'collection',
): Promise<GrantRecord> {
  checkId(subjectID, 'subject id');
  checkId(objectID, 'object id');
  const role = await getRole(store, checkId(roleID, 'role id'));
  const compares: Compare[] = [];
  const ops: TxnOp[] = [];
  if (type === 'collection') {
    if (!(await findCollection(store, objectID))) throw notFound(`collection "${objectID}" not found`);
    const touch = await touchOps(store, objectID);
    if (!touch) throw notFound(`collection "${objectID}" not found`);
    compares.push(...touch.compares);
    ops.push(...touch.ops);
  } else if (type === 'grantobject' && objectID !== ALL_NAMESPACES) {
    throw notFound(`grant object "${objectID}" not found (only ${ALL_NAMESPACES})`);
  }
  if (!role.system_role) {
    const key = rbacKeys.role(role.id);
    const kv = await store.get(key);
    if (!kv) throw notFound(`role "${roleID}" not found`);
    compares.push({ key, target: 'modRevision', op: '=', value: kv.modRevision });
    ops.push({ type: 'put', key, value: kv.value });
  }
  const grant: GrantRecord = { subjectID, objectID, roleID: role.id, type };
  ops.push({ type: 'put', key: rbacKeys.grant(subjectID, objectID, role.id), value: JSON.stringify(grant) });
  const result = await store.txn(compares, ops);
  if (!result.succeeded) throw notFound('the role or collection was deleted meanwhile');
  return grant;
}

export async function deleteGrant(
  store: Store,
  subjectID: string,
  objectID: string,
  roleID: string,
): Promise<void> {
  const { deleted } = await store.delete(rbacKeys.grant(subjectID, objectID, roleID));
  if (deleted === 0) throw notFound(`grant ${subjectID}/${objectID}/${roleID} not found`);
}

export async function listGrants(store: Store, subjectIds?: readonly string[]): Promise<GrantRecord[]> {
  if (!subjectIds) {
    const { kvs } = await store.range(rbacKeys.grants);
    return kvs.map((kv) => JSON.parse(kv.value) as GrantRecord);
  }
  const lists = await Promise.all(subjectIds.map((s) => store.range(rbacKeys.grantsOf(s))));
  return lists.flatMap(({ kvs }) => kvs.map((kv) => JSON.parse(kv.value) as GrantRecord));
}

/** Opaque, ordered cursor of a grant (nextPageStart). */
export const grantCursor = (g: GrantRecord): string => `${g.subjectID}/${g.objectID}/${g.roleID}`;

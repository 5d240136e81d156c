// Roles: the five built-ins (in code, never stored) and custom roles at /orca/v1/rbac/roles/<id>.
// Roles are immutable (UCP: delete and recreate); a role used by a grant cannot be deleted.
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import { bad, conflict, isObject, notFound, rbacKeys } from './keys.js';
import { ApiError } from '@orca/api';
import {
  BUILTIN_ROLES,
  builtinRole,
  CATALOGUE,
  resourceTypeOf,
  type Operations,
  type RoleRecord,
} from './operations.js';

const ID_LIKE = /^[A-Za-z0-9-]{1,64}$/;

/** Checks a role.Role body; `Operations` is accepted too (diver posts that spelling). */
export function parseRoleBody(body: unknown): { name: string; operations: Operations } {
  if (!isObject(body)) throw bad('the request body must be a JSON object');
  const name = body.name;
  if (typeof name !== 'string' || !name.trim() || name.length > 100) {
    throw bad('name must be a non-empty string of at most 100 characters');
  }
  if (body.system_role !== undefined && body.system_role !== false) {
    throw bad('system_role must be false: only built-in roles are system roles');
  }
  const raw = body.operations ?? body.Operations ?? {};
  if (!isObject(raw)) throw bad('operations must be an object of resource types');
  const operations: Operations = {};
  for (const [type, ops] of Object.entries(raw)) {
    if (!CATALOGUE[type]) throw bad(`unknown resource type "${type}"`);
    if (!isObject(ops)) throw bad(`operations.${type} must be an object of operations`);
    for (const [op, value] of Object.entries(ops)) {
      if (resourceTypeOf(op) !== type) throw bad(`unknown operation "${op}" for ${type}`);
      if (!Array.isArray(value)) throw bad(`operations.${type}["${op}"] must be an array`);
      (operations[type] ??= {})[op] = [];
    }
  }
  return { name: name.trim(), operations };
}

export async function listRoles(store: Store): Promise<RoleRecord[]> {
  const { kvs } = await store.range(rbacKeys.roles);
  const custom = kvs.map((kv) => JSON.parse(kv.value) as RoleRecord);
  return [...BUILTIN_ROLES, ...custom.sort((a, b) => a.name.localeCompare(b.name))];
}

/** A role by id, or by name when no id matches (DELETE /roles/{role} documents "Name of the role"). */
export async function findRole(store: Store, idOrName: string): Promise<RoleRecord | undefined> {
  const builtin = builtinRole(idOrName);
  if (builtin) return builtin;
  // Only well-formed ids become key segments.
  const kv = ID_LIKE.test(idOrName) ? await store.get(rbacKeys.role(idOrName)) : undefined;
  if (kv) return JSON.parse(kv.value) as RoleRecord;
  return (await listRoles(store)).find((r) => r.name === idOrName);
}

export async function getRole(store: Store, idOrName: string): Promise<RoleRecord> {
  const role = await findRole(store, idOrName);
  if (!role) throw notFound(`role "${idOrName}" not found`);
  return role;
}

export async function createRole(store: Store, body: unknown): Promise<RoleRecord> {
  const { name, operations } = parseRoleBody(body);
  if ((await listRoles(store)).some((r) => r.name.toLowerCase() === name.toLowerCase())) {
    throw conflict(`a role named "${name}" already exists`);
  }
  const role: RoleRecord = { id: randomUUID(), name, system_role: false, operations };
  await store.put(rbacKeys.role(role.id), JSON.stringify(role));
  return role;
}

export async function deleteRole(store: Store, idOrName: string): Promise<void> {
  const role = await getRole(store, idOrName);
  if (role.system_role)
    throw new ApiError(403, 'FORBIDDEN', `"${role.name}" is a built-in role and cannot be deleted`);
  const key = rbacKeys.role(role.id);
  const kv = await store.get(key);
  if (!kv) throw notFound(`role "${idOrName}" not found`);
  const { kvs } = await store.range(rbacKeys.grants);
  const used = kvs.filter((g) => (JSON.parse(g.value) as { roleID: string }).roleID === role.id).length;
  if (used > 0) {
    throw conflict(`role "${role.name}" is used by ${used} grant(s): delete those grants first`);
  }
  // A grant written after the scan above rewrites the role key (see grants.ts), so this fails then.
  const result = await store.txn(
    [{ key, target: 'modRevision', op: '=', value: kv.modRevision }],
    [{ type: 'delete', key }],
  );
  if (!result.succeeded) throw conflict(`role "${role.name}" changed while deleting it: try again`);
}

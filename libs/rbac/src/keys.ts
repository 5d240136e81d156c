// Store layout of RBAC (docs/architecture.md, State). Ids are checked (ID pattern) before they
// become key segments; grant segments are URI-encoded because subject ids may contain ':' and '/'.
import { ApiError } from '@orca/api';

const V1 = '/orca/v1/rbac/';
export const rbacKeys = {
  /** Everything RBAC stores. */
  prefix: V1,
  role: (id: string) => `${V1}roles/${id}`,
  roles: `${V1}roles/`,
  collection: (id: string) => `${V1}collections/${id}`,
  collections: `${V1}collections/`,
  /** Path index: one key per stored collection path, so two creates of one path cannot both win. */
  collectionPath: (path: string) => `${V1}collectionpaths${path}`,
  grant: (subject: string, object: string, role: string) =>
    `${V1}grants/${encodeURIComponent(subject)}/${encodeURIComponent(object)}/${encodeURIComponent(role)}`,
  grants: `${V1}grants/`,
  grantsOf: (subject: string) => `${V1}grants/${encodeURIComponent(subject)}/`,
  defaultCollection: (user: string) => `${V1}defaultcollections/${encodeURIComponent(user)}`,
};

const ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;

export const bad = (message: string) => new ApiError(400, 'INVALID_REQUEST', message);
export const notFound = (message: string) => new ApiError(404, 'NOT_FOUND', message);
export const conflict = (message: string) => new ApiError(409, 'CONFLICT', message);

export function checkId(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || !ID.test(raw)) throw bad(`malformed ${what}`);
  return raw;
}

export const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;

/** `limit` query value: default 10, 0 means everything (clients send `limit=0` for "all"). */
export function parseLimit(raw: unknown): number {
  if (raw === undefined || raw === '') return DEFAULT_LIMIT;
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw)) throw bad('limit must be a non-negative integer');
  const n = Number(raw);
  return n === 0 ? Number.MAX_SAFE_INTEGER : Math.min(n, MAX_LIMIT);
}

export function parseBool(raw: unknown, name: string): boolean {
  if (raw === undefined || raw === '') return false;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw bad(`${name} must be true or false`);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

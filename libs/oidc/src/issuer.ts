// The cluster's OpenID Connect issuer: one URL for every manager, kept in the store. Set once, on
// the first start, to that controller's own URL (orca has no external-URL setting); an admin may
// point it at a load balancer in front of the managers. Every controller's provider claims it, so
// an ID token from one manager verifies at every other, and each apiserver fetches discovery from
// its own controller (the discovery document names this issuer whichever manager serves it).
import { ApiError } from '@orca/api';
import type { Store } from '@orca/store';
import { OIDC_PREFIX } from './adapter.js';

export const OIDC_ISSUER_KEY = `${OIDC_PREFIX}issuer`;

/** Where every controller serves the provider; the issuer URL's path must be this one. */
export const OIDC_MOUNT_PATH = '/oidc';

export interface IssuerSetting {
  issuer: string;
  updatedAt: string;
}

/**
 * The issuer URL as Kubernetes and OpenID Connect want it: https, no query, fragment or user
 * info, and the provider's mount path (requests must reach a controller's /oidc). 400 otherwise.
 */
export function validateIssuer(value: unknown): string {
  const bad = (why: string) => new ApiError(400, 'INVALID_ISSUER', `issuer ${why}`);
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048)
    throw bad('must be a URL string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad('must be a URL');
  }
  if (url.protocol !== 'https:') throw bad('must be an https URL');
  if (url.search || url.hash || value.includes('?') || value.includes('#'))
    throw bad('must have no query or fragment');
  if (url.username || url.password) throw bad('must have no user info');
  if (url.pathname !== OIDC_MOUNT_PATH)
    throw bad(`path must be ${OIDC_MOUNT_PATH} (where every controller serves the provider)`);
  // The form the provider puts in `iss` (no trailing slash, normalised host).
  return `${url.origin}${OIDC_MOUNT_PATH}`;
}

function parse(value: string): IssuerSetting {
  return JSON.parse(value) as IssuerSetting;
}

/** The stored issuer and its revision, or undefined before the first controller started. */
export async function readIssuer(store: Store): Promise<{ issuer: string; revision: number } | undefined> {
  const kv = await store.get(OIDC_ISSUER_KEY);
  return kv && { issuer: parse(kv.value).issuer, revision: kv.modRevision };
}

/** The cluster's issuer, stored as `fallback` when there is none yet (create-if-absent: one wins). */
export async function ensureIssuer(
  store: Store,
  fallback: string,
): Promise<{ issuer: string; revision: number }> {
  const existing = await readIssuer(store);
  if (existing) return existing;
  const value: IssuerSetting = { issuer: validateIssuer(fallback), updatedAt: new Date().toISOString() };
  await store.txn(
    [{ key: OIDC_ISSUER_KEY, target: 'createRevision', op: '=', value: 0 }],
    [{ type: 'put', key: OIDC_ISSUER_KEY, value: JSON.stringify(value) }],
  );
  return (await readIssuer(store))!;
}

/** Changes the cluster's issuer (admin); every controller's provider follows its watch. */
export async function setIssuer(store: Store, issuer: unknown): Promise<IssuerSetting> {
  const value: IssuerSetting = { issuer: validateIssuer(issuer), updatedAt: new Date().toISOString() };
  await store.put(OIDC_ISSUER_KEY, JSON.stringify(value));
  return value;
}

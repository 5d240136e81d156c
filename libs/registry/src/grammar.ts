// The OCI distribution-spec grammars for repository names, tags and digests. Everything that ends
// up in a store key or a file path is checked here first, so a name can never step outside its
// own prefix or directory.

/** One path component of a repository name (distribution-spec "Pulling manifests"). */
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const COMPONENT_RE = new RegExp(`^${COMPONENT}$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const ALGORITHM = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const ENCODED = /^[a-zA-Z0-9=_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Clients cap host + "/" + name at 255 characters; the name alone may not be longer. */
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = 'sha256' | 'sha512';
export const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface RepositoryName {
  /** The DTR namespace: a user or an organization. */
  namespace: string;
  repository: string;
  /** `namespace/repository`. */
  full: string;
}

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `algorithm:hex`. */
  value: string;
}

/** A name that matches the OCI grammar (any number of components). */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/** DTR repository names are always `namespace/repository`; undefined for anything else. */
export function parseRepositoryName(name: string): RepositoryName | undefined {
  if (!isValidName(name)) return undefined;
  const parts = name.split('/');
  if (parts.length !== 2) return undefined;
  const [namespace, repository] = parts as [string, string];
  return { namespace, repository, full: name };
}

/** One component (a namespace or a repository name on its own). */
export function isValidComponent(component: string): boolean {
  return component.length > 0 && component.length <= MAX_NAME_LENGTH && COMPONENT_RE.test(component);
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export function isUploadId(id: string): boolean {
  return UUID.test(id);
}

export type DigestCheck = { ok: true; digest: Digest } | { ok: false; reason: 'malformed' | 'unsupported' };

/** Parses `algorithm:encoded`: malformed per the grammar, or well-formed but not sha256/sha512. */
export function checkDigest(raw: string): DigestCheck {
  const colon = raw.indexOf(':');
  if (colon <= 0) return { ok: false, reason: 'malformed' };
  const algorithm = raw.slice(0, colon);
  const hex = raw.slice(colon + 1);
  if (!ALGORITHM.test(algorithm) || !ENCODED.test(hex)) return { ok: false, reason: 'malformed' };
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return { ok: false, reason: 'unsupported' };
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex))
    return { ok: false, reason: 'malformed' };
  return { ok: true, digest: { algorithm, hex, value: raw } };
}

export function parseDigest(raw: string): Digest | undefined {
  const check = checkDigest(raw);
  return check.ok ? check.digest : undefined;
}

/** A manifest reference: a digest when it contains a colon, otherwise a tag. */
export type Reference = { kind: 'digest'; digest: Digest } | { kind: 'tag'; tag: string };

export function parseReference(raw: string): Reference | undefined {
  if (raw.includes(':')) {
    const digest = parseDigest(raw);
    return digest ? { kind: 'digest', digest } : undefined;
  }
  return isValidTag(raw) ? { kind: 'tag', tag: raw } : undefined;
}

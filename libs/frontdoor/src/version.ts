// Docker API version prefixes: `/v1.41/containers/json` is `/containers/json` at API 1.41. The
// prefix travels on to the engine unchanged, so the engine itself refuses versions it cannot speak.
export interface VersionedPath {
  /** "1.41", or undefined for an unversioned path. */
  version?: string;
  /** The path without the prefix, always starting with "/". */
  path: string;
}

const PREFIX = /^\/v(\d{1,2}\.\d{1,3})(\/.*)?$/;

export function splitVersion(rawPath: string): VersionedPath {
  const match = PREFIX.exec(rawPath);
  if (!match) return { path: rawPath || '/' };
  return { version: match[1], path: match[2] ?? '/' };
}

/** Compares two "major.minor" API versions (negative when a < b). */
export function compareApiVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** The lowest of several engine API versions: what every engine in the cluster understands. */
export function lowestApiVersion(versions: readonly string[]): string | undefined {
  return [...versions].filter((v) => /^\d+\.\d+$/.test(v)).sort(compareApiVersions)[0];
}

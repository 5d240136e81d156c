import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { JoinTokenFormatError } from './errors.js';
import type { NodeRole } from './ca.js';

// swarmkit ca/config.go: base36DigestLen, maxGeneratedSecretLength, generatedSecretEntropyBytes.
const DIGEST_LEN = 50;
const SECRET_LEN = 25;
const SECRET_BYTES = 16;
const BASE36 = /^[0-9a-z]+$/;

export interface ParsedJoinToken {
  version: 1;
  /** SHA-256 of the CA bundle the token pins (32 bytes). */
  digest: Buffer;
  /** The 25-character base36 secret. */
  secret: string;
}

/** SHA-256 of the exact bundle bytes (the root digest; swarmkit digest.FromBytes(rootCA.Certs)). */
export function caBundleDigest(caBundlePem: string | Uint8Array): Buffer {
  return createHash('sha256')
    .update(typeof caBundlePem === 'string' ? Buffer.from(caBundlePem, 'utf8') : caBundlePem)
    .digest();
}

function toBase36(bytes: Buffer, width: number): string {
  return BigInt(`0x${bytes.toString('hex') || '0'}`)
    .toString(36)
    .padStart(width, '0');
}

/** `SWMTKN-1-<sha256(bundle) base36, 50 chars>-<16 random bytes base36, 25 chars>`. */
export function generateJoinToken(caBundlePem: string | Uint8Array): string {
  const digest = toBase36(caBundleDigest(caBundlePem), DIGEST_LEN);
  const secret = toBase36(randomBytes(SECRET_BYTES), SECRET_LEN);
  return `SWMTKN-1-${digest}-${secret}`;
}

/** swarmkit ParseJoinToken for v1 tokens; throws JoinTokenFormatError ("invalid join token"). */
export function parseJoinToken(token: string): ParsedJoinToken {
  const invalid = (why: string) => new JoinTokenFormatError(`invalid join token: ${why}`);
  if (typeof token !== 'string') throw invalid('not a string');
  const parts = token.split('-');
  if (parts.length < 4 || parts[0] !== 'SWMTKN') throw invalid('not a SWMTKN token');
  if (parts[1] !== '1') throw invalid(`unsupported version ${parts[1] ?? ''}`);
  if (parts.length !== 4) throw invalid('wrong number of fields');
  const [, , digestText = '', secret = ''] = parts;
  if (digestText.length !== DIGEST_LEN || !BASE36.test(digestText)) throw invalid('bad CA digest');
  if (secret.length !== SECRET_LEN || !BASE36.test(secret)) throw invalid('bad secret');
  let value = 0n;
  for (const ch of digestText) value = value * 36n + BigInt(parseInt(ch, 36));
  const hex = value.toString(16);
  if (hex.length > 64) throw invalid('CA digest is not a SHA-256');
  return { version: 1, digest: Buffer.from(hex.padStart(64, '0'), 'hex'), secret };
}

/**
 * Whether the token pins exactly this CA bundle (swarmkit GetRemoteCA; a mismatch is "remote CA
 * does not match fingerprint"). Throws JoinTokenFormatError for a malformed token.
 */
export function caDigestMatches(token: string, caBundlePem: string | Uint8Array): boolean {
  const { digest } = parseJoinToken(token);
  return timingSafeEqual(digest, caBundleDigest(caBundlePem));
}

const hashToken = (t: string) => createHash('sha256').update(t, 'utf8').digest();

/**
 * The role a presented join token grants, or undefined (swarmkit: "A valid join token is necessary
 * to join this cluster"). Compares hashes so lengths never leak, and always checks both tokens.
 */
export function matchJoinToken(
  presented: string,
  tokens: { worker: string; manager: string },
): NodeRole | undefined {
  if (typeof presented !== 'string' || presented.length === 0) return undefined;
  const p = hashToken(presented);
  const isManager = timingSafeEqual(p, hashToken(tokens.manager));
  const isWorker = timingSafeEqual(p, hashToken(tokens.worker));
  if (isManager) return 'swarm-manager';
  if (isWorker) return 'swarm-worker';
  return undefined;
}

import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { SealError } from './errors.js';

// v1 blob: `v1:<salt>:<iv>:<tag>:<ciphertext>` (base64). AES-256-GCM; the key is scrypt(passphrase,
// salt) for string KEKs and HKDF-SHA256(kek, salt) for Buffer KEKs (raw key material).
const VERSION = 'v1';
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const HKDF_INFO = 'orca-pki-seal-v1';
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;

// scrypt is deliberately slow (~50-100 ms); opening many secrets sealed with the same salt and
// passphrase (or re-opening one) reuses the derived key.
const derivedKeys = new Map<string, Buffer>();
const DERIVED_KEYS_MAX = 64;

export type Kek = Buffer | Uint8Array | string;

function deriveKey(kek: Kek, salt: Buffer): Buffer {
  if (typeof kek === 'string') {
    if (kek.length === 0) throw new SealError('empty passphrase');
    const id = createHash('sha256').update(salt).update(kek, 'utf8').digest('base64');
    const cached = derivedKeys.get(id);
    if (cached) return cached;
    const key = scryptSync(kek, salt, 32, SCRYPT);
    if (derivedKeys.size >= DERIVED_KEYS_MAX) derivedKeys.delete(derivedKeys.keys().next().value!);
    derivedKeys.set(id, key);
    return key;
  }
  if (kek.length < 16) throw new SealError('KEK must be at least 16 bytes');
  return Buffer.from(hkdfSync('sha256', kek, salt, HKDF_INFO, 32));
}

/** Encrypts a secret (e.g. a CA key PEM) for storage at rest. */
export function sealSecret(plaintext: string, kek: Kek): string {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(kek, salt), iv);
  cipher.setAAD(Buffer.from(VERSION));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, salt, iv, tag, ct]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64')))
    .join(':');
}

/** Decrypts a sealSecret blob; wrong KEK, tampering or an unknown format throw SealError. */
export function openSecret(sealed: string, kek: Kek): string {
  const parts = typeof sealed === 'string' ? sealed.split(':') : [];
  if (parts.length !== 5 || parts[0] !== VERSION) throw new SealError('not a v1 sealed secret');
  const [salt, iv, tag, ct] = parts.slice(1).map((p) => Buffer.from(p, 'base64')) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (salt.length !== SALT_BYTES || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SealError('malformed sealed secret');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(kek, salt), iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(VERSION));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch (err) {
    if (err instanceof SealError) throw err;
    throw new SealError('cannot open sealed secret: wrong key or corrupted data');
  }
}

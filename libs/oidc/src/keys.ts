// The provider's signing keys and cookie keys, kept in the store sealed with the key-encryption key
// (never in the clear at rest). Rotation puts a new signing key first (it signs from then on) and
// keeps the previous ones in the JWKS until every token they signed has expired.
import { openSecret, sealSecret, type Kek } from '@orca/pki';
import type { Store } from '@orca/store';
import { createHash, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { OIDC_PREFIX } from './adapter.js';

export const OIDC_KEYS_KEY = `${OIDC_PREFIX}keys`;

export interface SigningKey {
  kid: string;
  createdAt: number;
  /** Set when a newer key took over; the key leaves the JWKS `retainMs` after this. */
  retiredAt?: number;
  jwk: JsonWebKey & { kid: string; alg: string; use: string };
}

export interface KeyMaterial {
  signing: SigningKey[];
  cookieKeys: string[];
}

function newSigningKey(now: number): SigningKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  // RFC 7638 thumbprint of the public part: a stable, unique kid.
  const thumbprint = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { kid: thumbprint, createdAt: now, jwk: { ...jwk, kid: thumbprint, alg: 'RS256', use: 'sig' } };
}

export class OidcKeyStore {
  constructor(
    private readonly store: Store,
    private readonly kek: Kek,
    private readonly now: () => number = Date.now,
  ) {}

  /** The keys, created on first use (create-if-absent, so two controllers agree on one set). */
  async load(): Promise<{ material: KeyMaterial; revision: number }> {
    const existing = await this.store.get(OIDC_KEYS_KEY);
    if (existing) {
      return {
        material: JSON.parse(openSecret(existing.value, this.kek)) as KeyMaterial,
        revision: existing.modRevision,
      };
    }
    const material: KeyMaterial = {
      signing: [newSigningKey(this.now())],
      cookieKeys: [randomBytes(32).toString('base64url')],
    };
    await this.store.txn(
      [{ key: OIDC_KEYS_KEY, target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key: OIDC_KEYS_KEY, value: sealSecret(JSON.stringify(material), this.kek) }],
    );
    return this.load();
  }

  /**
   * A new signing key takes over; keys retired more than `retainMs` ago leave the JWKS (retainMs must
   * exceed the longest lifetime of a token they signed). Compare-and-swap: concurrent rotations
   * do not lose a key.
   */
  async rotate(retainMs: number): Promise<SigningKey> {
    for (;;) {
      const { material, revision } = await this.load();
      const now = this.now();
      const next = newSigningKey(now);
      const signing = [
        next,
        ...material.signing.map((k) => (k.retiredAt ? k : { ...k, retiredAt: now })),
      ].filter((k) => !k.retiredAt || now - k.retiredAt < retainMs);
      const result = await this.store.txn(
        [{ key: OIDC_KEYS_KEY, target: 'modRevision', op: '=', value: revision }],
        [
          {
            type: 'put',
            key: OIDC_KEYS_KEY,
            value: sealSecret(JSON.stringify({ ...material, signing }), this.kek),
          },
        ],
      );
      if (result.succeeded) return next;
    }
  }
}

/** The public JWKS (what /jwks serves and verifiers use). */
export function publicJwks(material: KeyMaterial): { keys: Record<string, unknown>[] } {
  return {
    keys: material.signing.map(({ jwk }) => ({
      kty: jwk.kty,
      n: jwk.n,
      e: jwk.e,
      kid: jwk.kid,
      alg: jwk.alg,
      use: jwk.use,
    })),
  };
}

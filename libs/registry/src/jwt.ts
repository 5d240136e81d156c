// Registry bearer tokens: JWTs signed with ES256 (distribution docs/spec/auth/jwt.md). Signing keys
// live in the store, the private key sealed with orca's key-encryption key, and are rotated: a new
// key signs from `rotateAfterMs` on, and an old key keeps verifying until every token it signed
// has expired. Every replica reads the same key ring, so any replica verifies any token.
import { sealSecret, openSecret, type Kek } from '@orca/pki';
import type { Store } from '@orca/store';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { dtrKeys } from './metadata.js';
import type { AccessEntry } from './scope.js';

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: AccessEntry[];
}

interface StoredKey {
  kid: string;
  publicKeyPem: string;
  sealedPrivateKey: string;
  createdAt: number;
}

interface LoadedKey {
  kid: string;
  createdAt: number;
  publicKey: KeyObject;
  privateKey?: KeyObject;
}

export interface TokenSignerOptions {
  issuer: string;
  /** Token lifetime in seconds (the token spec's `expires_in`; never below 60). */
  ttlSeconds: number;
  /** A signing key older than this is replaced by a new one. */
  rotateAfterMs: number;
  now?: () => number;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** The libtrust key id docker's registry uses: base32 of the first 240 bits of SHA-256(SPKI DER), in groups of 4. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of hash) bits += byte.toString(2).padStart(8, '0');
  let encoded = '';
  for (let i = 0; i < bits.length; i += 5) encoded += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return encoded.match(/.{4}/g)!.join(':');
}

export function signJwt(claims: TokenClaims, kid: string, privateKey: KeyObject): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${header}.${payload}.${b64url(signature)}`;
}

/** Splits and checks the signature with the key `lookup` returns for the token's kid. */
export function verifyJwtSignature(
  token: string,
  lookup: (kid: string) => KeyObject | undefined,
): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('malformed token');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: { alg?: unknown; kid?: unknown };
  let claims: TokenClaims;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as typeof header;
    claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    throw new TokenError('malformed token');
  }
  if (header.alg !== 'ES256') throw new TokenError('unsupported token algorithm');
  const key = typeof header.kid === 'string' ? lookup(header.kid) : undefined;
  if (!key) throw new TokenError('token signed by an unknown key');
  const ok = verify(
    'sha256',
    Buffer.from(`${headerPart}.${payloadPart}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signaturePart, 'base64url'),
  );
  if (!ok) throw new TokenError('invalid token signature');
  if (typeof claims !== 'object' || claims === null || !Array.isArray(claims.access))
    throw new TokenError('malformed token claims');
  return claims;
}

const CLOCK_SKEW_SECONDS = 30;

/** Tokens whose signature was checked, remembered so a client's next requests skip the ECDSA
 *  verify and JSON parse; issuer, audience and lifetime are still checked on every use. */
const VERIFIED_CACHE_SIZE = 1024;

export class TokenSigner {
  private keys = new Map<string, LoadedKey>();
  private readonly verified = new Map<string, { claims: TokenClaims; kid: string }>();
  private loadedAt = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly kek: Kek,
    private readonly options: TokenSignerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get ttlSeconds(): number {
    return Math.max(60, this.options.ttlSeconds);
  }

  private async reload(): Promise<void> {
    const { kvs } = await this.store.range(dtrKeys.signingKeys());
    const next = new Map<string, LoadedKey>();
    for (const kv of kvs) {
      const stored = JSON.parse(kv.value) as StoredKey;
      const known = this.keys.get(stored.kid);
      next.set(
        stored.kid,
        known ?? {
          kid: stored.kid,
          createdAt: stored.createdAt,
          publicKey: createPublicKey(stored.publicKeyPem),
          privateKey: createPrivateKey(openSecret(stored.sealedPrivateKey, this.kek)),
        },
      );
    }
    this.keys = next;
    this.loadedAt = this.now();
  }

  private newest(): LoadedKey | undefined {
    let best: LoadedKey | undefined;
    for (const key of this.keys.values()) if (!best || key.createdAt > best.createdAt) best = key;
    return best;
  }

  /** The key that signs now: the newest one, or a new one when it is older than the rotation period. */
  async currentKey(): Promise<LoadedKey> {
    let key = this.newest();
    if (!key || this.now() - key.createdAt >= this.options.rotateAfterMs) {
      await this.reload();
      key = this.newest();
    }
    if (key && this.now() - key.createdAt < this.options.rotateAfterMs) return key;
    return this.rotate();
  }

  /** Adds a new signing key and removes keys whose tokens have all expired. */
  async rotate(): Promise<LoadedKey> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = libtrustKeyId(publicKey);
    const stored: StoredKey = {
      kid,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      sealedPrivateKey: sealSecret(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), this.kek),
      createdAt: this.now(),
    };
    await this.store.put(dtrKeys.signingKey(kid), JSON.stringify(stored));
    // A key retired (superseded) more than one token lifetime ago verifies nothing any more.
    const sorted = [...this.keys.values(), { kid, createdAt: stored.createdAt }].sort(
      (a, b) => a.createdAt - b.createdAt,
    );
    for (let i = 0; i + 1 < sorted.length; i++) {
      const retiredAt = sorted[i + 1]!.createdAt;
      if (this.now() - retiredAt > (this.ttlSeconds + CLOCK_SKEW_SECONDS) * 1000)
        await this.store.delete(dtrKeys.signingKey(sorted[i]!.kid));
    }
    await this.reload();
    return this.keys.get(kid)!;
  }

  async issue(
    subject: string,
    audience: string,
    access: AccessEntry[],
  ): Promise<{ token: string; claims: TokenClaims }> {
    const key = await this.currentKey();
    const iat = Math.floor(this.now() / 1000);
    const claims: TokenClaims = {
      iss: this.options.issuer,
      sub: subject,
      aud: audience,
      exp: iat + this.ttlSeconds,
      nbf: iat - CLOCK_SKEW_SECONDS,
      iat,
      jti: randomBytes(16).toString('hex'),
      access,
    };
    return { token: signJwt(claims, key.kid, key.privateKey!), claims };
  }

  /** Checks signature, issuer, audience and lifetime; throws TokenError. */
  async verify(token: string, audience: string): Promise<TokenClaims> {
    const known = this.verified.get(token);
    // A token signed by a key that left the ring verifies no more.
    const claims = known && this.keys.has(known.kid) ? known.claims : await this.verifySignature(token);
    const now = Math.floor(this.now() / 1000);
    if (claims.iss !== this.options.issuer) throw new TokenError('token from another issuer');
    if (claims.aud !== audience) throw new TokenError('token for another service');
    if (typeof claims.exp !== 'number' || claims.exp <= now) {
      this.verified.delete(token);
      throw new TokenError('token expired');
    }
    if (typeof claims.nbf !== 'number' || claims.nbf > now + CLOCK_SKEW_SECONDS)
      throw new TokenError('token not yet valid');
    return claims;
  }

  private async verifySignature(token: string): Promise<TokenClaims> {
    let kid = '';
    const lookup = (k: string) => {
      kid = k;
      return this.keys.get(k)?.publicKey;
    };
    let claims: TokenClaims;
    try {
      claims = verifyJwtSignature(token, lookup);
    } catch (error) {
      // A kid we have not seen yet may come from another replica's fresh key: reload once.
      if (
        !(error instanceof TokenError) ||
        !/unknown key/.test(error.message) ||
        this.now() - this.loadedAt < 1000
      )
        throw error;
      await this.reload();
      claims = verifyJwtSignature(token, lookup);
    }
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, kid });
    return claims;
  }
}

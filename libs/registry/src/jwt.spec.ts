import { EmbeddedStore } from '@orca/store';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libtrustKeyId, signJwt, TokenSigner, verifyJwtSignature, type TokenClaims } from './jwt.js';
import { dtrKeys } from './metadata.js';

describe('registry JWTs', () => {
  let dir: string;
  let store: EmbeddedStore;
  let now: number;
  const kek = 'k'.repeat(32);
  const signer = (rotateAfterMs = 3600_000) =>
    new TokenSigner(store, Buffer.from(kek), {
      issuer: 'dtr.test',
      ttlSeconds: 300,
      rotateAfterMs,
      now: () => now,
    });
  const access = [{ type: 'repository', name: 'a/b', actions: ['pull'] }];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-jwt-'));
    store = new EmbeddedStore({ dir });
    now = Date.UTC(2026, 0, 1);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs ES256 tokens another replica verifies from the store', async () => {
    const { token, claims } = await signer().issue('alice', 'dtr.test', access);
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<
      string,
      string
    >;
    expect(header).toMatchObject({ typ: 'JWT', alg: 'ES256' });
    expect(header.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    expect(claims).toMatchObject({
      iss: 'dtr.test',
      sub: 'alice',
      aud: 'dtr.test',
      access,
      exp: claims.iat + 300,
    });
    await expect(signer().verify(token, 'dtr.test')).resolves.toMatchObject({ sub: 'alice', access });
  });

  it('keeps the private key sealed in the store', async () => {
    await signer().issue('alice', 'dtr.test', access);
    const { kvs } = await store.range(dtrKeys.signingKeys());
    expect(kvs).toHaveLength(1);
    expect(kvs[0]!.value).not.toContain('PRIVATE KEY');
    expect(JSON.parse(kvs[0]!.value).sealedPrivateKey).toMatch(/^v1:/);
  });

  it('refuses tampered, foreign, expired, early and wrong-audience tokens', async () => {
    const s = signer();
    const { token } = await s.issue('alice', 'dtr.test', access);
    const [h, , sig] = token.split('.');
    const more = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()),
        access: [{ type: 'repository', name: 'a/b', actions: ['*'] }],
      }),
    ).toString('base64url');
    await expect(s.verify(`${h}.${more}.${sig}`, 'dtr.test')).rejects.toThrow(/signature/);
    await expect(s.verify(token, 'other.service')).rejects.toThrow(/another service/);
    await expect(s.verify('a.b', 'dtr.test')).rejects.toThrow(/malformed/);
    const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const claims: TokenClaims = {
      iss: 'dtr.test',
      sub: 'x',
      aud: 'dtr.test',
      exp: now / 1000 + 60,
      nbf: now / 1000,
      iat: now / 1000,
      jti: 'j',
      access,
    };
    const kid = libtrustKeyId(foreign.publicKey);
    await expect(s.verify(signJwt(claims, kid, foreign.privateKey), 'dtr.test')).rejects.toThrow(
      /unknown key/,
    );
    now += 301_000;
    await expect(s.verify(token, 'dtr.test')).rejects.toThrow(/expired/);
  });

  it('remembers a verified token, still checking audience and lifetime on every use and dropping it with its key', async () => {
    const s = signer();
    const { token } = await s.issue('alice', 'dtr.test', access);
    const kid = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string })
      .kid;
    expect((await s.verify(token, 'dtr.test')).sub).toBe('alice');
    expect((await s.verify(token, 'dtr.test')).sub).toBe('alice');
    await expect(s.verify(token, 'other.service')).rejects.toThrow(/another service/);
    // The key leaves the ring (as rotation does once its tokens are expired): the token goes with it.
    await store.delete(dtrKeys.signingKey(kid));
    await s.rotate();
    await expect(s.verify(token, 'dtr.test')).rejects.toThrow(/unknown key/);
    const fresh = await s.issue('bob', 'dtr.test', access);
    await expect(s.verify(fresh.token, 'dtr.test')).resolves.toBeDefined();
    now += 301_000;
    await expect(s.verify(fresh.token, 'dtr.test')).rejects.toThrow(/expired/);
  });

  it('rotates: a new key signs, the old one verifies until its tokens expire, then goes', async () => {
    const s = signer(600_000);
    const first = await s.issue('alice', 'dtr.test', access);
    now += 601_000;
    const second = await s.issue('alice', 'dtr.test', access);
    const kidOf = (t: string) =>
      (JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    expect(kidOf(second.token)).not.toBe(kidOf(first.token));
    await expect(s.verify(second.token, 'dtr.test')).resolves.toBeDefined();
    expect((await store.range(dtrKeys.signingKeys())).kvs).toHaveLength(2);
    now += 601_000;
    await s.issue('alice', 'dtr.test', access);
    const kids = (await store.range(dtrKeys.signingKeys())).kvs.map(
      (kv) => JSON.parse(kv.value).kid as string,
    );
    expect(kids).not.toContain(kidOf(first.token));
    expect(() => verifyJwtSignature(first.token, () => undefined)).toThrow(/unknown key/);
  });
});

import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oidcKeys, StoreAdapter, sweepExpired } from './adapter.js';
import { OidcClients } from './clients.js';
import { OidcKeyStore, publicJwks } from './keys.js';

describe('oidc store adapter, keys and clients', () => {
  let dir: string;
  let store: EmbeddedStore;
  let now = 1_000_000;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-oidc-'));
    store = new EmbeddedStore({ dir });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps records until they expire, with uid, user code and grant indexes', async () => {
    const sessions = new StoreAdapter(store, 'Session', () => now);
    await sessions.upsert('s1', { uid: 'u1', accountId: 'a' }, 60);
    expect(await sessions.findByUid('u1')).toMatchObject({ accountId: 'a' });
    const tokens = new StoreAdapter(store, 'RefreshToken', () => now);
    await tokens.upsert('t1', { grantId: 'g1', userCode: 'c1' }, 10);
    await tokens.upsert('t2', { grantId: 'g1' }, 10);
    expect(await tokens.findByUserCode('c1')).toMatchObject({ grantId: 'g1' });
    await tokens.consume('t2');
    expect((await tokens.find('t2'))?.consumed).toBe(Math.floor(now / 1000));
    now += 11_000;
    expect(await tokens.find('t1')).toBeUndefined();
    expect(await sessions.find('s1')).toBeDefined();
    expect(await sweepExpired(store, now)).toBe(2);
    expect(await store.get(oidcKeys.userCode('c1'))).toBeUndefined();
    expect((await store.range(oidcKeys.grantMembers('g1'))).count).toBe(0);
  });

  it('revokes everything of a grant and ignores ids that could escape a key', async () => {
    const codes = new StoreAdapter(store, 'AuthorizationCode', () => now);
    const access = new StoreAdapter(store, 'AccessToken', () => now);
    await codes.upsert('c1', { grantId: 'g2' }, 60);
    await access.upsert('a1', { grantId: 'g2' }, 60);
    await access.upsert('a2', { grantId: 'other' }, 60);
    await access.revokeByGrantId('g2');
    expect(await codes.find('c1')).toBeUndefined();
    expect(await access.find('a1')).toBeUndefined();
    expect(await access.find('a2')).toBeDefined();
    expect(await access.find('../keys')).toBeUndefined();
    await expect(access.upsert('a/b', {}, 1)).rejects.toThrow(/unsafe/);
  });

  it('creates keys once, rotates with compare-and-swap, and retires old keys after the retention', async () => {
    const keys = new OidcKeyStore(store, 'a-test-kek-of-enough-length-000000', () => now);
    const first = (await keys.load()).material;
    expect((await new OidcKeyStore(store, 'a-test-kek-of-enough-length-000000').load()).material).toEqual(
      first,
    );
    const raw = (await store.get('/orca/v1/oidc/keys'))!.value;
    expect(raw).not.toContain(first.signing[0].jwk.d as string);
    const next = await keys.rotate(60_000);
    const rotated = (await keys.load()).material;
    expect(rotated.signing.map((k) => k.kid)).toEqual([next.kid, first.signing[0].kid]);
    expect(publicJwks(rotated).keys.every((k) => !('d' in k))).toBe(true);
    now += 61_000;
    await keys.rotate(60_000);
    expect((await keys.load()).material.signing).toHaveLength(2);
    expect((await keys.load()).material.signing.map((k) => k.kid)).not.toContain(first.signing[0].kid);
  });

  it('stores client secrets sealed and never returns them', async () => {
    const clients = new OidcClients(store, 'a-test-kek-of-enough-length-000000');
    await clients.put({
      client_id: 'dtr',
      client_secret: 'very-secret-value',
      redirect_uris: ['https://x/cb'],
    });
    expect((await store.get(oidcKeys.record('Client', 'dtr')))!.value).not.toContain('very-secret-value');
    expect(await clients.get('dtr')).toEqual({ client_id: 'dtr', redirect_uris: ['https://x/cb'] });
    await expect(clients.put({ client_id: '../x' })).rejects.toThrow(/client_id/);
    expect(await clients.remove('dtr')).toBe(true);
    expect(await clients.list()).toEqual([]);
  });
});

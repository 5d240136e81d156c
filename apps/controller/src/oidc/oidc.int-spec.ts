// orca's OpenID Connect provider driven by openid-client as the relying party, against a real
// controller: discovery, authorization code with PKCE through the login page, ID token claims
// (groups as <org>:<team>), userinfo, refresh, key rotation, deactivation, and refusals.
import { loadControllerConfig } from '@orca/config';
import { Directory } from '@orca/identity';
import { freePort } from '@orca/testing';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { startController, type RunningController } from '../controller.js';
import { Browser, exchange, pinnedFetch, REDIRECT, signIn as signInWith } from './test-oidc.js';

describe('OpenID Connect provider', () => {
  let dir: string;
  let controller: RunningController;
  let ca: string;
  let issuer: string;
  let config: client.Configuration;
  const adminAuth = `Basic ${Buffer.from('admin:orca-admin-pass').toString('base64')}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-oidc-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    ca = await controller.cas.clusterBundle();
    issuer = `${controller.url}/oidc`;
    const directory = new Directory(controller.store);
    await directory.create({ name: 'alice', password: 'alice-password', fullName: 'Alice Liddell' });
    await directory.create({ name: 'eng', isOrg: true });
    await directory.setOrgMember('eng', 'alice', {});
    await directory.createTeam('eng', { name: 'dev' });
    await directory.setTeamMember('eng', 'dev', 'alice', {});
    config = await client.discovery(new URL(issuer), 'kubernetes', undefined, client.None(), {
      [client.customFetch]: pinnedFetch(ca),
    });
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const signIn = (username: string, password: string, scope?: string) =>
    signInWith(config, ca, username, password, scope);

  it('publishes discovery for its issuer with PKCE S256 and a JWKS', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(issuer);
    expect(metadata.code_challenge_methods_supported).toContain('S256');
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'groups', 'offline_access']));
    const jwks = (await exchange(ca, String(metadata.jwks_uri))).json();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('runs the code flow with PKCE: ID token with sub, name and <org>:<team> groups; userinfo; refresh', async () => {
    const { final, verifier, state } = await signIn('alice', 'alice-password');
    expect(final.origin + final.pathname).toBe(REDIRECT);
    const tokens = await client.authorizationCodeGrant(config, final, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const claims = tokens.claims()!;
    const alice = await new Directory(controller.store).record('alice');
    expect(claims).toMatchObject({
      iss: issuer,
      aud: 'kubernetes',
      sub: alice.id,
      name: 'Alice Liddell',
      preferred_username: 'alice',
      groups: ['eng:dev'],
    });
    expect(controller.oidc.verifyIdToken(tokens.id_token!, 'kubernetes').sub).toBe(alice.id);
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, alice.id);
    expect(userinfo).toMatchObject({ sub: alice.id, preferred_username: 'alice', groups: ['eng:dev'] });
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.claims()!.sub).toBe(alice.id);
  });

  it('requires PKCE and refuses a wrong password on the login page', async () => {
    const noPkce = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 's',
    });
    const reply = await new Browser(ca).go(noPkce.href);
    const location = new URL(String(reply.headers.location), issuer);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/requires PKCE/);

    const { final, login } = await signIn('alice', 'wrong-password');
    expect(final.protocol).toBe('https:');
    expect(login.status).toBe(401);
    expect(login.text).toContain('Invalid username or password.');
  });

  it('refuses ID tokens with a bad signature or from a foreign issuer', async () => {
    const { final, verifier, state } = await signIn('alice', 'alice-password');
    const tokens = await client.authorizationCodeGrant(config, final, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const [header, payload, signature] = tokens.id_token!.split('.');
    const tampered = Buffer.from(payload, 'base64url').toString().replace('alice', 'admin');
    expect(() =>
      controller.oidc.verifyIdToken(`${header}.${Buffer.from(tampered).toString('base64url')}.${signature}`),
    ).toThrow(/bad signature/);
    // Same kid, same claims, signed by someone else's key.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
    expect(() => controller.oidc.verifyIdToken(`${header}.${payload}.${forged}`)).toThrow(/bad signature/);
    const foreign = {
      ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
      iss: 'https://evil.example/oidc',
    };
    const foreignPayload = Buffer.from(JSON.stringify(foreign)).toString('base64url');
    expect(() => controller.oidc.verifyIdToken(`${header}.${foreignPayload}.${signature}`)).toThrow(
      /bad signature/,
    );
    expect(() => controller.oidc.verifyIdToken('not-a-jwt')).toThrow(/malformed/);
  });

  it('rotates the signing key without breaking tokens already issued', async () => {
    const first = await signIn('alice', 'alice-password');
    const before = await client.authorizationCodeGrant(config, first.final, {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
    });
    const denied = await exchange(ca, `${controller.url}/api/orca/v1/oidc/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` },
    });
    expect(denied.status).toBe(403);
    const rotated = await exchange(ca, `${controller.url}/api/orca/v1/oidc/keys/rotate`, {
      method: 'POST',
      headers: { authorization: adminAuth },
    });
    expect(rotated.status).toBe(201);
    const newKid = rotated.json().kid as string;
    const jwks = (await exchange(ca, `${issuer}/jwks`)).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toContain(newKid);
    expect(jwks.keys).toHaveLength(2);
    expect(controller.oidc.verifyIdToken(before.id_token!).preferred_username).toBe('alice');
    const after = await client.refreshTokenGrant(config, before.refresh_token!);
    expect(JSON.parse(Buffer.from(after.id_token!.split('.')[0], 'base64url').toString()).kid).toBe(newKid);
  });

  it('issues nothing more to a deactivated account: no refresh, no login', async () => {
    const { final, verifier, state } = await signIn('alice', 'alice-password');
    const tokens = await client.authorizationCodeGrant(config, final, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    await new Directory(controller.store).update('alice', { isActive: false });
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toThrow();
    const again = await signIn('alice', 'alice-password');
    expect(again.login.status).toBe(401);
    expect(again.login.text).toContain('inactive');
    await new Directory(controller.store).update('alice', { isActive: true });
  });

  it('administers clients: bad metadata 400, unknown 404, registered client usable', async () => {
    const put = (id: string, body: string) =>
      exchange(ca, `${controller.url}/api/orca/v1/oidc/clients/${id}`, {
        method: 'PUT',
        headers: { authorization: adminAuth, 'content-type': 'application/json' },
        body,
      });
    expect((await put('broken', '{"redirect_uris": "not-a-list"}')).status).toBe(400);
    expect((await put('broken', '{not json')).status).toBe(400);
    const ok = await put(
      'dtr-test',
      JSON.stringify({
        redirect_uris: ['https://127.0.0.1:9443/login/callback'],
        client_secret: 's3cret-s3cret-s3cret-s3cret-s3cret',
      }),
    );
    expect(ok.status).toBe(200);
    expect(ok.json()).not.toHaveProperty('client_secret');
    const stored = await controller.store.range('/orca/v1/oidc/m/Client/dtr-test');
    expect(stored.kvs[0].value).not.toContain('s3cret');
    const missing = await exchange(ca, `${controller.url}/api/orca/v1/oidc/clients/nope`, {
      headers: { authorization: adminAuth },
    });
    expect(missing.status).toBe(404);
  });
});

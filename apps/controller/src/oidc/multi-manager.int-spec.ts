// Two managers' controllers on one real etcd serve one OpenID Connect issuer: discovery at either
// names the cluster's issuer, an ID token from manager A verifies at manager B (userinfo, verify)
// and refreshes there, a token of another issuer is refused, a manager that starts later (or
// again) claims the same issuer, an admin can move it; and a real kube-apiserver started with the
// AuthenticationConfiguration libs/cluster writes for manager B accepts A's token with A down.
import { kubeAuthenticationConfig } from '@orca/cluster';
import { loadControllerConfig } from '@orca/config';
import { Directory } from '@orca/identity';
import { OidcKeyStore } from '@orca/oidc';
import { basicAuth, freePort, httpsCall, startEtcd, startKubeCluster, type EtcdCluster } from '@orca/testing';
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { startController, type RunningController } from '../controller.js';
import { exchange, pinnedFetch, signIn } from './test-oidc.js';

const ADMIN_PASSWORD = 'orca-admin-pass';

describe('one OpenID Connect issuer across managers', () => {
  let etcd: EtcdCluster;
  let dir: string;
  const kek = randomBytes(32).toString('base64');
  const prefix = `oidc-mm-${randomBytes(4).toString('hex')}/`;
  let a: RunningController;
  let aClosed = false;
  let b: RunningController;
  let ca: string;
  let issuer: string;
  let configA: client.Configuration;
  let configB: client.Configuration;
  let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  let aliceId: string;

  /** A controller as a manager at `host` would run it: same etcd, same key-encryption key. */
  async function manager(host: string, name: string): Promise<RunningController> {
    return startController(
      loadControllerConfig({
        ORCA_HOST: host,
        ORCA_PORT: String(await freePort()),
        ORCA_DATA_DIR: join(dir, name),
        ORCA_ETCD_ENDPOINTS: etcd.endpoints.join(','),
        ORCA_ETCD_PREFIX: prefix,
        ORCA_KEK: kek,
        ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
      }),
    );
  }

  /** openid-client configured from the discovery document one controller serves. */
  async function configFrom(controller: RunningController): Promise<client.Configuration> {
    const reply = await exchange(ca, `${controller.url}/oidc/.well-known/openid-configuration`);
    expect(reply.status).toBe(200);
    const config = new client.Configuration(reply.json(), 'kubernetes', undefined, client.None());
    config[client.customFetch] = pinnedFetch(ca);
    return config;
  }

  /** A JWT signed with the cluster's real signing key: only the claims decide whether it passes. */
  async function signedWithClusterKey(claims: Record<string, unknown>): Promise<string> {
    const { material } = await new OidcKeyStore(a.store, kek).load();
    const { jwk } = material.signing[0];
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' })).toString(
      'base64url',
    );
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = sign(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      createPrivateKey({ key: jwk, format: 'jwk' }),
    ).toString('base64url');
    return `${header}.${payload}.${signature}`;
  }

  const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

  beforeAll(async () => {
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), 'orca-oidc-mm-'));
    // Distinct loopback addresses, so each manager's URL differs by host as real managers do.
    a = await manager('127.0.0.1', 'a');
    b = await manager('127.0.0.2', 'b');
    ca = await a.cas.clusterBundle();
    issuer = `${a.url}/oidc`;
    const directory = new Directory(a.store);
    aliceId = (await directory.create({ name: 'alice', password: 'alice-password', fullName: 'Alice' })).id;
    await directory.create({ name: 'eng', isOrg: true });
    await directory.setOrgMember('eng', 'alice', {});
    await directory.createTeam('eng', { name: 'dev' });
    await directory.setTeamMember('eng', 'dev', 'alice', {});
    configA = await client.discovery(new URL(issuer), 'kubernetes', undefined, client.None(), {
      [client.customFetch]: pinnedFetch(ca),
    });
    configB = await configFrom(b);
  }, 60_000);

  afterAll(async () => {
    await b?.close();
    if (!aClosed) await a?.close();
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("names the first manager's URL as the issuer in discovery at both, each with its own endpoints", async () => {
    expect(a.oidc.issuer).toBe(issuer);
    expect(b.oidc.issuer).toBe(issuer);
    const fromA = configA.serverMetadata();
    const fromB = configB.serverMetadata();
    expect(fromA.issuer).toBe(issuer);
    expect(fromB.issuer).toBe(issuer);
    // B's jwks_uri is B's own: an apiserver reading B's discovery needs nothing from A.
    expect(fromB.jwks_uri).toBe(`${b.url}/oidc/jwks`);
    expect(fromB.token_endpoint).toBe(`${b.url}/oidc/token`);
    const jwksA = (await exchange(ca, String(fromA.jwks_uri))).json();
    const jwksB = (await exchange(ca, String(fromB.jwks_uri))).json();
    expect(jwksB).toEqual(jwksA);
  });

  it("accepts at B the tokens of a code flow with PKCE at A: verify, userinfo, and refresh at B's token endpoint", async () => {
    const { final, verifier, state } = await signIn(configA, ca, 'alice', 'alice-password');
    tokens = await client.authorizationCodeGrant(configA, final, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()).toMatchObject({
      iss: issuer,
      aud: 'kubernetes',
      sub: aliceId,
      groups: ['eng:dev'],
    });
    expect(b.oidc.verifyIdToken(tokens.id_token!, 'kubernetes').sub).toBe(aliceId);
    const userinfo = await client.fetchUserInfo(configB, tokens.access_token, aliceId);
    expect(userinfo).toMatchObject({ sub: aliceId, preferred_username: 'alice', groups: ['eng:dev'] });
    // The refresh token (in the store) works at B; B's new ID token carries the same issuer.
    const refreshed = await client.refreshTokenGrant(configB, tokens.refresh_token!);
    expect(refreshed.claims()).toMatchObject({ iss: issuer, sub: aliceId });
    expect(a.oidc.verifyIdToken(refreshed.id_token!, 'kubernetes').preferred_username).toBe('alice');
    // B's access token is good at A's userinfo.
    expect(await client.fetchUserInfo(configA, refreshed.access_token, aliceId)).toMatchObject({
      sub: aliceId,
    });
    // A refresh token is used once (rotation): the one B consumed is refused at A.
    await expect(client.refreshTokenGrant(configA, tokens.refresh_token!)).rejects.toThrow();
    tokens = refreshed;
  });

  it("refuses a token of another issuer, even one signed with the cluster's key", async () => {
    const genuine = claimsOf(tokens.id_token!);
    // Each manager's own URL was its issuer before: such a token is foreign now.
    const ownUrlToken = await signedWithClusterKey({ ...genuine, iss: `${b.url}/oidc` });
    expect(() => b.oidc.verifyIdToken(ownUrlToken, 'kubernetes')).toThrow(/foreign issuer/);
    expect(() => a.oidc.verifyIdToken(ownUrlToken, 'kubernetes')).toThrow(/foreign issuer/);
    // The same claims with the cluster's issuer pass, so the issuer alone made the difference.
    expect(b.oidc.verifyIdToken(await signedWithClusterKey(genuine), 'kubernetes').sub).toBe(aliceId);
  });

  it('keeps the issuer for a manager that starts later or again, whatever its own address', async () => {
    const c = await manager('127.0.0.3', 'c');
    try {
      expect(c.oidc.issuer).toBe(issuer);
      expect((await configFrom(c)).serverMetadata().issuer).toBe(issuer);
      expect(c.oidc.verifyIdToken(tokens.id_token!, 'kubernetes').sub).toBe(aliceId);
    } finally {
      await c.close();
    }
  });

  it('lets an admin move the issuer (every manager follows) and refuses bad or unauthorized changes', async () => {
    const put = (auth: string, body: string) =>
      httpsCall(a.url, '/api/orca/v1/oidc/issuer', { method: 'PUT', auth, body, ca });
    const admin = basicAuth('admin', ADMIN_PASSWORD);
    expect(
      (await put(basicAuth('alice', 'alice-password'), JSON.stringify({ issuer: `${b.url}/oidc` }))).status,
    ).toBe(403);
    for (const bad of [
      '{"issuer": "http://127.0.0.1/oidc"}',
      '{"issuer": "https://127.0.0.1/other"}',
      '{}',
      '[]',
    ]) {
      const reply = await put(admin, bad);
      expect(reply.status).toBe(400);
    }
    const get = await httpsCall(a.url, '/api/orca/v1/oidc/issuer', { auth: admin, ca });
    expect(get.json()).toEqual({ issuer });

    const moved = 'https://managers.orca.test/oidc';
    const reply = await put(admin, JSON.stringify({ issuer: moved }));
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({ issuer: moved });
    try {
      expect(a.oidc.issuer).toBe(moved);
      // B follows its watch of the store.
      await until(() => b.oidc.issuer === moved);
      expect((await exchange(ca, `${b.url}/oidc/.well-known/openid-configuration`)).json().issuer).toBe(
        moved,
      );
      expect(() => b.oidc.verifyIdToken(tokens.id_token!, 'kubernetes')).toThrow(/foreign issuer/);
    } finally {
      expect((await put(admin, JSON.stringify({ issuer }))).status).toBe(200);
      await until(() => b.oidc.issuer === issuer);
    }
  });

  it("lets a real kube-apiserver, pointed at B's discovery, accept A's ID token with A down", async () => {
    const genuine = claimsOf(tokens.id_token!);
    const foreign = await signedWithClusterKey({ ...genuine, iss: `${b.url}/oidc` });
    // What the agent on manager B writes (libs/cluster's kubeNodeFiles), with B's controller URL.
    const authenticationConfig = join(dir, 'authentication.json');
    writeFileSync(
      authenticationConfig,
      JSON.stringify(kubeAuthenticationConfig({ issuer: b.oidc.issuer, controllerUrl: b.url, caPem: ca })),
    );
    await a.close();
    aClosed = true;
    const cluster = await startKubeCluster({
      etcd: { endpoints: etcd.endpoints },
      extraApiserverArgs: [`--authentication-config=${authenticationConfig}`],
    });
    try {
      const review = (token: string) =>
        httpsCall(cluster.server, '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
          method: 'POST',
          auth: `Bearer ${token}`,
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
          ca: cluster.ca.certPem,
        });
      // The JWT authenticator loads discovery and keys in the background after the start.
      let accepted = await review(tokens.id_token!);
      for (let i = 0; accepted.status === 401 && i < 60; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        accepted = await review(tokens.id_token!);
      }
      expect(accepted.status).toBe(201);
      // The same user and groups as the --oidc-* flags gave: preferred_username and groups, unprefixed.
      expect(accepted.json().status.userInfo).toMatchObject({
        username: 'alice',
        groups: expect.arrayContaining(['eng:dev', 'system:authenticated']),
      });
      expect((await review(foreign)).status).toBe(401);
    } finally {
      await cluster.stop();
    }
  }, 180_000);
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

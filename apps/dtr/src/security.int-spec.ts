// The security cases of the DTR reference (§5): each refused with the distribution-spec error,
// and nothing stored changed.
import { getAccount, Sessions } from '@orca/identity';
import { TokenSigner } from '@orca/registry';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dtrRequest, pushImage, registryToken, sha256, startTestDtr, type TestDtr } from './test-dtr.js';

const errorCode = (text: string) => (JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code;

describe('registry security cases', () => {
  let dtr: TestDtr;
  let alicePush: string;
  let bobPush: string;
  let secretDigest: string;
  const alice: [string, string] = ['alice', 'alice-password'];
  const bob: [string, string] = ['bob', 'bob-password'];

  /** Every key under DTR's prefix: what "nothing stored changed" compares. */
  const snapshot = async () =>
    (await dtr.store.range('/orca/v1/dtr/')).kvs
      .filter((kv) => !kv.key.includes('/signingkeys/'))
      .map((kv) => `${kv.key}=${kv.value}`);
  const blobFiles = () => {
    const root = join(dtr.dir, 'data', 'registry', 'blobs');
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : [e.name],
      );
    return walk(root).sort();
  };

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser('alice', alice[1]);
    await dtr.createUser('bob', bob[1]);
    for (const [user, repo] of [
      [alice, 'secret'],
      [bob, 'own'],
    ] as const) {
      const res = await dtrRequest(dtr, 'POST', `/api/v0/repositories/${user[0]}`, {
        basic: user,
        body: JSON.stringify({ name: repo, visibility: 'private' }),
      });
      expect(res.status).toBe(201);
    }
    alicePush = await registryToken(dtr, ['repository:alice/secret:pull,push,delete'], alice);
    bobPush = await registryToken(dtr, ['repository:bob/own:pull,push,delete'], bob);
    secretDigest = await pushImage(dtr, 'alice/secret', ['v1'], alicePush);
  }, 60_000);

  afterAll(async () => {
    await dtr?.close();
  });

  it.each([
    '/v2/alice/../bob/own/tags/list',
    '/v2/alice/%2e%2e/bob/tags/list',
    '/v2/alice/..%2fbob/tags/list',
    '/v2/ALICE/secret/tags/list',
    '/v2/alice//secret/tags/list',
    '/v2/alice/secret/../../../../etc/passwd',
    `/v2/alice/${'a'.repeat(300)}/tags/list`,
    '/v2/alice/secret/blobs/sha256:..%2f..%2fetc%2fpasswd',
    '/v2/alice/secret/blobs/sha256:../../../etc/passwd',
    '/v2/alice/secret/manifests/..%2f..%2fv1',
    '/v2/alice/secret/blobs/uploads/..%2f..%2fsecret',
  ])('refuses the path trick %s without touching files', async (path) => {
    const before = await snapshot();
    const res = await dtrRequest(dtr, 'GET', path, { bearer: alicePush });
    expect([400, 404]).toContain(res.status);
    expect([
      'NAME_INVALID',
      'NAME_UNKNOWN',
      'DIGEST_INVALID',
      'TAG_INVALID',
      'BLOB_UPLOAD_UNKNOWN',
      'MANIFEST_UNKNOWN',
    ]).toContain(errorCode(res.text));
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a blob whose content does not match its digest, monolithic or chunked', async () => {
    const before = await snapshot();
    const files = blobFiles();
    const claimed = sha256('what the client claims');
    const post = await dtrRequest(dtr, 'POST', `/v2/alice/secret/blobs/uploads/?digest=${claimed}`, {
      bearer: alicePush,
      body: 'something else',
    });
    expect(post.status).toBe(400);
    expect(errorCode(post.text)).toBe('DIGEST_INVALID');

    const start = await dtrRequest(dtr, 'POST', '/v2/alice/secret/blobs/uploads/', { bearer: alicePush });
    expect(start.status).toBe(202);
    const location = start.headers.location as string;
    const patch = await dtrRequest(dtr, 'PATCH', location, { bearer: alicePush, body: 'something else' });
    expect(patch.status).toBe(202);
    const put = await dtrRequest(dtr, 'PUT', `${location}?digest=${claimed}`, { bearer: alicePush });
    expect(put.status).toBe(400);
    expect(errorCode(put.text)).toBe('DIGEST_INVALID');
    // The failed upload is gone, and nothing is readable under either digest.
    expect((await dtrRequest(dtr, 'GET', location, { bearer: alicePush })).status).toBe(404);
    for (const digest of [claimed, sha256('something else')])
      expect(
        (await dtrRequest(dtr, 'HEAD', `/v2/alice/secret/blobs/${digest}`, { bearer: alicePush })).status,
      ).toBe(404);
    expect(await snapshot()).toEqual(before);
    expect(blobFiles()).toEqual(files);
  });

  it('refuses a manifest over 4 MiB with 413', async () => {
    const before = await snapshot();
    const big = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      annotations: { padding: 'x'.repeat(4 * 1024 * 1024) },
    });
    const res = await dtrRequest(dtr, 'PUT', '/v2/alice/secret/manifests/big', {
      bearer: alicePush,
      body: big,
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(413);
    expect(errorCode(res.text)).toBe('MANIFEST_INVALID');
    expect(await snapshot()).toEqual(before);
  });

  it('bounds the catalog and tag lists however large n is', async () => {
    await dtr.createUser('root', 'root-password', true);
    const token = await registryToken(dtr, ['registry:catalog:*'], ['root', 'root-password']);
    const huge = await dtrRequest(dtr, 'GET', '/v2/_catalog?n=999999999999999', { bearer: token });
    expect(huge.status).toBe(200);
    expect(huge.json<{ repositories: string[] }>().repositories).toEqual(['alice/secret', 'bob/own']);
    const paged = await dtrRequest(dtr, 'GET', '/v2/_catalog?n=1', { bearer: token });
    expect(paged.json()).toEqual({ repositories: ['alice/secret'] });
    expect(paged.headers.link).toBe('</v2/_catalog?n=1&last=alice%2Fsecret>; rel="next"');
    for (const n of ['-1', '1e9', '99999999999999999999999', 'abc']) {
      const bad = await dtrRequest(dtr, 'GET', `/v2/_catalog?n=${n}`, { bearer: token });
      expect(bad.status).toBe(400);
      expect(errorCode(bad.text)).toBe('PAGINATION_NUMBER_INVALID');
    }
    const tags = await dtrRequest(dtr, 'GET', '/v2/alice/secret/tags/list?n=999999999999999', {
      bearer: alicePush,
    });
    expect(tags.json()).toEqual({ name: 'alice/secret', tags: ['v1'] });
    // The catalog is for DTR admins: a user's token does not get it.
    const userToken = await registryToken(dtr, ['registry:catalog:*'], alice);
    expect((await dtrRequest(dtr, 'GET', '/v2/_catalog', { bearer: userToken })).status).toBe(401);
  });

  it('does not mount from a repository the user cannot pull (the upload starts instead)', async () => {
    const manifest = await dtrRequest(dtr, 'GET', `/v2/alice/secret/manifests/${secretDigest}`, {
      bearer: alicePush,
    });
    const layer = (manifest.json<{ layers: { digest: string }[] }>().layers[0] as { digest: string }).digest;
    const token = await registryToken(
      dtr,
      ['repository:bob/own:pull,push', 'repository:alice/secret:pull'],
      bob,
    );
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      access: unknown;
    };
    expect(claims.access).toEqual([
      { type: 'repository', name: 'bob/own', actions: ['pull', 'push'] },
      { type: 'repository', name: 'alice/secret', actions: [] },
    ]);
    const before = await snapshot();
    const mount = await dtrRequest(
      dtr,
      'POST',
      `/v2/bob/own/blobs/uploads/?mount=${layer}&from=alice/secret`,
      {
        bearer: token,
      },
    );
    expect(mount.status).toBe(202);
    expect((await dtrRequest(dtr, 'HEAD', `/v2/bob/own/blobs/${layer}`, { bearer: token })).status).toBe(404);
    // No blob was linked into bob/own: nothing changed in the store (bob's empty upload session
    // lives with the upload in blob storage).
    expect(await snapshot()).toEqual(before);
    expect(
      (await dtrRequest(dtr, 'DELETE', mount.headers.location as string, { bearer: token })).status,
    ).toBe(204);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses an upload session used from another repository', async () => {
    const start = await dtrRequest(dtr, 'POST', '/v2/alice/secret/blobs/uploads/', { bearer: alicePush });
    const id = start.headers['docker-upload-uuid'] as string;
    const before = await snapshot();
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const res = await dtrRequest(dtr, method, `/v2/bob/own/blobs/uploads/${id}?digest=${sha256('x')}`, {
        bearer: bobPush,
        body: method === 'PATCH' || method === 'PUT' ? 'x' : undefined,
      });
      expect(res.status).toBe(404);
      expect(errorCode(res.text)).toBe('BLOB_UPLOAD_UNKNOWN');
    }
    expect(await snapshot()).toEqual(before);
    expect(
      (await dtrRequest(dtr, 'GET', start.headers.location as string, { bearer: alicePush })).status,
    ).toBe(204);
  });

  it('grants no more than allowed, and a token works only where and while it is valid', async () => {
    const before = await snapshot();
    const greedy = await registryToken(dtr, ['repository:alice/secret:pull,push,delete,*'], bob);
    expect(JSON.parse(Buffer.from(greedy.split('.')[1]!, 'base64url').toString()).access).toEqual([
      { type: 'repository', name: 'alice/secret', actions: [] },
    ]);
    const denied = await dtrRequest(dtr, 'POST', '/v2/alice/secret/blobs/uploads/', { bearer: greedy });
    expect(denied.status).toBe(401);
    expect(errorCode(denied.text)).toBe('UNAUTHORIZED');
    expect(denied.headers['www-authenticate']).toContain('error="insufficient_scope"');
    // Replayed on another repository.
    expect((await dtrRequest(dtr, 'GET', '/v2/alice/secret/tags/list', { bearer: bobPush })).status).toBe(
      401,
    );
    // Anonymous: nothing on a private repository.
    const anonymous = await registryToken(dtr, ['repository:alice/secret:pull']);
    expect((await dtrRequest(dtr, 'GET', '/v2/alice/secret/tags/list', { bearer: anonymous })).status).toBe(
      401,
    );
    // Expired, or for another audience, or from a key DTR does not know.
    let now = Date.now() - 3600_000;
    const replica = new TokenSigner(dtr.store, dtr.kek, {
      issuer: dtr.dtr.registryHost,
      ttlSeconds: 60,
      rotateAfterMs: 86400_000,
      now: () => now,
    });
    const access = [{ type: 'repository', name: 'alice/secret', actions: ['pull'] }];
    const expired = (await replica.issue('alice', dtr.dtr.registryHost, access)).token;
    now = Date.now();
    const otherAudience = (await replica.issue('alice', 'elsewhere', access)).token;
    for (const token of [expired, otherAudience, `${alicePush.slice(0, -4)}AAAA`]) {
      const res = await dtrRequest(dtr, 'GET', '/v2/alice/secret/tags/list', { bearer: token });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    }
    // Wrong password at the token endpoint.
    const wrong = await dtrRequest(dtr, 'GET', '/auth/token?scope=repository:alice/secret:pull', {
      basic: ['alice', 'nope-nope'],
    });
    expect(wrong.status).toBe(401);
    const signingKeys = (await dtr.store.range('/orca/v1/dtr/signingkeys/')).kvs.length;
    expect(signingKeys).toBeGreaterThanOrEqual(1);
    expect(await snapshot()).toEqual(before);
  });

  it('issues tokens for an eNZi session token in Basic, and through the OAuth2 password grant', async () => {
    const session = await new Sessions(dtr.store).create((await getAccount(dtr.store, 'alice'))!);
    const viaSession = await registryToken(dtr, ['repository:alice/secret:pull'], ['alice', session]);
    expect((await dtrRequest(dtr, 'GET', '/v2/alice/secret/tags/list', { bearer: viaSession })).status).toBe(
      200,
    );
    // Another user's session does not stand in for alice's password.
    const stolen = await dtrRequest(dtr, 'GET', '/auth/token?scope=repository:bob/own:pull', {
      basic: ['bob', session],
    });
    expect(stolen.status).toBe(401);

    const form = (fields: Record<string, string>) =>
      dtrRequest(dtr, 'POST', '/auth/token', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const granted = await form({
      grant_type: 'password',
      username: 'bob',
      password: bob[1],
      service: dtr.dtr.registryHost,
      scope: 'repository:bob/own:pull,push repository:alice/secret:pull',
      client_id: 'containerd',
    });
    expect(granted.status).toBe(200);
    const token = granted.json<{ access_token: string; expires_in: number }>();
    expect(token.expires_in).toBe(300);
    expect(JSON.parse(Buffer.from(token.access_token.split('.')[1]!, 'base64url').toString()).access).toEqual(
      [
        { type: 'repository', name: 'bob/own', actions: ['pull', 'push'] },
        { type: 'repository', name: 'alice/secret', actions: [] },
      ],
    );
    expect((await form({ grant_type: 'password', username: 'bob', password: 'wrong-password' })).status).toBe(
      401,
    );
    expect((await form({ grant_type: 'authorization_code', code: 'x' })).json()).toMatchObject({
      error: 'unsupported_grant_type',
    });
  });

  it('issues refresh tokens (access_type=offline, offline_token=true) and trades them for access tokens', async () => {
    const form = (fields: Record<string, string>) =>
      dtrRequest(dtr, 'POST', '/auth/token', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const accessOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
        sub: string;
        access: unknown;
      };
    // What `docker login` sends: no scope, access_type=offline.
    const login = await form({
      grant_type: 'password',
      username: 'bob',
      password: bob[1],
      service: dtr.dtr.registryHost,
      client_id: 'docker',
      access_type: 'offline',
    });
    expect(login.status).toBe(200);
    const { refresh_token: refresh, scope } = login.json<{ refresh_token: string; scope: string }>();
    expect(refresh).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(scope).toBe('');
    // Without access_type=offline there is none.
    expect(
      (await form({ grant_type: 'password', username: 'bob', password: bob[1], client_id: 'docker' })).json(),
    ).not.toHaveProperty('refresh_token');

    const refreshed = await form({
      grant_type: 'refresh_token',
      refresh_token: refresh,
      service: dtr.dtr.registryHost,
      client_id: 'docker',
      scope: 'repository:bob/own:pull,push repository:alice/secret:pull',
    });
    expect(refreshed.status).toBe(200);
    const body = refreshed.json<{ access_token: string; refresh_token: string; scope: string }>();
    // The same refresh token comes back; the access is what bob may have, nothing of alice's.
    expect(body.refresh_token).toBe(refresh);
    expect(body.scope).toBe('repository:bob/own:pull,push');
    expect(accessOf(body.access_token)).toMatchObject({
      sub: 'bob',
      access: [
        { type: 'repository', name: 'bob/own', actions: ['pull', 'push'] },
        { type: 'repository', name: 'alice/secret', actions: [] },
      ],
    });
    expect(
      (await dtrRequest(dtr, 'GET', '/v2/bob/own/tags/list', { bearer: body.access_token })).status,
    ).not.toBe(401);

    // A made-up token, or bob's secret presented as alice's, is refused.
    const secret = refresh.slice(refresh.indexOf('.') + 1);
    for (const bogus of ['x', `${Buffer.from('alice').toString('base64url')}.${secret}`, `${refresh}x`]) {
      const refused = await form({ grant_type: 'refresh_token', refresh_token: bogus, client_id: 'docker' });
      expect(refused.status).toBe(400);
      expect(refused.json()).toMatchObject({ error: 'invalid_grant' });
    }

    // The GET form: offline_token=true with credentials adds one; anonymous requests never get one.
    const viaGet = await dtrRequest(dtr, 'GET', '/auth/token?offline_token=true&client_id=docker', {
      basic: bob,
    });
    expect(viaGet.json<{ refresh_token?: string }>().refresh_token).toMatch(/\./);
    const anonymous = await dtrRequest(dtr, 'GET', '/auth/token?offline_token=true');
    expect(anonymous.status).toBe(200);
    expect(anonymous.json()).not.toHaveProperty('refresh_token');
  });
});

// /api/v0 beyond repositories: access tokens (usable wherever the password is) and the tag and
// manifest listings, checked against DTR 2.5's Swagger document.
import { checkResponse } from '@orca/api';
import { dtrRequest, pushImage, registryToken, startTestDtr, type TestDtr } from './test-dtr.js';

describe('DTR /api/v0 tokens and listings', () => {
  let dtr: TestDtr;
  const alice: [string, string] = ['alice', 'alice-password'];
  const bob: [string, string] = ['bob', 'bob-password'];
  const root: [string, string] = ['root', 'root-password'];
  const json = (value: unknown) => JSON.stringify(value);

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser(...alice);
    await dtr.createUser(...bob);
    await dtr.createUser(...root, true);
    const res = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice', {
      basic: alice,
      body: json({ name: 'app', visibility: 'public' }),
    });
    expect(res.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await dtr?.close();
  });

  it('creates access tokens that work in place of the password until deactivated or deleted', async () => {
    const created = await dtrRequest(dtr, 'POST', '/api/v0/api_tokens', {
      basic: alice,
      body: json({ tokenLabel: 'ci' }),
      headers: { 'User-Agent': 'orca-test' },
    });
    expect(created.status).toBe(200);
    expect(checkResponse('dtr-2.5', 'post', '/api/v0/api_tokens', 200, created.json())).toEqual([]);
    const { token, hashedToken } = created.json<{ token: string; hashedToken: string }>();
    expect(created.json()).toMatchObject({ tokenLabel: 'ci', isActive: true, creatorUa: 'orca-test' });

    const withToken: [string, string] = ['alice', token];
    const registry = await registryToken(dtr, ['repository:alice/app:pull,push'], withToken);
    await pushImage(dtr, 'alice/app', ['v1'], registry);
    expect(
      (await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app', { basic: withToken })).status,
    ).toBe(200);
    // The token is alice's: not bob's password.
    expect((await dtrRequest(dtr, 'GET', '/api/v0/repositories', { basic: ['bob', token] })).status).toBe(
      401,
    );

    const listed = await dtrRequest(dtr, 'GET', '/api/v0/api_tokens', { basic: alice });
    expect(checkResponse('dtr-2.5', 'get', '/api/v0/api_tokens', 200, listed.json())).toEqual([]);
    expect(listed.json<{ hashedToken: string; lastUsed: string }[]>()).toEqual([
      expect.objectContaining({ hashedToken, lastUsed: expect.not.stringMatching(/^0001/) }),
    ]);
    expect(listed.text).not.toContain(token);
    // Others do not see it; an admin does.
    expect((await dtrRequest(dtr, 'GET', `/api/v0/api_tokens/${hashedToken}`, { basic: bob })).status).toBe(
      404,
    );
    expect((await dtrRequest(dtr, 'GET', '/api/v0/api_tokens?username=alice', { basic: bob })).status).toBe(
      403,
    );
    const asAdmin = await dtrRequest(dtr, 'GET', '/api/v0/api_tokens?username=alice', { basic: root });
    expect(asAdmin.json<unknown[]>()).toHaveLength(1);

    const off = await dtrRequest(dtr, 'PATCH', `/api/v0/api_tokens/${hashedToken}`, {
      basic: alice,
      body: json({ isActive: false }),
    });
    expect(checkResponse('dtr-2.5', 'patch', '/api/v0/api_tokens/{hashedtoken}', 200, off.json())).toEqual(
      [],
    );
    const refused = await dtrRequest(dtr, 'GET', '/auth/token?scope=repository:alice/app:pull', {
      basic: withToken,
    });
    expect(refused.status).toBe(401);
    await dtrRequest(dtr, 'PATCH', `/api/v0/api_tokens/${hashedToken}`, {
      basic: alice,
      body: json({ isActive: true }),
    });
    expect((await dtrRequest(dtr, 'GET', '/api/v0/repositories', { basic: withToken })).status).toBe(200);
    expect(
      (await dtrRequest(dtr, 'DELETE', `/api/v0/api_tokens/${hashedToken}`, { basic: alice })).status,
    ).toBe(200);
    expect((await dtrRequest(dtr, 'GET', '/api/v0/repositories', { basic: withToken })).status).toBe(401);
    expect((await dtrRequest(dtr, 'GET', `/api/v0/api_tokens/${hashedToken}`, { basic: alice })).status).toBe(
      404,
    );
  });

  it('lists tags and manifests with their platform and pusher', async () => {
    const registry = await registryToken(dtr, ['repository:alice/app:pull,push'], alice);
    const digest = await pushImage(dtr, 'alice/app', ['v1', 'v2', 'v3'], registry);
    const tags = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/tags?pageSize=2', {
      basic: bob,
    });
    expect(tags.status).toBe(200);
    expect(
      checkResponse('dtr-2.5', 'get', '/api/v0/repositories/{namespace}/{reponame}/tags', 200, tags.json()),
    ).toEqual([]);
    expect(tags.json<{ name: string }[]>().map((t) => t.name)).toEqual(['v1', 'v2']);
    expect(tags.headers['x-next-page-start']).toBe('v3');
    expect(tags.json<unknown[]>()[0]).toMatchObject({
      digest,
      author: 'alice',
      inNotary: false,
      manifest: {
        digest,
        os: 'linux',
        architecture: 'amd64',
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      },
    });
    const one = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/tags/v3', { basic: bob });
    expect(one.json<{ name: string }[]>().map((t) => t.name)).toEqual(['v3']);
    const manifests = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/manifests', {
      basic: bob,
    });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/manifests',
        200,
        manifests.json(),
      ),
    ).toEqual([]);
    expect(manifests.json<{ digest: string }[]>().map((m) => m.digest)).toContain(digest);
    // Deleting a tag needs write access: bob can read alice's public repository only.
    expect(
      (await dtrRequest(dtr, 'DELETE', '/api/v0/repositories/alice/app/tags/v3', { basic: bob })).status,
    ).toBe(403);
    expect(
      (await dtrRequest(dtr, 'DELETE', '/api/v0/repositories/alice/app/tags/v3', { basic: alice })).status,
    ).toBe(204);
    const gone = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/tags/v3', { basic: alice });
    expect(gone.status).toBe(404);
    expect(gone.json()).toEqual({ errors: [{ code: 'NO_SUCH_TAG', message: expect.any(String) }] });
  });

  it('answers bad input with DTR errors, never a 500', async () => {
    for (const [method, path, body] of [
      ['POST', '/api/v0/repositories/alice', '{not json'],
      ['POST', '/api/v0/repositories/alice', json({ name: '../etc' })],
      ['POST', '/api/v0/repositories/alice', json({ name: 'x', visibility: 'secret' })],
      ['POST', '/api/v0/repositories/nobody', json({ name: 'x' })],
      ['PATCH', '/api/v0/repositories/alice/app', json([1])],
      ['GET', '/api/v0/repositories/alice/..%2f..', undefined],
      ['GET', '/api/v0/repositories?pageSize=-3', undefined],
      ['PUT', '/api/v0/repositories/alice/app/teamAccess/x', json({ accessLevel: 'owner' })],
      ['GET', '/api/v0/api_tokens/not-a-hash', undefined],
      ['GET', '/api/v0/nothing/here', undefined],
    ] as const) {
      const res = await dtrRequest(dtr, method, path, { basic: alice, body });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.json<{ errors: { code: string }[] }>().errors[0]!.code).toMatch(/^[A-Z_]+$/);
    }
  });
});

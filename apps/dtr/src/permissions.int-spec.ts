// DTR's permission matrix (permission-levels.md) through the real token flow: for each subject and
// repository, pull, push, delete and mount are allowed or refused as DTR documents. Team access is
// set through /api/v0 and the responses are checked against DTR 2.5's Swagger document.
import { checkResponse } from '@orca/api';
import {
  dtrRequest,
  pushBlob,
  pushImage,
  registryToken,
  sha256,
  startTestDtr,
  type TestDtr,
} from './test-dtr.js';

type Op = 'pull' | 'push' | 'delete' | 'mount';
const ALL: Op[] = ['pull', 'push', 'delete', 'mount'];
const READ: Op[] = ['pull', 'mount'];

const password = (user: string) => `${user}-password`;

describe('DTR permission matrix', () => {
  let dtr: TestDtr;
  const users = ['admin1', 'olga', 'oscar', 'rita', 'will', 'adam', 'nina', 'nobody'];
  const api = (user: string, method: string, path: string, body?: unknown) =>
    dtrRequest(dtr, method, path, {
      basic: [user, password(user)],
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser('admin1', password('admin1'), true);
    for (const user of users.slice(1)) await dtr.createUser(user, password(user));
    await dtr.createOrg('eng');
    const d = dtr.directory;
    for (const user of ['oscar', 'rita', 'will', 'adam', 'nina'])
      await d.setOrgMember('eng', user, { isAdmin: user === 'oscar' });
    for (const [team, member] of [
      ['ro', 'rita'],
      ['rw', 'will'],
      ['adm', 'adam'],
      ['nsrw', 'nina'],
    ] as const) {
      await d.createTeam('eng', { name: team });
      await d.setTeamMember('eng', team, member, {});
    }
    // Repositories: made by their namespace admins through the API.
    for (const [user, ns, name, visibility] of [
      ['oscar', 'eng', 'private', 'private'],
      ['oscar', 'eng', 'public', 'public'],
      ['olga', 'olga', 'private', 'private'],
    ] as const) {
      const res = await api(user, 'POST', `/api/v0/repositories/${ns}`, { name, visibility });
      expect(res.status).toBe(201);
      expect(checkResponse('dtr-2.5', 'post', '/api/v0/repositories/{namespace}', 201, res.json())).toEqual(
        [],
      );
    }
    // Each user's own scratch repository is the target of their mounts.
    for (const user of users)
      expect((await api(user, 'POST', `/api/v0/repositories/${user}`, { name: 'scratch' })).status).toBe(201);
    for (const [team, level] of [
      ['ro', 'read-only'],
      ['rw', 'read-write'],
      ['adm', 'admin'],
    ]) {
      const res = await api('oscar', 'PUT', `/api/v0/repositories/eng/private/teamAccess/${team}`, {
        accessLevel: level,
      });
      expect(res.status).toBe(200);
      expect(
        checkResponse(
          'dtr-2.5',
          'put',
          '/api/v0/repositories/{namespace}/{reponame}/teamAccess/{teamname}',
          200,
          res.json(),
        ),
      ).toEqual([]);
    }
    const ns = await api('oscar', 'PUT', '/api/v0/repositoryNamespaces/eng/teamAccess/nsrw', {
      accessLevel: 'read-write',
    });
    expect(ns.status).toBe(200);
    expect(
      checkResponse(
        'dtr-2.5',
        'put',
        '/api/v0/repositoryNamespaces/{namespace}/teamAccess/{teamname}',
        200,
        ns.json(),
      ),
    ).toEqual([]);
    // Content: one image per repository, with a tag per subject to delete.
    for (const repo of ['eng/private', 'eng/public', 'olga/private']) {
      const owner = repo.startsWith('olga') ? 'olga' : 'oscar';
      const token = await registryToken(dtr, [`repository:${repo}:pull,push`], [owner, password(owner)]);
      await pushImage(
        dtr,
        repo,
        ['latest', ...[...users, 'anonymous'].map((u) => `del-${u}`)],
        token,
        'shared',
      );
    }
  }, 120_000);

  afterAll(async () => {
    await dtr?.close();
  });

  const layer = sha256('layer of shared');

  async function attempt(user: string | undefined, repo: string, op: Op): Promise<boolean> {
    const creds: [string, string] | undefined = user ? [user, password(user)] : undefined;
    const who = user ?? 'anonymous';
    if (op === 'mount') {
      if (!user) return false;
      const token = await registryToken(
        dtr,
        [`repository:${user}/scratch:pull,push`, `repository:${repo}:pull`],
        creds,
      );
      const res = await dtrRequest(
        dtr,
        'POST',
        `/v2/${user}/scratch/blobs/uploads/?mount=${layer}&from=${repo}`,
        { bearer: token },
      );
      expect([201, 202]).toContain(res.status);
      if (res.status === 202)
        await dtrRequest(dtr, 'DELETE', res.headers.location as string, { bearer: token });
      else await dtrRequest(dtr, 'DELETE', `/v2/${user}/scratch/blobs/${layer}`, { bearer: token });
      return res.status === 201;
    }
    const actions = op === 'pull' ? 'pull' : op === 'push' ? 'pull,push' : 'delete';
    const token = await registryToken(dtr, [`repository:${repo}:${actions}`], creds);
    let status: number;
    if (op === 'pull')
      status = (await dtrRequest(dtr, 'GET', `/v2/${repo}/manifests/latest`, { bearer: token })).status;
    else if (op === 'push') status = await pushBlob(dtr, repo, `pushed by ${who} to ${repo}`, token);
    else
      status = (await dtrRequest(dtr, 'DELETE', `/v2/${repo}/manifests/del-${who}`, { bearer: token }))
        .status;
    if (status === 401) return false;
    expect(status).toBe(op === 'pull' ? 200 : op === 'push' ? 201 : 202);
    return true;
  }

  const matrix: [string | undefined, Record<string, Op[]>][] = [
    ['admin1', { 'eng/private': ALL, 'eng/public': ALL, 'olga/private': ALL }],
    ['olga', { 'eng/private': [], 'eng/public': READ, 'olga/private': ALL }],
    ['oscar', { 'eng/private': ALL, 'eng/public': ALL, 'olga/private': [] }],
    ['rita', { 'eng/private': READ, 'eng/public': READ, 'olga/private': [] }],
    ['will', { 'eng/private': ALL, 'eng/public': READ, 'olga/private': [] }],
    ['adam', { 'eng/private': ALL, 'eng/public': READ, 'olga/private': [] }],
    ['nina', { 'eng/private': ALL, 'eng/public': ALL, 'olga/private': [] }],
    ['nobody', { 'eng/private': [], 'eng/public': READ, 'olga/private': [] }],
    [undefined, { 'eng/private': [], 'eng/public': ['pull'], 'olga/private': [] }],
  ];

  it.each(matrix.map(([user, expected]) => [user ?? 'anonymous', user, expected] as const))(
    '%s',
    async (_label, user, expected) => {
      for (const [repo, allowed] of Object.entries(expected)) {
        const got: Op[] = [];
        for (const op of ALL) if (await attempt(user, repo, op)) got.push(op);
        expect({ repo, ops: got }).toEqual({ repo, ops: allowed });
      }
    },
  );

  it('shows private repositories only to those who may read them', async () => {
    const list = async (user?: string) => {
      const res = user
        ? await api(user, 'GET', '/api/v0/repositories?pageSize=100')
        : await dtrRequest(dtr, 'GET', '/api/v0/repositories?pageSize=100');
      expect(res.status).toBe(200);
      expect(checkResponse('dtr-2.5', 'get', '/api/v0/repositories', 200, res.json())).toEqual([]);
      return res
        .json<{ repositories: { namespace: string; name: string }[] }>()
        .repositories.map((r) => `${r.namespace}/${r.name}`)
        .filter((r) => !r.endsWith('/scratch'));
    };
    expect(await list('rita')).toEqual(['eng/private', 'eng/public']);
    expect(await list('olga')).toEqual(['eng/public', 'olga/private']);
    expect(await list()).toEqual(['eng/public']);
    const hidden = await api('nobody', 'GET', '/api/v0/repositories/eng/private');
    expect(hidden.status).toBe(404);
    expect(hidden.json()).toEqual({ errors: [{ code: 'NO_SUCH_REPOSITORY', message: expect.any(String) }] });
    // Only repository admins change visibility or delete.
    expect(
      (await api('will', 'PATCH', '/api/v0/repositories/eng/private', { visibility: 'public' })).status,
    ).toBe(403);
    const patched = await api('adam', 'PATCH', '/api/v0/repositories/eng/private', {
      shortDescription: 'docs',
    });
    expect(patched.status).toBe(200);
    expect(
      checkResponse('dtr-2.5', 'patch', '/api/v0/repositories/{namespace}/{reponame}', 200, patched.json()),
    ).toEqual([]);
    expect((await api('rita', 'DELETE', '/api/v0/repositories/eng/private')).status).toBe(403);
    expect((await api('olga', 'POST', '/api/v0/repositories/eng', { name: 'intruder' })).status).toBe(403);
    expect((await dtrRequest(dtr, 'POST', '/api/v0/repositories/eng', { body: '{"name":"x"}' })).status).toBe(
      401,
    );
  });

  it("reports a user's access level on a repository", async () => {
    const path = (user: string, repo: string) => `/api/v0/accounts/${user}/repositoryAccess/${repo}`;
    for (const [user, repo, level] of [
      ['rita', 'eng/private', 'read-only'],
      ['will', 'eng/private', 'read-write'],
      ['oscar', 'eng/private', 'admin'],
      ['nina', 'eng/private', 'read-write'],
      ['olga', 'eng/public', 'read-only'],
      ['olga', 'olga/private', 'admin'],
    ] as const) {
      const res = await api(user, 'GET', path(user, repo));
      expect(res.status).toBe(200);
      expect(
        checkResponse(
          'dtr-2.5',
          'get',
          '/api/v0/accounts/{username}/repositoryAccess/{namespace}/{reponame}',
          200,
          res.json(),
        ),
      ).toEqual([]);
      expect(res.json()).toMatchObject({ accessLevel: level, user: { name: user } });
    }
    expect((await api('nobody', 'GET', path('nobody', 'eng/private'))).status).toBe(404);
    expect((await api('rita', 'GET', path('will', 'eng/private'))).status).toBe(403);
    expect((await api('admin1', 'GET', path('will', 'eng/private'))).json()).toMatchObject({
      accessLevel: 'read-write',
    });
  });

  it('pages repositories with pageStart/pageSize and X-Next-Page-Start', async () => {
    const first = await api('admin1', 'GET', '/api/v0/repositories?pageSize=2');
    const next = first.headers['x-next-page-start'] as string;
    expect(first.json<{ repositories: unknown[] }>().repositories).toHaveLength(2);
    expect(next).toMatch(/^[0-9a-f-]{36}$/);
    const second = await api('admin1', 'GET', `/api/v0/repositories?pageSize=2&pageStart=${next}`);
    expect(second.json<{ repositories: { id: string }[] }>().repositories[0]!.id).toBe(next);
  });

  it('creates a repository on push only when createRepositoryOnPush is on', async () => {
    const olga: [string, string] = ['olga', password('olga')];
    const before = await registryToken(dtr, ['repository:olga/fresh:pull,push'], olga);
    expect(await pushBlob(dtr, 'olga/fresh', 'x', before)).toBe(401);
    expect(
      (await api('olga', 'POST', '/api/v0/meta/settings', { createRepositoryOnPush: true })).status,
    ).toBe(403);
    expect(
      (await api('admin1', 'POST', '/api/v0/meta/settings', { createRepositoryOnPush: true })).status,
    ).toBe(202);
    const settings = await api('admin1', 'GET', '/api/v0/meta/settings');
    expect(checkResponse('dtr-2.5', 'get', '/api/v0/meta/settings', 200, settings.json())).toEqual([]);
    expect(settings.json()).toMatchObject({ createRepositoryOnPush: true });
    const after = await registryToken(dtr, ['repository:olga/fresh:pull,push'], olga);
    expect(await pushBlob(dtr, 'olga/fresh', 'x', after)).toBe(201);
    const created = await api('olga', 'GET', '/api/v0/repositories/olga/fresh');
    expect(created.json()).toMatchObject({
      namespace: 'olga',
      name: 'fresh',
      visibility: 'private',
      namespaceType: 'user',
    });
    // Not in someone else's namespace.
    const intruder = await registryToken(dtr, ['repository:eng/fresh:pull,push'], ['rita', password('rita')]);
    expect(await pushBlob(dtr, 'eng/fresh', 'x', intruder)).toBe(401);
    await api('admin1', 'POST', '/api/v0/meta/settings', { createRepositoryOnPush: false });
  });

  it("keeps tags of an immutable repository from being overwritten, with DTR's message", async () => {
    const olga: [string, string] = ['olga', password('olga')];
    expect(
      (await api('olga', 'PATCH', '/api/v0/repositories/olga/private', { immutableTags: true })).status,
    ).toBe(200);
    const token = await registryToken(dtr, ['repository:olga/private:pull,push'], olga);
    await pushImage(dtr, 'olga/private', ['latest'], token, 'shared');
    await expect(pushImage(dtr, 'olga/private', ['latest'], token, 'different')).rejects.toThrow(
      `tag=latest cannot be overwritten because ${dtr.dtr.registryHost}/olga/private is an immutable repository`,
    );
    await pushImage(dtr, 'olga/private', ['new-tag'], token, 'different');
    expect(
      (await api('olga', 'PATCH', '/api/v0/repositories/olga/private', { immutableTags: false })).status,
    ).toBe(200);
  });
});

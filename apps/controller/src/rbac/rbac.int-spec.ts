// The RBAC API against a real controller (embedded store): exact shapes, paging, errors (never a
// 500) and the UCP Swagger contract for /roles, /collections and /collectionGrants.
import { checkResponse } from '@orca/api';
import { loadControllerConfig } from '@orca/config';
import { accountKey, hashPassword, keys } from '@orca/identity';
import { freePort, httpsCall, type HttpsReply } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';

describe('RBAC API (embedded store)', () => {
  let dir: string;
  let controller: RunningController;
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const ADMIN = basic('admin', 'orca-admin-pass');
  const JOE = basic('joe', 'joe-pass-123');
  let joeId: string;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    auth: string | null = ADMIN,
  ): Promise<HttpsReply> => httpsCall(controller.url, path, { method, body, auth: auth ?? undefined });

  const expectError = (reply: HttpsReply, status: number) => {
    expect(reply.status).toBe(status);
    expect(reply.json()).toEqual({ errors: [{ code: expect.any(String), message: expect.any(String) }] });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-rbac-int-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    // A non-admin account, written directly until the identity API creates users.
    joeId = '6b0c1b0e-2c1e-4d7e-9d55-0f0e0b0a0c01';
    await controller.store.put(
      accountKey('joe'),
      JSON.stringify({
        id: joeId,
        name: 'joe',
        fullName: 'Joe',
        isOrg: false,
        isAdmin: false,
        isActive: true,
        isImported: false,
        passwordHash: await hashPassword('joe-pass-123'),
        createdAt: new Date().toISOString(),
      }),
    );
    // The id index, so joe is found by id (default collections are refused for unknown users).
    await controller.store.put(keys.accountId(joeId), 'joe');
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the built-in roles and creates, reads and deletes a custom role', async () => {
    const list = await call('GET', '/roles');
    expect(list.status).toBe(200);
    expect(checkResponse('ucp-3.0', 'get', '/roles', 200, list.json())).toEqual([]);
    expect((list.json() as { id: string }[]).map((r) => r.id)).toEqual([
      'none',
      'viewonly',
      'restrictedcontrol',
      'scheduler',
      'fullcontrol',
    ]);
    const full = await call('GET', '/roles/fullcontrol');
    expect(checkResponse('ucp-3.0', 'get', '/roles/{role}', 200, full.json())).toEqual([]);
    expect(full.json()).toMatchObject({ id: 'fullcontrol', name: 'Full Control', system_role: true });

    const created = await call('POST', '/roles', {
      name: 'developer',
      system_role: false,
      operations: {
        Container: {
          'Container Attach': [],
          'Container Exec': [],
          'Container Logs': [],
          'Container View': [],
        },
        Service: { 'Service Logs': [], 'Service View': [], 'Service View Tasks': [] },
      },
    });
    expect(created.status).toBe(201);
    expect(created.json()).toEqual({ id: expect.any(String) });
    const id = (created.json() as { id: string }).id;
    const got = await call('GET', `/roles/${id}`);
    expect(got.json()).toEqual({
      id,
      name: 'developer',
      system_role: false,
      operations: {
        Container: {
          'Container Attach': [],
          'Container Exec': [],
          'Container Logs': [],
          'Container View': [],
        },
        Service: { 'Service Logs': [], 'Service View': [], 'Service View Tasks': [] },
      },
    });
    expect(checkResponse('ucp-3.0', 'get', '/roles/{role}', 200, got.json())).toEqual([]);
    const removed = await call('DELETE', `/roles/${id}`);
    expect(removed.status).toBe(204);
    expect(removed.text).toBe('');
    expectError(await call('GET', `/roles/${id}`), 404);
  });

  it('refuses bad role bodies, built-in deletion and unknown roles', async () => {
    expectError(await call('POST', '/roles', '{"name": "broken",'), 400);
    expectError(await call('POST', '/roles', { name: 7 }), 400);
    expectError(await call('POST', '/roles', { name: 'x', operations: [] }), 400);
    expectError(
      await call('POST', '/roles', { name: 'x', operations: { Container: { 'Container Fly': [] } } }),
      400,
    );
    expectError(await call('POST', '/roles', 'null'), 400);
    expectError(await call('DELETE', '/roles/fullcontrol'), 403);
    expectError(await call('DELETE', '/roles/no-such-role'), 404);
    expectError(await call('GET', '/roles/no-such-role'), 404);
  });

  it('creates nested collections and pages through them', async () => {
    const prod = await call('POST', '/collections', { name: 'prod', path: '/', parent_id: 'swarm' });
    expect(prod.status).toBe(201);
    expect(prod.json()).toEqual({ id: expect.any(String) });
    expect(checkResponse('ucp-3.0', 'post', '/collections', 201, prod.json())).toEqual([]);
    const prodId = (prod.json() as { id: string }).id;
    const mobile = await call('POST', '/collections', { name: 'mobile', parent_id: 'shared' });
    expect(mobile.status).toBe(201);

    const one = await call('GET', `/collections/${prodId}`);
    expect(checkResponse('ucp-3.0', 'get', '/collections/{id}', 200, one.json())).toEqual([]);
    expect(one.json()).toEqual({
      name: 'prod',
      path: '/prod',
      id: prodId,
      parent_ids: ['swarm'],
      label_constraints: [],
      legacylabelkey: '',
      legacylabelvalue: '',
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const byPath = await call('GET', '/collectionByPath?path=%2FShared%2Fmobile');
    expect(byPath.json()).toMatchObject({ name: 'mobile', parent_ids: ['swarm', 'shared'] });
    expect(checkResponse('ucp-3.0', 'get', '/collectionByPath', 200, byPath.json())).toEqual([]);

    const all = await call('GET', '/collections?limit=0');
    expect(checkResponse('ucp-3.0', 'get', '/collections', 200, all.json())).toEqual([]);
    const ids = (all.json() as { id: string }[]).map((c) => c.id);
    // 5 built-ins, prod, mobile and the admin's private collection (made when the admin first looks).
    expect(ids).toHaveLength(8);
    expect((all.json() as { path: string }[]).map((c) => c.path)).toContain('/Shared/Private/admin');
    const first = await call('GET', '/collections?limit=3');
    expect((first.json() as { id: string }[]).map((c) => c.id)).toEqual(ids.slice(0, 3));
    const second = await call('GET', `/collections?limit=3&start=${ids[3]}`);
    expect((second.json() as { id: string }[]).map((c) => c.id)).toEqual(ids.slice(3, 6));
    expect(((await call('GET', '/collections')).json() as unknown[]).length).toBe(8);

    const children = await call('GET', '/collections/swarm/children?limit=0');
    expect(checkResponse('ucp-3.0', 'get', '/collections/{id}/children', 200, children.json())).toEqual([]);
    expect((children.json() as { path: string }[]).map((c) => c.path).sort()).toEqual([
      '/Shared',
      '/System',
      '/prod',
    ]);

    const patched = await call('PATCH', `/collections/${prodId}`, {
      label_constraints: [{ type: 'node', label_key: 'disk', label_value: 'ssd', equality: true }],
    });
    expect(patched.status).toBe(200);
    expect(
      ((await call('GET', `/collections/${prodId}`)).json() as { label_constraints: unknown[] })
        .label_constraints,
    ).toHaveLength(1);
  });

  it('refuses bad collection requests', async () => {
    expectError(await call('POST', '/collections', '{'), 400);
    expectError(await call('POST', '/collections', { name: ['x'], parent_id: 'swarm' }), 400);
    expectError(await call('POST', '/collections', { name: 'x', parent_id: 'no-such' }), 404);
    expectError(await call('POST', '/collections', { name: 'System', parent_id: 'swarm' }), 409);
    expectError(await call('GET', '/collections?limit=ten'), 400);
    expectError(await call('GET', '/collections/no-such'), 404);
    expectError(await call('GET', '/collectionByPath?path=relative'), 400);
    expectError(await call('GET', '/collectionByPath?path=%2Fnope'), 404);
    expectError(await call('DELETE', '/collections/shared'), 403);
    expectError(await call('PATCH', '/collections/shared', { label_constraints: 'x' }), 400);
    expectError(await call('DELETE', '/collections/no-such'), 404);
  });

  it('puts, lists, pages and deletes grants; a role in use cannot be deleted', async () => {
    const role = (
      await call('POST', '/roles', { name: 'logs', operations: { Container: { 'Container Logs': [] } } })
    ).json() as { id: string };
    const put = await call('PUT', `/collectionGrants/${joeId}/shared/${role.id}`, '{}');
    expect(put.status).toBe(201);
    expect((await call('PUT', `/collectionGrants/team-1/swarm/viewonly`)).status).toBe(201);
    expect((await call('PUT', `/collectionGrants/team-1/shared/viewonly`)).status).toBe(201);
    const ns = await call(
      'PUT',
      '/collectionGrants/system%3Aserviceaccount%3Akube-system%3Atiller/kubernetesnamespaces/fullcontrol?type=grantobject',
    );
    expect(ns.status).toBe(201);

    const inUse = await call('DELETE', `/roles/${role.id}`);
    expectError(inUse, 409);
    expect((inUse.json() as { errors: { message: string }[] }).errors[0].message).toMatch(/used by 1 grant/);

    const list = await call(
      'GET',
      '/collectionGrants?subjectType=all&expandUser=false&showPaths=false&limit=200',
    );
    expect(list.status).toBe(200);
    expect(checkResponse('ucp-3.0', 'get', '/collectionGrants', 200, list.json())).toEqual([]);
    const body = list.json() as {
      grants: unknown[];
      subjects: { id: string }[];
      nextPageStart: string;
      resourceCount: number;
    };
    expect(body.resourceCount).toBe(4);
    expect(body.nextPageStart).toBe('');
    expect(body.grants).toContainEqual({ subjectID: joeId, objectID: 'shared', roleID: role.id });
    expect(body.subjects.map((s) => s.id).sort()).toEqual(
      [joeId, 'system:serviceaccount:kube-system:tiller', 'team-1'].sort(),
    );

    const page1 = (await call('GET', '/collectionGrants?limit=2')).json() as {
      grants: unknown[];
      nextPageStart: string;
    };
    expect(page1.grants).toHaveLength(2);
    expect(page1.nextPageStart).not.toBe('');
    const page2 = (
      await call('GET', `/collectionGrants?limit=2&start=${encodeURIComponent(page1.nextPageStart)}`)
    ).json() as { grants: unknown[]; nextPageStart: string };
    expect(page2.grants).toHaveLength(2);
    expect(page2.nextPageStart).toBe('');
    expect([...page1.grants, ...page2.grants]).toEqual(body.grants);

    const filtered = (await call('GET', '/collectionGrants?subjectID=team-1&objectID=shared')).json() as {
      grants: unknown[];
    };
    expect(filtered.grants).toEqual([{ subjectID: 'team-1', objectID: 'shared', roleID: 'viewonly' }]);
    const byRole = (await call('GET', `/collectionGrants?roleID=viewonly`)).json() as {
      resourceCount: number;
    };
    expect(byRole.resourceCount).toBe(2);

    expect((await call('DELETE', `/collectionGrants/${joeId}/shared/${role.id}`)).status).toBe(204);
    expect((await call('DELETE', `/roles/${role.id}`)).status).toBe(204);
  });

  it('refuses bad grants', async () => {
    expectError(await call('PUT', '/collectionGrants/u1/no-such-collection/viewonly'), 404);
    expectError(await call('PUT', '/collectionGrants/u1/shared/no-such-role'), 404);
    expectError(await call('PUT', '/collectionGrants/u1/shared/viewonly?type=bogus'), 400);
    expectError(await call('DELETE', '/collectionGrants/u1/shared/viewonly'), 404);
    expectError(await call('GET', '/collectionGrants?subjectType=robot'), 400);
    expectError(await call('GET', '/collectionGrants?expandUser=maybe'), 400);
    expectError(await call('GET', '/collectionGrants?limit=-1'), 400);
  });

  it('lets only admins manage; non-admins see their own view', async () => {
    expectError(await call('GET', '/roles', undefined, null), 401);
    expectError(await call('GET', '/roles', undefined, basic('joe', 'wrong')), 401);
    expectError(await call('POST', '/roles', { name: 'mine' }, JOE), 403);
    expectError(await call('DELETE', '/roles/viewonly', undefined, JOE), 403);
    expectError(await call('POST', '/collections', { name: 'mine', parent_id: 'shared' }, JOE), 403);
    expectError(await call('DELETE', '/collections/shared', undefined, JOE), 403);
    expectError(await call('PATCH', '/collections/shared', { label_constraints: [] }, JOE), 403);
    expectError(await call('PUT', `/collectionGrants/${joeId}/swarm/fullcontrol`, undefined, JOE), 403);
    expectError(await call('DELETE', `/collectionGrants/${joeId}/swarm/fullcontrol`, undefined, JOE), 403);
    expectError(await call('GET', '/collectionGrants', undefined, JOE), 403);
    expectError(await call('GET', '/defaultCollection/someone-else', undefined, JOE), 403);

    expect((await call('GET', '/roles', undefined, JOE)).status).toBe(200);
    // Joe sees /Shared and below (default Scheduler grant), not / or /System.
    const visible = (await call('GET', '/collections?limit=0', undefined, JOE)).json() as { path: string }[];
    expect(visible.map((c) => c.path)).not.toContain('/System');
    expect(visible.map((c) => c.path)).toContain('/Shared');
    expect(visible.map((c) => c.path)).toContain('/Shared/Private/joe');
    expectError(await call('GET', '/collections/system', undefined, JOE), 404);

    const total = await call('GET', '/totalRole', undefined, JOE);
    expect(checkResponse('ucp-3.0', 'get', '/totalRole', 200, total.json())).toEqual([]);
    expect((total.json() as { operations: Record<string, unknown> }[])[0].operations).toHaveProperty('Node');
    const defaultRole = await call('GET', '/defaultCollectionRole', undefined, JOE);
    expect(checkResponse('ucp-3.0', 'get', '/defaultCollectionRole', 200, defaultRole.json())).toEqual([]);
  });

  it('keeps default collections per user', async () => {
    const own = await call('GET', `/defaultCollection/${joeId}`, undefined, JOE);
    expect(own.json()).toMatchObject({ path: '/Shared/Private/joe', name: 'joe' });
    expect(checkResponse('ucp-3.0', 'get', '/defaultCollection/{userID}', 200, own.json())).toEqual([]);
    expect((await call('PUT', `/defaultCollection/${joeId}`, { id: 'system' })).status).toBe(201);
    expect((await call('GET', `/defaultCollection/${joeId}`)).json()).toMatchObject({ id: 'system' });
    expectError(await call('PUT', `/defaultCollection/${joeId}`, { id: 42 }), 400);
    expectError(await call('PUT', `/defaultCollection/${joeId}`, { id: 'no-such' }), 404);
    expect((await call('DELETE', `/defaultCollection/${joeId}`)).status).toBe(204);
  });
});

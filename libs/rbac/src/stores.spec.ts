// Roles, collections and grants on the embedded store (a temporary directory per test).
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authorizer } from './authorize.js';
import {
  collectionLabels,
  createCollection,
  deleteCollection,
  ensurePrivateCollection,
  findCollectionByPath,
  getCollection,
  getDefaultCollection,
  listCollections,
  setDefaultCollection,
  updateCollection,
} from './collections.js';
import { deleteGrant, listGrants, putGrant } from './grants.js';
import { createRole, deleteRole, getRole, listRoles } from './roles.js';

describe('rbac stores', () => {
  let dir: string;
  let store: EmbeddedStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-rbac-'));
    store = new EmbeddedStore({ dir });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 0;
    } catch (error) {
      return (error as { status: number }).status;
    }
  };

  it('creates, reads and deletes custom roles; refuses bad bodies, built-ins and roles in use', async () => {
    const role = await createRole(store, {
      name: 'developer',
      system_role: false,
      operations: { Container: { 'Container Logs': [], 'Container View': [] } },
    });
    expect(await getRole(store, role.id)).toEqual({
      id: role.id,
      name: 'developer',
      system_role: false,
      operations: { Container: { 'Container Logs': [], 'Container View': [] } },
    });
    expect(await getRole(store, 'developer')).toMatchObject({ id: role.id });
    expect((await listRoles(store)).map((r) => r.id)).toEqual([
      'none',
      'viewonly',
      'restrictedcontrol',
      'scheduler',
      'fullcontrol',
      role.id,
    ]);
    expect(await status(createRole(store, { name: 'developer' }))).toBe(409);
    expect(
      await status(createRole(store, { name: 'x', operations: { Container: { 'Node View': [] } } })),
    ).toBe(400);
    expect(await status(createRole(store, { name: 'x', operations: { Bogus: {} } }))).toBe(400);
    expect(await status(createRole(store, { name: 42 }))).toBe(400);
    expect(await status(createRole(store, [1]))).toBe(400);
    expect(await status(createRole(store, { name: 'x', system_role: true }))).toBe(400);
    expect(await status(deleteRole(store, 'fullcontrol'))).toBe(403);
    // diver posts {"id","name","system_role","Operations"}: the id is the server's, not the body's.
    const diver = await createRole(store, {
      id: 'mine',
      name: 'diver',
      system_role: false,
      Operations: { Volume: { 'Volume View': [] } },
    });
    expect(diver.id).not.toBe('mine');
    expect(diver.operations).toEqual({ Volume: { 'Volume View': [] } });
    await deleteRole(store, 'diver');
    await putGrant(store, 'user-1', 'shared', role.id);
    expect(await status(deleteRole(store, role.id))).toBe(409);
    await deleteGrant(store, 'user-1', 'shared', role.id);
    await deleteRole(store, role.id);
    expect(await status(getRole(store, role.id))).toBe(404);
    expect(await status(deleteRole(store, role.id))).toBe(404);
  });

  it('nests collections with parent ids, paths and labels; accepts the partial bodies clients send', async () => {
    const prod = await createCollection(store, { name: 'prod', path: '/', parent_id: 'swarm' });
    const db = await createCollection(store, { name: 'db', parent_id: prod.id });
    expect(db).toMatchObject({ path: '/prod/db', parent_ids: ['swarm', prod.id], label_constraints: [] });
    expect(await findCollectionByPath(store, '/prod/db/')).toMatchObject({ id: db.id });
    expect(collectionLabels(db)).toEqual({
      'com.docker.ucp.access.label': '/prod/db',
      'com.docker.ucp.collection': db.id,
      'com.docker.ucp.collection.root': 'true',
      'com.docker.ucp.collection.swarm': 'true',
      [`com.docker.ucp.collection.${prod.id}`]: 'true',
      [`com.docker.ucp.collection.${db.id}`]: 'true',
    });
    expect(collectionLabels(await getCollection(store, 'swarm'))).toEqual({
      'com.docker.ucp.access.label': '/',
      'com.docker.ucp.collection': 'swarm',
      'com.docker.ucp.collection.root': 'true',
      'com.docker.ucp.collection.swarm': 'true',
    });
    expect(await status(createCollection(store, { name: 'prod', parent_id: 'swarm' }))).toBe(409);
    expect(await status(createCollection(store, { name: 'Shared', parent_id: 'swarm' }))).toBe(409);
    expect(await status(createCollection(store, { name: 'a/b', parent_id: 'swarm' }))).toBe(400);
    expect(await status(createCollection(store, { name: 'x', parent_id: 'nope' }))).toBe(404);
    expect(await status(createCollection(store, { name: 'x' }))).toBe(400);
    expect(await status(deleteCollection(store, prod.id))).toBe(409);
    expect(await status(deleteCollection(store, 'shared'))).toBe(403);
    const updated = await updateCollection(store, db.id, {
      label_constraints: [{ type: 'node', label_key: 'disk', label_value: 'ssd', equality: true }],
    });
    expect(updated.label_constraints).toHaveLength(1);
    await putGrant(store, 'user-1', db.id, 'viewonly');
    await deleteCollection(store, db.id);
    expect(await listGrants(store)).toEqual([]);
    expect(await findCollectionByPath(store, '/prod/db')).toBeUndefined();
    expect(await status(putGrant(store, 'user-1', db.id, 'viewonly'))).toBe(404);
  });

  it('makes private collections once and gives default collections', async () => {
    const a = await ensurePrivateCollection(store, 'molly');
    const b = await ensurePrivateCollection(store, 'molly');
    expect(a.id).toBe(b.id);
    expect(a).toMatchObject({ path: '/Shared/Private/molly', parent_ids: ['swarm', 'shared', 'private'] });
    expect((await getDefaultCollection(store, 'id-molly', 'molly')).id).toBe(a.id);
    expect((await getDefaultCollection(store, 'id-other')).id).toBe('shared');
    await setDefaultCollection(store, 'id-other', { id: 'system' });
    expect((await getDefaultCollection(store, 'id-other')).id).toBe('system');
    expect(await status(setDefaultCollection(store, 'id-other', { id: 'nope' }))).toBe(404);
    expect((await listCollections(store)).length).toBe(6);
  });

  it('authorizes from stored grants through the directory', async () => {
    const prod = await createCollection(store, { name: 'prod', parent_id: 'swarm' });
    await putGrant(store, 'team-1', prod.id, 'fullcontrol');
    await putGrant(store, 'dave', 'dev', 'viewonly', 'namespace');
    const authz = new Authorizer(store, {
      groupsOf: (id) =>
        Promise.resolve(id === 'u1' ? { teamIds: ['team-1'], orgIds: [] } : { teamIds: [], orgIds: [] }),
    });
    const u1 = await authz.subjectFor({ id: 'u1', name: 'u1', isAdmin: false });
    const u2 = await authz.subjectFor({ id: 'u2', isAdmin: false });
    const op = (subject: typeof u1) =>
      authz.authorize({ subject, operation: 'Container Exec', resource: { collectionPath: '/prod' } });
    expect((await op(u1)).allowed).toBe(true);
    expect((await op(u2)).allowed).toBe(false);
    expect((await authz.viewableCollections(u1)).map((c) => c.path).sort()).toEqual([
      '/Shared',
      '/Shared/Legacy',
      '/Shared/Private',
      '/prod',
    ]);
    expect(Object.keys(await authz.effectiveOperations(u2, 'shared'))).toEqual(['Kubernetes Node', 'Node']);
    expect(await authz.effectiveOperations(u2, prod.id)).toEqual({});
    const dave = await authz.subjectFor({ id: 'dave', isAdmin: false });
    expect((await authz.totalOperations(dave))['Kubernetes Pod']).toHaveProperty(['Kubernetes Pod Get']);
  });
});

// The Authorizer's watched copy of roles, collections and grants on the embedded store: writes
// through libs/rbac are visible to the next decision, other writers' changes arrive by the watch.
// (How the copy itself re-lists after a broken or compacted watch: libs/store/src/mirror.spec.ts.)
import { EmbeddedStore, lastWrite, type Store } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authorizer, RBAC_PREFIX, type AuthzSubject } from './authorize.js';
import { createCollection, deleteCollection } from './collections.js';
import { deleteGrant, putGrant } from './grants.js';
import { createRole, deleteRole } from './roles.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The same store under another object: writes through it are "another controller's" (not recorded for `store`). */
function otherWriter(store: Store): Store {
  // Methods run with the proxy as `this`, so the store records these writes against the proxy
  // (another process's store object), not against `store`.
  return new Proxy(store, { get: (target, name) => Reflect.get(target, name) as unknown });
}

const user: AuthzSubject = { id: 'u1', name: 'u1', isAdmin: false, teamIds: ['t1'], orgIds: [] };
const exec = (authz: Authorizer, collectionPath: string) =>
  authz.authorize({ subject: user, operation: 'Container Exec', resource: { collectionPath } });

describe('Authorizer on a watched copy', () => {
  let dir: string;
  let store: EmbeddedStore;
  const authorizers: Authorizer[] = [];
  const open = (s: Store = store) => {
    const authz = new Authorizer(s);
    authorizers.push(authz);
    return authz;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-rbac-mirror-'));
    store = new EmbeddedStore({ dir });
  });
  afterEach(async () => {
    await Promise.all(authorizers.splice(0).map((a) => a.close()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sees its own writes at the next decision, every time', async () => {
    const authz = open();
    const prod = await createCollection(store, { name: 'prod', parent_id: 'swarm' });
    expect((await exec(authz, '/prod')).allowed).toBe(false);
    for (let i = 0; i < 25; i++) {
      await putGrant(store, 't1', prod.id, 'fullcontrol');
      expect(await exec(authz, '/prod')).toEqual({
        allowed: true,
        reason: `Container Exec on collection /prod by grant t1/${prod.id}/fullcontrol`,
      });
      await deleteGrant(store, 't1', prod.id, 'fullcontrol');
      expect((await exec(authz, '/prod')).allowed).toBe(false);
    }
    // A custom role and a nested collection, made and removed.
    const role = await createRole(store, {
      name: 'exec',
      operations: { Container: { 'Container Exec': [] } },
    });
    const child = await createCollection(store, { name: 'db', parent_id: prod.id });
    await putGrant(store, 'u1', child.id, role.id);
    expect((await exec(authz, '/prod/db')).reason).toBe(
      `Container Exec on collection /prod/db by grant u1/${child.id}/${role.id}`,
    );
    expect((await exec(authz, '/prod')).allowed).toBe(false);
    await deleteGrant(store, 'u1', child.id, role.id);
    await deleteRole(store, role.id);
    await deleteCollection(store, child.id);
    expect((await open().snapshot(user)).collections.map((c) => c.path)).not.toContain('/prod/db');
    expect((await authz.snapshot(user)).collections.map((c) => c.path)).not.toContain('/prod/db');
    expect((await authz.snapshot(user)).roles.has(role.id)).toBe(false);
  });

  it('serves one snapshot until something changes', async () => {
    const authz = open();
    const first = await authz.snapshot(user);
    expect(await authz.snapshot()).toBe(first);
    await putGrant(store, 'u1', 'shared', 'viewonly');
    const second = await authz.snapshot(user);
    expect(second).not.toBe(first);
    expect(second.grants).toEqual([
      { subjectID: 'u1', objectID: 'shared', roleID: 'viewonly', type: 'collection' },
    ]);
  });

  it("sees another writer's change when its watch event arrives", async () => {
    const authz = open();
    const other = otherWriter(store);
    const prod = await createCollection(other, { name: 'prod', parent_id: 'swarm' });
    expect((await exec(authz, '/prod')).allowed).toBe(false);
    await putGrant(other, 'u1', prod.id, 'fullcontrol');
    expect(lastWrite(store, RBAC_PREFIX)).toBe(0);
    let allowed = false;
    for (let i = 0; i < 100 && !allowed; i++) {
      allowed = (await exec(authz, '/prod')).allowed;
      if (!allowed) await sleep(10);
    }
    expect(allowed).toBe(true);
  });

  it('fails when the store cannot answer and nothing is loaded', async () => {
    const authz = open();
    await store.close();
    await expect(authz.snapshot()).rejects.toThrow();
  });
});

// The Authorizer's watched copy on real etcd, where watch events arrive on their own stream and may
// trail a write's acknowledgement: the writing controller still sees its write at the next
// decision, another controller sees it when its watch event arrives, also across an etcd restart.
import { openStore, type Store } from '@orca/store';
import { startEtcd, type EtcdCluster } from '@orca/testing';
import { randomUUID } from 'node:crypto';
import { Authorizer, type AuthzSubject } from './authorize.js';
import { createCollection } from './collections.js';
import { deleteGrant, putGrant } from './grants.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const user: AuthzSubject = { id: 'u1', name: 'u1', isAdmin: false, teamIds: [], orgIds: [] };

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

describe('Authorizer on etcd', () => {
  let etcd: EtcdCluster;
  let a: Store;
  let b: Store;
  let authzA: Authorizer;
  let authzB: Authorizer;
  beforeAll(async () => {
    etcd = await startEtcd();
    const prefix = `rbac-${randomUUID()}/`;
    a = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix });
    b = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix });
    authzA = new Authorizer(a);
    authzB = new Authorizer(b);
  }, 30_000);
  afterAll(async () => {
    await authzA?.close();
    await authzB?.close();
    await a?.close();
    await b?.close();
    await etcd?.stop();
  });

  const exec = (authz: Authorizer, collectionPath: string) =>
    authz.authorize({ subject: user, operation: 'Container Exec', resource: { collectionPath } });

  it('shows a controller its own writes at once, and the others theirs by the watch', async () => {
    const prod = await createCollection(a, { name: 'prod', parent_id: 'swarm' });
    expect((await exec(authzA, '/prod')).allowed).toBe(false);
    expect((await exec(authzB, '/prod')).allowed).toBe(false);
    for (let i = 0; i < 30; i++) {
      await putGrant(a, 'u1', prod.id, 'fullcontrol');
      expect((await exec(authzA, '/prod')).allowed).toBe(true);
      await deleteGrant(a, 'u1', prod.id, 'fullcontrol');
      expect((await exec(authzA, '/prod')).allowed).toBe(false);
    }
    await putGrant(a, 'u1', prod.id, 'fullcontrol');
    expect(await eventually(async () => (await exec(authzB, '/prod')).allowed)).toBe(true);
    await deleteGrant(b, 'u1', prod.id, 'fullcontrol');
    expect((await exec(authzB, '/prod')).allowed).toBe(false);
    expect(await eventually(async () => !(await exec(authzA, '/prod')).allowed)).toBe(true);
  });

  it('keeps following changes across an etcd restart', async () => {
    const dev = await createCollection(a, { name: 'dev', parent_id: 'swarm' });
    expect((await exec(authzA, '/dev')).allowed).toBe(false);
    await etcd.kill(0);
    await etcd.restart(0);
    await putGrant(b, 'u1', dev.id, 'fullcontrol');
    expect(await eventually(async () => (await exec(authzA, '/dev')).allowed, 20_000)).toBe(true);
    await deleteGrant(b, 'u1', dev.id, 'fullcontrol');
    expect(await eventually(async () => !(await exec(authzA, '/dev')).allowed, 20_000)).toBe(true);
  }, 60_000);
});

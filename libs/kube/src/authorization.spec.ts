// The authorization webhook's decisions on the embedded store: accounts, memberships and grants
// come from watched copies, and every change applies to the next review.
import { Directory, ensureAdmin, teamGroupsOf, watchedAccounts } from '@orca/identity';
import { Authorizer, deleteGrant, putGrant } from '@orca/rbac';
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeAccessReviewer, subjectOf } from './authorization.js';

const review = (user: string, verb: string, resource: string, namespace: string) => ({
  apiVersion: 'authorization.k8s.io/v1',
  kind: 'SubjectAccessReview',
  spec: { user, groups: ['system:authenticated'], resourceAttributes: { namespace, verb, resource } },
});

describe('KubeAccessReviewer on watched accounts and grants', () => {
  let dir: string;
  let store: EmbeddedStore;
  let authorizer: Authorizer;
  let directory: Directory;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-kube-authz-'));
    store = new EmbeddedStore({ dir });
    await ensureAdmin(store, 'admin-password');
    directory = new Directory(store);
    authorizer = new Authorizer(store, directory);
  });
  afterEach(async () => {
    await authorizer.close();
    await watchedAccounts(store).close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const allowed = async (reviewer: KubeAccessReviewer, ...args: Parameters<typeof review>) =>
    ((await reviewer.review(review(...args))) as { status: { allowed: boolean } }).status.allowed;

  it('answers from grants to the user and its teams, and follows every change', async () => {
    const reviewer = new KubeAccessReviewer(store, authorizer);
    const alice = await directory.create({ name: 'alice', password: 'alice-password' });
    const org = await directory.create({ name: 'eng', isOrg: true });
    const team = await directory.createTeam(org.name, { name: 'dev' });
    expect(await allowed(reviewer, 'alice', 'get', 'pods', 'dev')).toBe(false);

    await putGrant(store, alice.id, 'dev', 'viewonly', 'namespace');
    expect(await allowed(reviewer, 'alice', 'get', 'pods', 'dev')).toBe(true);
    expect(await allowed(reviewer, 'alice', 'create', 'pods', 'dev')).toBe(false);

    // A grant to the team reaches alice once she is a member, and stops when she leaves.
    await putGrant(store, team.id, 'dev', 'fullcontrol', 'namespace');
    expect(await allowed(reviewer, 'alice', 'create', 'pods', 'dev')).toBe(false);
    await directory.setTeamMember(org.name, team.name, alice.name, {});
    await new Promise((resolve) => setImmediate(resolve));
    expect(await allowed(reviewer, 'alice', 'create', 'pods', 'dev')).toBe(true);
    expect((await watchedAccounts(store).groupsOf(alice.id)).teamGroups).toEqual(
      await teamGroupsOf(directory, alice.id),
    );
    await directory.removeTeamMember(org.name, team.name, alice.name);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await allowed(reviewer, 'alice', 'create', 'pods', 'dev')).toBe(false);

    await deleteGrant(store, alice.id, 'dev', 'viewonly');
    expect(await allowed(reviewer, 'alice', 'get', 'pods', 'dev')).toBe(false);
  });

  it('stops treating a deactivated or deleted account as a subject', async () => {
    const bob = await directory.create({ name: 'bob', password: 'bob-password' });
    await putGrant(store, bob.id, 'dev', 'viewonly', 'namespace');
    expect(await subjectOf(store, authorizer, 'bob')).toMatchObject({ id: bob.id, isAdmin: false });
    await directory.update('bob', { isActive: false });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await subjectOf(store, authorizer, 'bob')).toBeUndefined();
    await directory.update('bob', { isActive: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await subjectOf(store, authorizer, 'bob')).toBeDefined();
    await directory.remove('bob');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await subjectOf(store, authorizer, 'bob')).toBeUndefined();
  });

  it('lets administrators do everything and has no opinion on Kubernetes users', async () => {
    const reviewer = new KubeAccessReviewer(store, authorizer);
    await directory.create({ name: 'root', password: 'root-password', isAdmin: true });
    expect(await allowed(reviewer, 'root', 'delete', 'nodes', '')).toBe(true);
    expect(await allowed(reviewer, 'system:kube-scheduler', 'get', 'pods', 'dev')).toBe(false);
    expect(await allowed(reviewer, 'nobody', 'get', 'pods', 'dev')).toBe(false);
  });
});

// The answers UCP's admission plugins get from the controller, on the embedded store: accounts,
// grants and config-toml as they are at the moment of the question.
import { ApiError } from '@orca/api';
import { Directory, ensureAdmin, watchedAccounts } from '@orca/identity';
import { Authorizer, listGrants, putGrant } from '@orca/rbac';
import { EmbeddedStore } from '@orca/store';
import { parseUcpConfigToml, readUcpConfigRevision, writeUcpConfig } from '@orca/ucp-config';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeAdmission } from './admission.js';
import { KubeNodeSelector } from './admission-node-selector.js';
import {
  parseServiceAccountId,
  parseVolumeAccessRequest,
  requiredParam,
  UcpAdmissionQueries,
} from './ucp-authz.js';

const status = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof ApiError ? error.status : -1;
  }
  return undefined;
};

describe('UCP admission plugin queries: input', () => {
  it('takes system:serviceaccount:<namespace>:<name> only', () => {
    expect(parseServiceAccountId('system:serviceaccount:apps:robot')).toEqual({
      namespace: 'apps',
      name: 'robot',
    });
    expect(parseServiceAccountId('system:serviceaccount:apps:robot.v2')).toEqual({
      namespace: 'apps',
      name: 'robot.v2',
    });
    for (const bad of [
      '',
      'bob',
      'system:serviceaccount:apps',
      'system:serviceaccount::robot',
      'system:serviceaccount:apps:',
      'system:serviceaccount:apps:robot:x',
      'system:serviceaccount:Apps:robot',
      'system:serviceaccount:apps:ro bot',
      `system:serviceaccount:${'a'.repeat(64)}:robot`,
    ])
      expect([bad, status(() => parseServiceAccountId(bad))]).toEqual([bad, 400]);
  });

  it('takes {"volumes": [names]} only, and a user', () => {
    expect(parseVolumeAccessRequest({ volumes: ['a', 'b'] })).toEqual(['a', 'b']);
    expect(parseVolumeAccessRequest({ volumes: [] })).toEqual([]);
    for (const bad of [null, [], 'x', {}, { volumes: 'a' }, { volumes: [1] }, { volumes: [''] }])
      expect([bad, status(() => parseVolumeAccessRequest(bad))]).toEqual([bad, 400]);
    expect(requiredParam('bob', 'user')).toBe('bob');
    for (const bad of [undefined, '', ['a', 'b']]) expect(status(() => requiredParam(bad, 'user'))).toBe(400);
  });
});

describe('UCP admission plugin queries on the store', () => {
  let dir: string;
  let store: EmbeddedStore;
  let authorizer: Authorizer;
  let directory: Directory;
  let queries: UcpAdmissionQueries;
  let bobId: string;
  const volumes: Record<string, string> = { shared: '/Shared', sys: '/System' };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-ucp-authz-'));
    store = new EmbeddedStore({ dir });
    await ensureAdmin(store, 'admin-password');
    directory = new Directory(store);
    authorizer = new Authorizer(store, directory);
    bobId = (await directory.create({ name: 'bob', password: 'bob-password' })).id;
    queries = new UcpAdmissionQueries(
      store,
      authorizer,
      new KubeAdmission(store, authorizer),
      new KubeNodeSelector(store),
      async (name) => volumes[name],
    );
  });
  afterEach(async () => {
    await authorizer.close();
    await watchedAccounts(store).close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('isadmin: active administrators only', async () => {
    expect(await queries.isAdmin('admin')).toBe(true);
    expect(await queries.isAdmin('bob')).toBe(false);
    expect(await queries.isAdmin('nobody')).toBe(false);
    expect(await queries.isAdmin('system:serviceaccount:apps:robot')).toBe(false);
    expect(await queries.isAdmin('system:kube-scheduler')).toBe(false);
  });

  it('isfullcontrol: a Full Control grant on the namespace, or an administrator', async () => {
    const bob = { id: bobId };
    expect(await queries.isFullControl('bob', 'apps')).toBe(false);
    await putGrant(store, bob.id, 'apps', 'restrictedcontrol', 'namespace');
    expect(await queries.isFullControl('bob', 'apps')).toBe(false);
    await putGrant(store, bob.id, 'apps', 'fullcontrol', 'namespace');
    expect(await queries.isFullControl('bob', 'apps')).toBe(true);
    expect(await queries.isFullControl('bob', 'other')).toBe(false);
    expect(await queries.isFullControl('admin', 'other')).toBe(true);
    expect(status(() => void queries.isFullControl('bob', 'Not_A_Namespace'))).toBe(400);
  });

  it('managerscheduling: follows [scheduling_configuration] for users and administrators', async () => {
    expect(await queries.managerScheduling('bob')).toBe(false);
    expect(await queries.managerScheduling('admin')).toBe(true);
    const { modRevision } = await readUcpConfigRevision(store);
    const toml =
      '[scheduling_configuration]\nenable_admin_ucp_scheduling = false\nenable_user_ucp_scheduling = true';
    await writeUcpConfig(store, parseUcpConfigToml(toml), modRevision);
    expect(await queries.managerScheduling('bob')).toBe(true);
    expect(await queries.managerScheduling('admin')).toBe(false);
  });

  it('volumeaccess: Volume Mount on each volume collection', async () => {
    expect(await queries.volumeAccess('bob', ['shared'])).toEqual({
      shared: { allowed: false, reason: 'no grant gives Volume Mount on collection /Shared' },
    });
    await putGrant(store, bobId, 'shared', 'restrictedcontrol');
    const answer = await queries.volumeAccess('bob', ['shared', 'sys', 'gone', 'shared']);
    expect(answer).toEqual({
      shared: { allowed: true, reason: '' },
      sys: { allowed: false, reason: 'no grant gives Volume Mount on collection /System' },
      gone: { allowed: false, reason: 'volume gone does not exist' },
    });
    expect(await queries.volumeAccess('admin', ['sys'])).toEqual({ sys: { allowed: true, reason: '' } });
    expect(await queries.volumeAccess('nobody', ['shared'])).toEqual({
      shared: { allowed: false, reason: 'nobody is not a UCP subject' },
    });
  });

  it("agent removal: the service account's grants go, idempotently; only administrators", async () => {
    const robot = 'system:serviceaccount:apps:robot';
    await putGrant(store, robot, 'apps', 'viewonly', 'namespace');
    await putGrant(store, robot, 'web', 'fullcontrol', 'namespace');
    await putGrant(store, 'system:serviceaccount:apps:other', 'apps', 'viewonly', 'namespace');
    const bobSubject = { id: bobId, name: 'bob', isAdmin: false, teamIds: [], orgIds: [] };
    await expect(queries.deleteAgent(bobSubject, robot)).rejects.toMatchObject({ status: 403 });
    expect(await listGrants(store, [robot])).toHaveLength(2);

    const node = { id: 'node:m1', name: 'node:m1', isAdmin: true, teamIds: [], orgIds: [] };
    await queries.deleteAgent(node, robot);
    expect(await listGrants(store, [robot])).toEqual([]);
    expect(await listGrants(store, ['system:serviceaccount:apps:other'])).toHaveLength(1);
    await queries.deleteAgent(node, robot); // nothing left: still no error
    await expect(queries.deleteAgent(node, 'bob')).rejects.toMatchObject({ status: 400 });
  });
});

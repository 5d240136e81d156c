// WatchedAccounts on the embedded store: the same answers as the Directory (ownerOfKey, record,
// groupsOf, teamGroupsOf) from watched copies, following revocation, deactivation and membership
// changes. (How the copies re-list after a broken or compacted watch: libs/store/src/mirror.spec.ts.)
import { generateKeyPair } from '@orca/pki';
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAdmin } from './accounts.js';
import { Directory } from './directory.js';
import { teamGroupsOf } from './groups.js';
import { watchedAccounts, type WatchedAccounts } from './watched-accounts.js';

/** Polls until the watched copy agrees with the directory (watch events are asynchronous). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the cache did not catch up');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('WatchedAccounts', () => {
  let dir: string;
  let store: EmbeddedStore;
  let directory: Directory;
  let cache: WatchedAccounts;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-identity-cache-'));
    store = new EmbeddedStore({ dir });
    await ensureAdmin(store, 'admin-password');
    directory = new Directory(store);
    cache = watchedAccounts(store);
  });

  afterEach(async () => {
    await cache.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers ownerOfKey like the directory, and follows revocation and deactivation', async () => {
    await directory.create({ name: 'alice', password: 'alice-password' });
    const { publicKeyPem } = await generateKeyPair();
    const key = await directory.addPublicKey('alice', { publicKey: publicKeyPem });

    expect(await cache.ownerOfKey('alice', key.id)).toMatchObject({ name: 'alice', isAdmin: false });
    expect(await cache.ownerOfKey('alice', 'f'.repeat(64))).toBeUndefined();
    expect(await cache.ownerOfKey('nobody', key.id)).toBeUndefined();

    // Writes of this process are seen by the next answer (read-your-writes), no polling.
    await directory.update('alice', { isActive: false });
    expect(await cache.ownerOfKey('alice', key.id)).toBeUndefined();
    expect(await directory.ownerOfKey('alice', key.id)).toBeUndefined();

    await directory.update('alice', { isActive: true });
    expect(await cache.ownerOfKey('alice', key.id)).toBeDefined();

    await directory.removePublicKey('alice', key.id);
    expect(await cache.ownerOfKey('alice', key.id)).toBeUndefined();

    const again = await directory.addPublicKey('alice', { publicKey: publicKeyPem });
    expect(await cache.ownerOfKey('alice', again.id)).toBeDefined();
    await directory.remove('alice');
    expect(await cache.ownerOfKey('alice', again.id)).toBeUndefined();
  });

  it('is one copy per store until closed', async () => {
    expect(watchedAccounts(store)).toBe(cache);
    await cache.close();
    const again = watchedAccounts(store);
    expect(again).not.toBe(cache);
    cache = again;
    expect((await cache.byName('admin'))?.isAdmin).toBe(true);
  });

  it('answers record and byName like the directory, without password hashes', async () => {
    const alice = await directory.create({ name: 'alice', password: 'alice-password' });
    expect(await cache.record('alice')).toEqual(
      expect.objectContaining({ id: alice.id, name: 'alice', isActive: true, isOrg: false }),
    );
    expect(await cache.record(alice.id.toUpperCase())).toMatchObject({ name: 'alice' });
    expect(await cache.byName(alice.id)).toBeUndefined();
    expect(await cache.record('nobody')).toBeUndefined();
    expect(await cache.record('alice')).not.toHaveProperty('passwordHash');
    await directory.update('alice', { isActive: false });
    await eventually(async () => (await cache.record('alice'))?.isActive === false);
    await directory.remove('alice');
    await eventually(async () => (await cache.record(alice.id)) === undefined);
  });

  it('answers groupsOf like the directory as memberships change', async () => {
    const alice = await directory.create({ name: 'alice', password: 'alice-password' });
    await directory.create({ name: 'eng', isOrg: true });
    const team = await directory.createTeam('eng', { name: 'dev' });
    const sorted = (g: { teamIds: string[]; orgIds: string[] }) =>
      JSON.stringify([[...g.teamIds].sort(), [...g.orgIds].sort()]);
    const same = async () =>
      sorted(await cache.groupsOf(alice.id)) === sorted(await directory.groupsOf(alice.id));

    // docker-datacenter only, at first.
    expect(await same()).toBe(true);
    expect((await cache.groupsOf(alice.id)).orgIds).toHaveLength(1);

    await directory.setOrgMember('eng', 'alice', {});
    await directory.setTeamMember('eng', 'dev', 'alice', {});
    await eventually(same);
    expect((await cache.groupsOf(alice.id)).teamIds).toEqual([team.id]);
    expect((await cache.groupsOf('alice')).teamGroups).toEqual(await teamGroupsOf(directory, alice.id));
    expect((await cache.groupsOf(alice.id)).teamGroups).toEqual(['eng:dev']);

    await directory.removeOrgMember('eng', 'alice');
    await eventually(same);
    expect((await cache.groupsOf(alice.id)).teamIds).toEqual([]);
    expect(await cache.groupsOf('no-such-account')).toEqual({ teamIds: [], orgIds: [], teamGroups: [] });
  });
});

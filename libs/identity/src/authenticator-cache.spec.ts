import { generateKeyPair } from '@orca/pki';
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAdmin } from './accounts.js';
import { IdentityCache } from './authenticator-cache.js';
import { Directory } from './directory.js';

/** Polls until the watched copy agrees with the directory (watch events are asynchronous). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the cache did not catch up');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('IdentityCache', () => {
  let dir: string;
  let store: EmbeddedStore;
  let directory: Directory;
  let cache: IdentityCache;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-identity-cache-'));
    store = new EmbeddedStore({ dir });
    await ensureAdmin(store, 'admin-password');
    directory = new Directory(store);
    cache = new IdentityCache(store);
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

    await directory.update('alice', { isActive: false });
    await eventually(async () => (await cache.ownerOfKey('alice', key.id)) === undefined);
    expect(await directory.ownerOfKey('alice', key.id)).toBeUndefined();

    await directory.update('alice', { isActive: true });
    await eventually(async () => (await cache.ownerOfKey('alice', key.id)) !== undefined);

    await directory.removePublicKey('alice', key.id);
    await eventually(async () => (await cache.ownerOfKey('alice', key.id)) === undefined);

    const again = await directory.addPublicKey('alice', { publicKey: publicKeyPem });
    await eventually(async () => (await cache.ownerOfKey('alice', again.id)) !== undefined);
    await directory.remove('alice');
    await eventually(async () => (await cache.ownerOfKey('alice', again.id)) === undefined);
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

    await directory.removeOrgMember('eng', 'alice');
    await eventually(same);
    expect((await cache.groupsOf(alice.id)).teamIds).toEqual([]);
    expect(await cache.groupsOf('no-such-account')).toEqual({ teamIds: [], orgIds: [] });
  });
});

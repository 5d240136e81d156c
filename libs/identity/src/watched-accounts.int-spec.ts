// WatchedAccounts on real etcd, where watch events arrive on their own stream and may trail a
// write's acknowledgement: in the controller that deleted a public key or deactivated or deleted an
// account, the very next ownerOfKey answer (no sleep, no retry) already refuses the bundle, because
// the store records its own writes and the watched copies wait for them. Another controller sees
// the same change when its watch event arrives.
import { generateKeyPair } from '@orca/pki';
import { openStore, type Store } from '@orca/store';
import { startEtcd, type EtcdCluster } from '@orca/testing';
import { randomUUID } from 'node:crypto';
import { ensureAdmin } from './accounts.js';
import { Directory } from './directory.js';
import { WatchedAccounts } from './watched-accounts.js';

async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('WatchedAccounts on etcd', () => {
  let etcd: EtcdCluster;
  let a: Store;
  let b: Store;
  let directory: Directory;
  let watchedA: WatchedAccounts;
  let watchedB: WatchedAccounts;
  beforeAll(async () => {
    etcd = await startEtcd();
    const prefix = `identity-${randomUUID()}/`;
    a = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix });
    b = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix });
    await ensureAdmin(a, 'admin-password');
    directory = new Directory(a);
    watchedA = new WatchedAccounts(a);
    watchedB = new WatchedAccounts(b);
  }, 30_000);
  afterAll(async () => {
    await watchedA?.close();
    await watchedB?.close();
    await a?.close();
    await b?.close();
    await etcd?.stop();
  });

  it('refuses a deleted key or a deactivated account at the next answer in the writing controller', async () => {
    await directory.create({ name: 'alice', password: 'alice-password' });
    const { publicKeyPem } = await generateKeyPair();
    let key = await directory.addPublicKey('alice', { publicKey: publicKeyPem });
    expect(await watchedA.ownerOfKey('alice', key.id)).toMatchObject({ name: 'alice' });
    // Repeated: a stale copy would let one of these through while the watch event is in flight.
    for (let i = 0; i < 20; i++) {
      await directory.removePublicKey('alice', key.id);
      expect(await watchedA.ownerOfKey('alice', key.id)).toBeUndefined();
      key = await directory.addPublicKey('alice', { publicKey: publicKeyPem });
      expect(await watchedA.ownerOfKey('alice', key.id)).toMatchObject({ name: 'alice' });

      await directory.update('alice', { isActive: false });
      expect(await watchedA.ownerOfKey('alice', key.id)).toBeUndefined();
      expect((await watchedA.record('alice'))?.isActive).toBe(false);
      await directory.update('alice', { isActive: true });
      expect(await watchedA.ownerOfKey('alice', key.id)).toMatchObject({ name: 'alice' });
    }

    // Another controller (another store object) follows by its watch.
    expect(await eventually(async () => (await watchedB.ownerOfKey('alice', key.id)) !== undefined)).toBe(
      true,
    );
    await directory.update('alice', { isActive: false });
    expect(await eventually(async () => (await watchedB.ownerOfKey('alice', key.id)) === undefined)).toBe(
      true,
    );
  });

  it('refuses the keys of a deleted account at the next answer', async () => {
    await directory.create({ name: 'bob', password: 'bob-password' });
    const { publicKeyPem } = await generateKeyPair();
    const key = await directory.addPublicKey('bob', { publicKey: publicKeyPem });
    expect(await watchedA.ownerOfKey('bob', key.id)).toMatchObject({ name: 'bob' });
    await directory.remove('bob');
    expect(await watchedA.ownerOfKey('bob', key.id)).toBeUndefined();
    expect(await watchedA.record('bob')).toBeUndefined();
  });
});

import { startEtcd, type EtcdCluster } from '@orca/testing';
import { randomUUID } from 'node:crypto';
import { EtcdStore } from './etcd-store.js';
import { openStore } from './index.js';
import { StoreUnavailableError, type Leadership, type Store } from './store.js';
import { describeStoreContract, EventLog, within } from './store.contract.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitHealthy(store: Store, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await store.health();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

// etcd drops proposals in flight during a leader change and the client only sees a timeout
// (reference/control-plane.md §4.2): retry with create-if-absent so a retry never writes twice.
async function createOnce(store: Store, key: string, value: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.txn([{ key, target: 'createRevision', op: '=', value: 0 }], [{ type: 'put', key, value }]);
      return;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || attempt >= 5) throw err;
      await waitHealthy(store);
    }
  }
}

describe('EtcdStore on a single etcd', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  // Each test gets its own key prefix on the shared etcd.
  describeStoreContract('EtcdStore', async () => {
    const prefix = `t-${randomUUID()}/`;
    const opened: Store[] = [];
    const open = async (): Promise<Store> => {
      const s = await openStore({ kind: 'etcd', endpoints: etcd.endpoints, prefix });
      opened.push(s);
      return s;
    };
    const store = await open();
    return {
      store,
      second: open,
      cleanup: async () => void (await Promise.all(opened.map((s) => s.close()))),
    };
  });

  it('keeps prefixes apart', async () => {
    const a = new EtcdStore({ endpoints: etcd.endpoints, prefix: 'ns-a/' });
    const b = new EtcdStore({ endpoints: etcd.endpoints, prefix: 'ns-b/' });
    const raw = new EtcdStore({ endpoints: etcd.endpoints });
    await a.put('k', 'a');
    await b.put('k', 'b');
    expect((await a.get('k'))?.value).toBe('a');
    expect((await b.range('')).kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['k=b']);
    expect((await raw.get('ns-a/k'))?.value).toBe('a');
    await Promise.all([a.close(), b.close(), raw.close()]);
  }, 30_000);

  it('resumes a watch after etcd is killed and restarted, and fails fast while it is down', async () => {
    const store = new EtcdStore({ endpoints: etcd.endpoints, prefix: `r-${randomUUID()}/` });
    const start = await store.put('w/0', '0');
    const log = new EventLog();
    const watch = await store.watch('w/', start.revision, log.handlers);
    for (let i = 1; i <= 5; i++) await store.put(`w/${i}`, String(i));
    await etcd.kill(0);
    const began = Date.now();
    await expect(store.health()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.put('x', 'y')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - began).toBeLessThan(2500);
    await etcd.restart(0);
    for (let i = 6; i <= 10; i++) await store.put(`w/${i}`, String(i));
    await log.until(() => log.events.length >= 11, 15_000);
    expect(log.keys()).toEqual(Array.from({ length: 11 }, (_, i) => `put w/${i}=${i}`));
    await store.health();
    await watch.close();
    await store.close();
  }, 30_000);
});

describe('EtcdStore on a 3-member etcd cluster', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('resumes a watch without gaps when its member dies while others keep writing', async () => {
    const prefix = `g-${randomUUID()}/`;
    const watcher = new EtcdStore({ endpoints: [etcd.endpoints[0] as string], prefix });
    const writer = new EtcdStore({ endpoints: etcd.endpoints.slice(1), prefix });
    const start = await writer.put('w/00', '0');
    const log = new EventLog();
    const watch = await watcher.watch('w/', start.revision, log.handlers);
    await log.until(() => log.events.length >= 1);
    await etcd.kill(0);
    const expected = ['put w/00=0'];
    try {
      // The killed member may have been the raft leader: wait for the others to elect a new one.
      await waitHealthy(writer);
      for (let i = 1; i <= 30; i++) {
        const key = `w/${String(i).padStart(2, '0')}`;
        await createOnce(writer, key, String(i));
        expected.push(`put ${key}=${i}`);
      }
    } finally {
      await etcd.restart(0);
    }
    await log.until(() => log.events.length >= expected.length, 15_000);
    expect(log.keys()).toEqual(expected);
    await watch.close();
    await Promise.all([watcher.close(), writer.close()]);
  }, 30_000);

  it('detects lease loss while its member is paused past the TTL, and health fails within 2 s', async () => {
    const prefix = `p-${randomUUID()}/`;
    const client = new EtcdStore({ endpoints: [etcd.endpoints[0] as string], prefix });
    const observer = new EtcdStore({ endpoints: etcd.endpoints.slice(1), prefix });
    const lease = await client.grantLease(2);
    await client.put('held', '1', { lease });
    await sleep(1000);
    expect(lease.isLost()).toBe(false);
    etcd.pause(0);
    try {
      const began = Date.now();
      await expect(client.health()).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - began).toBeLessThan(2500);
      await within(lease.lost, 4000, 'lease.lost during pause');
      // The server drops the key once the lease expires there too.
      for (let i = 0; i < 50 && (await observer.get('held')); i++) await sleep(100);
      expect(await observer.get('held')).toBeUndefined();
    } finally {
      etcd.resume(0);
    }
    await Promise.all([client.close(), observer.close()]);
  }, 30_000);

  it('never has two leaders when the leader is cut off by a pause', async () => {
    const prefix = `e-${randomUUID()}/`;
    const first = new EtcdStore({ endpoints: [etcd.endpoints[0] as string], prefix });
    const second = new EtcdStore({ endpoints: etcd.endpoints.slice(1), prefix });
    const a: Leadership = await first.campaign('leader', 'A', { ttlSeconds: 2 });
    let aLostAt = 0;
    void a.lost.then(() => (aLostAt = Date.now()));
    const bPromise = second.campaign('leader', 'B', { ttlSeconds: 2 });
    let bElectedAt = 0;
    let aLeaderWhenBElected = true;
    void bPromise.then(() => {
      bElectedAt = Date.now();
      aLeaderWhenBElected = a.isLeader();
    });
    await sleep(500);
    expect(bElectedAt).toBe(0);
    etcd.pause(0);
    try {
      const b = await within(bPromise, 15_000, 'B elected');
      expect(aLostAt).toBeGreaterThan(0);
      expect(aLostAt).toBeLessThanOrEqual(bElectedAt);
      expect(aLeaderWhenBElected).toBe(false);
      expect(await second.leader('leader')).toBe('B');
      expect((await second.txn([b.fence()], [{ type: 'put', key: 'data', value: 'B' }])).succeeded).toBe(
        true,
      );
    } finally {
      etcd.resume(0);
    }
    // Once A's member answers again, A's stale fence is refused.
    const late = await first.txn([a.fence()], [{ type: 'put', key: 'data', value: 'late A' }]);
    expect(late.succeeded).toBe(false);
    expect((await second.get('data'))?.value).toBe('B');
    await Promise.all([first.close(), second.close()]);
  }, 30_000);
});

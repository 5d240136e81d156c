// One behavioural contract for every Store implementation (EmbeddedStore, EtcdStore).
import type { KeyValue, Leadership, Store, WatchEvent } from './store.js';

export interface StoreContractContext {
  /** An empty store (a fresh directory, or a fresh key prefix on a shared etcd). */
  store: Store;
  /** A second client on the same data: another connection on etcd, the same store when embedded. */
  second(): Promise<Store>;
  /** Closes everything the context opened. */
  cleanup(): Promise<void>;
}

export type StoreContractFactory = () => Promise<StoreContractContext>;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the value of `p`, or rejects after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects watch events and lets a test wait until a condition holds. */
export class EventLog {
  readonly events: { event: WatchEvent; revision: number }[] = [];
  compacted: number | undefined;
  errors: Error[] = [];
  private waiters: (() => void)[] = [];

  readonly handlers = {
    onEvents: (events: WatchEvent[], revision: number): void => {
      for (const event of events) this.events.push({ event, revision });
      this.wake();
    },
    onCompacted: (compactRevision: number): void => {
      this.compacted = compactRevision;
      this.wake();
    },
    onError: (error: Error): void => {
      this.errors.push(error);
      this.wake();
    },
  };

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  async until(condition: () => boolean, ms = 10_000, what = 'watch condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`${what} not reached within ${ms} ms (have ${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  keys(): string[] {
    return this.events.map(({ event }) =>
      event.type === 'put' ? `put ${event.kv.key}=${event.kv.value}` : `delete ${event.key}`,
    );
  }
}

function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  return new Promise((resolve) => setImmediate(() => resolve(done)));
}

export function describeStoreContract(name: string, factory: StoreContractFactory): void {
  describe(`Store contract: ${name}`, () => {
    let ctx: StoreContractContext;
    let store: Store;

    beforeEach(async () => {
      ctx = await factory();
      store = ctx.store;
    });

    afterEach(async () => {
      await ctx.cleanup();
    });

    it('answers health', async () => {
      await expect(store.health()).resolves.toBeUndefined();
    }, 15_000);

    it('tracks create/mod revisions and versions across put and delete', async () => {
      const first = await store.put('a', '1');
      let kv = (await store.get('a')) as KeyValue;
      expect(kv).toMatchObject({
        key: 'a',
        value: '1',
        createRevision: first.revision,
        modRevision: first.revision,
        version: 1,
      });
      expect(kv.lease).toBeUndefined();

      const second = await store.put('a', '2');
      expect(second.revision).toBeGreaterThan(first.revision);
      kv = (await store.get('a')) as KeyValue;
      expect(kv).toMatchObject({
        value: '2',
        createRevision: first.revision,
        modRevision: second.revision,
        version: 2,
      });

      const del = await store.delete('a');
      expect(del.deleted).toBe(1);
      expect(del.revision).toBeGreaterThan(second.revision);
      expect(await store.get('a')).toBeUndefined();
      const again = await store.delete('a');
      expect(again.deleted).toBe(0);
      expect(again.revision).toBe(del.revision); // deleting nothing does not advance the revision

      const recreated = await store.put('a', '3');
      expect(await store.get('a')).toMatchObject({ createRevision: recreated.revision, version: 1 });
      expect((await store.range('a')).revision).toBe(recreated.revision);
    }, 15_000);

    it('ranges over a prefix with limit, startKey, more and count', async () => {
      for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'p/e', 'q/x', 'p']) await store.put(k, `v-${k}`);
      const all = await store.range('p/');
      expect(all.kvs.map((kv) => kv.key)).toEqual(['p/a', 'p/b', 'p/c', 'p/d', 'p/e']);
      expect(all).toMatchObject({ more: false, count: 5 });

      const page1 = await store.range('p/', { limit: 2 });
      expect(page1.kvs.map((kv) => kv.key)).toEqual(['p/a', 'p/b']);
      expect(page1).toMatchObject({ more: true, count: 5 });

      const page2 = await store.range('p/', { limit: 2, startKey: 'p/b\0' });
      expect(page2.kvs.map((kv) => kv.key)).toEqual(['p/c', 'p/d']);
      expect(page2).toMatchObject({ more: true, count: 3 });

      const last = await store.range('p/', { limit: 2, startKey: 'p/e' });
      expect(last.kvs.map((kv) => kv.key)).toEqual(['p/e']);
      expect(last).toMatchObject({ more: false, count: 1 });

      const keys = await store.range('p/', { keysOnly: true });
      expect(keys.kvs.every((kv) => kv.value === '')).toBe(true);
      expect(keys.count).toBe(5);

      expect((await store.range('none/')).kvs).toEqual([]);
      expect((await store.range('')).count).toBe(7);

      const removed = await store.deletePrefix('p/');
      expect(removed.deleted).toBe(5);
      expect((await store.range('')).kvs.map((kv) => kv.key)).toEqual(['p', 'q/x']);
    }, 15_000);

    it('serializes concurrent writers: distinct revisions, one CAS winner, acknowledged writes readable', async () => {
      const writes = await Promise.all(Array.from({ length: 40 }, (_, i) => store.put(`cw/${i}`, `v${i}`)));
      expect(new Set(writes.map((w) => w.revision)).size).toBe(40);
      // Each writer reads its own write back as soon as it is acknowledged, while others are in flight.
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const { revision } = await store.put(`cw/${i}`, 'again');
          expect(await store.get(`cw/${i}`)).toMatchObject({ value: 'again', version: 2 });
          expect((await store.range(`cw/${i}`)).revision).toBeGreaterThanOrEqual(revision);
        }),
      );
      const base = (await store.get('cw/0')) as KeyValue;
      const racers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.txn(
            [{ key: 'cw/0', target: 'modRevision', op: '=', value: base.modRevision }],
            [{ type: 'put', key: 'cw/0', value: `racer${i}` }],
          ),
        ),
      );
      expect(racers.filter((r) => r.succeeded)).toHaveLength(1);
      const winner = racers.findIndex((r) => r.succeeded);
      expect((await store.get('cw/0'))?.value).toBe(`racer${winner}`);
      const listed = await store.range('cw/');
      expect(listed.count).toBe(40);
      expect(listed.revision).toBeGreaterThanOrEqual(Math.max(...racers.map((r) => r.revision)));
    }, 15_000);

    it('runs compare-and-swap transactions on every target', async () => {
      // Create-if-absent.
      const created = await store.txn(
        [{ key: 'cas', target: 'createRevision', op: '=', value: 0 }],
        [
          { type: 'put', key: 'cas', value: 'v1' },
          { type: 'get', key: 'cas' },
        ],
        [{ type: 'get', key: 'cas' }],
      );
      expect(created.succeeded).toBe(true);
      expect(created.results[0]).toBeUndefined();
      expect(created.results[1]).toMatchObject({ value: 'v1', modRevision: created.revision });
      const again = await store.txn(
        [{ key: 'cas', target: 'createRevision', op: '=', value: 0 }],
        [{ type: 'put', key: 'cas', value: 'nope' }],
        [{ type: 'get', key: 'cas' }],
      );
      expect(again.succeeded).toBe(false);
      expect(again.revision).toBe(created.revision);
      expect(again.results[0]).toMatchObject({ value: 'v1', createRevision: created.revision });

      // modRevision guards an update.
      const stale = await store.txn(
        [{ key: 'cas', target: 'modRevision', op: '=', value: created.revision - 1 }],
        [{ type: 'put', key: 'cas', value: 'stale' }],
      );
      expect(stale.succeeded).toBe(false);
      expect(stale.results).toEqual([]);
      const fresh = await store.txn(
        [{ key: 'cas', target: 'modRevision', op: '=', value: created.revision }],
        [{ type: 'put', key: 'cas', value: 'v2' }],
      );
      expect(fresh.succeeded).toBe(true);
      expect(fresh.revision).toBe(created.revision + 1);

      // version and value, with < > != operators.
      const checks: [Parameters<Store['txn']>[0], boolean][] = [
        [[{ key: 'cas', target: 'version', op: '=', value: 2 }], true],
        [[{ key: 'cas', target: 'version', op: '>', value: 2 }], false],
        [[{ key: 'cas', target: 'version', op: '<', value: 3 }], true],
        [[{ key: 'cas', target: 'version', op: '!=', value: 2 }], false],
        [[{ key: 'cas', target: 'value', op: '=', value: 'v2' }], true],
        [[{ key: 'cas', target: 'value', op: '!=', value: 'v2' }], false],
        [[{ key: 'cas', target: 'createRevision', op: '=', value: created.revision }], true],
        [[{ key: 'missing', target: 'version', op: '=', value: 0 }], true],
        [[{ key: 'missing', target: 'modRevision', op: '<', value: 1 }], true],
        [
          [
            { key: 'cas', target: 'value', op: '=', value: 'v2' },
            { key: 'cas', target: 'version', op: '=', value: 7 },
          ],
          false,
        ],
      ];
      for (const [compares, expected] of checks) {
        const res = await store.txn(compares, [{ type: 'get', key: 'cas' }]);
        expect({ compares, succeeded: res.succeeded }).toEqual({ compares, succeeded: expected });
      }

      // A multi-key write happens atomically at one revision.
      const multi = await store.txn(
        [{ key: 'cas', target: 'value', op: '=', value: 'v2' }],
        [
          { type: 'put', key: 'x', value: '1' },
          { type: 'put', key: 'y', value: '2' },
          { type: 'delete', key: 'cas' },
        ],
      );
      expect(multi.succeeded).toBe(true);
      expect((await store.get('x'))?.modRevision).toBe(multi.revision);
      expect((await store.get('y'))?.modRevision).toBe(multi.revision);
      expect(await store.get('cas')).toBeUndefined();
    }, 15_000);

    it('replays a watch from a past revision in order, then streams live events', async () => {
      const r1 = (await store.put('w/a', '1')).revision;
      const r2 = (await store.put('w/b', '1')).revision;
      await store.put('other', 'x');
      const r3 = (await store.put('w/a', '2')).revision;
      const r4 = (await store.delete('w/b')).revision;
      const t = await store.txn(
        [],
        [
          { type: 'put', key: 'w/c', value: '1' },
          { type: 'put', key: 'w/d', value: '1' },
        ],
      );

      const log = new EventLog();
      const watch = await store.watch('w/', r1, log.handlers);
      await log.until(() => log.events.length >= 6);
      expect(log.keys()).toEqual([
        'put w/a=1',
        'put w/b=1',
        'put w/a=2',
        'delete w/b',
        'put w/c=1',
        'put w/d=1',
      ]);
      expect(log.events.map((e) => e.revision)).toEqual([r1, r2, r3, r4, t.revision, t.revision]);
      const update = log.events[2]?.event;
      expect(update?.type === 'put' && update.prevKv?.value).toBe('1');
      const deletion = log.events[3]?.event;
      expect(deletion).toMatchObject({ type: 'delete', key: 'w/b', modRevision: r4 });

      const live = await store.put('w/e', 'live');
      await log.until(() => log.events.length >= 7);
      expect(log.events[6]).toMatchObject({
        revision: live.revision,
        event: { type: 'put', kv: { key: 'w/e', value: 'live' } },
      });
      await watch.close();
      await store.put('w/f', 'after close');
      await sleep(200);
      expect(log.events).toHaveLength(7);

      // Revision 0 means "from now on".
      const nowLog = new EventLog();
      const nowWatch = await store.watch('w/', 0, nowLog.handlers);
      const next = await store.put('w/g', '1');
      await nowLog.until(() => nowLog.events.length >= 1);
      expect(nowLog.events.map((e) => e.revision)).toEqual([next.revision]);
      await nowWatch.close();
    }, 15_000);

    it('reports compaction to watches that start too early, and a re-list then works', async () => {
      const early = (await store.put('c/a', '1')).revision;
      await store.put('c/b', '1');
      const compactAt = (await store.put('c/a', '2')).revision;
      await store.put('c/c', '1');
      await store.compact(compactAt);
      await store.compact(compactAt); // compacting again is harmless

      const log = new EventLog();
      await store.watch('c/', early, log.handlers);
      await log.until(() => log.compacted !== undefined, 10_000, 'onCompacted');
      expect(log.compacted).toBeGreaterThanOrEqual(compactAt);
      expect(log.events).toEqual([]);

      const listed = await store.range('c/');
      expect(listed.kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['c/a=2', 'c/b=1', 'c/c=1']);
      const relog = new EventLog();
      const watch = await store.watch('c/', listed.revision + 1, relog.handlers);
      await store.put('c/d', '1');
      await relog.until(() => relog.events.length >= 1);
      expect(relog.keys()).toEqual(['put c/d=1']);
      expect(relog.compacted).toBeUndefined();
      await watch.close();
    }, 15_000);

    it('deletes lease keys on revoke and signals the loss', async () => {
      const lease = await store.grantLease(2);
      expect(lease.ttlSeconds).toBe(2);
      expect(lease.isLost()).toBe(false);
      await store.put('l/a', '1', { lease });
      await store.txn([], [{ type: 'put', key: 'l/b', value: '1', lease }]);
      expect((await store.get('l/a'))?.lease).toBe(lease.id);
      expect((await store.get('l/b'))?.lease).toBe(lease.id);

      const log = new EventLog();
      const watch = await store.watch('l/', 0, log.handlers);
      await lease.revoke();
      await within(lease.lost, 1000, 'lease.lost');
      expect(lease.isLost()).toBe(true);
      expect(await store.get('l/a')).toBeUndefined();
      expect(await store.get('l/b')).toBeUndefined();
      await log.until(() => log.events.length >= 2);
      expect(log.events.every((e) => e.event.type === 'delete')).toBe(true);
      await watch.close();
      await expect(store.put('l/c', '1', { lease })).rejects.toThrow(/lease not found/);
    }, 15_000);

    it('signals lease loss when another client revokes the lease', async () => {
      const other = await ctx.second();
      const lease = await store.grantLease(2);
      await store.put('l2/a', '1', { lease });
      await other.revokeLease(lease.id);
      const err = await within(lease.lost, 3000, 'lease.lost');
      expect(err).toBeInstanceOf(Error);
      expect(lease.isLost()).toBe(true);
      expect(await store.get('l2/a')).toBeUndefined();
      await other.revokeLease(lease.id); // revoking an unknown lease is not an error
    }, 15_000);

    it('keeps lease keys alive past the TTL while the holder is alive', async () => {
      const lease = await store.grantLease(1);
      await store.put('l3/a', '1', { lease });
      await sleep(2500);
      expect(lease.isLost()).toBe(false);
      expect((await store.get('l3/a'))?.lease).toBe(lease.id);
      await lease.revoke();
    }, 15_000);

    it('elects one leader at a time; the next candidate takes over on resign, lease loss and key loss', async () => {
      const other = await ctx.second();
      const a = await store.campaign('el', 'A', { ttlSeconds: 2 });
      expect(a.isLeader()).toBe(true);
      expect(a.key.startsWith('el/')).toBe(true);
      expect(await store.leader('el')).toBe('A');

      const bPromise = other.campaign('el', 'B', { ttlSeconds: 2 });
      await sleep(300);
      expect(await settled(bPromise)).toBe(false); // B waits while A leads

      const fencedByA = await store.txn([a.fence()], [{ type: 'put', key: 'el-data', value: 'from A' }]);
      expect(fencedByA.succeeded).toBe(true);

      await a.resign();
      await within(a.lost, 1000, 'a.lost');
      expect(a.isLeader()).toBe(false);
      const b: Leadership = await within(bPromise, 5000, 'B elected');
      expect(b.revision).toBeGreaterThan(a.revision);
      expect(await store.leader('el')).toBe('B');
      const lateA = await store.txn([a.fence()], [{ type: 'put', key: 'el-data', value: 'late A' }]);
      expect(lateA.succeeded).toBe(false);
      expect((await store.get('el-data'))?.value).toBe('from A');

      // Lease lost (revoked behind B's back): C takes over, B sees `lost` and its fence fails.
      const cPromise = store.campaign('el', 'C', { ttlSeconds: 2 });
      await sleep(200);
      expect(await settled(cPromise)).toBe(false);
      await store.revokeLease(b.lease.id);
      await within(b.lost, 3000, 'b.lost');
      const c = await within(cPromise, 5000, 'C elected');
      expect(b.isLeader()).toBe(false);
      expect(
        (await store.txn([b.fence()], [{ type: 'put', key: 'el-data', value: 'late B' }])).succeeded,
      ).toBe(false);
      expect(
        (await store.txn([c.fence()], [{ type: 'put', key: 'el-data', value: 'from C' }])).succeeded,
      ).toBe(true);
      expect(await other.leader('el')).toBe('C');

      // Key deleted behind C's back: C loses leadership.
      await other.delete(c.key);
      await within(c.lost, 3000, 'c.lost');
      expect(c.isLeader()).toBe(false);
      expect(await store.leader('el')).toBeUndefined();
    }, 15_000);

    it('abandons a campaign when its signal aborts', async () => {
      const a = await store.campaign('ab', 'A', { ttlSeconds: 2 });
      const controller = new AbortController();
      const b = store.campaign('ab', 'B', { ttlSeconds: 2, signal: controller.signal });
      await sleep(200);
      controller.abort(new Error('stop campaigning'));
      await expect(within(b, 3000, 'aborted campaign')).rejects.toThrow('stop campaigning');
      await sleep(100);
      expect((await store.range('ab/')).kvs.map((kv) => kv.value)).toEqual(['A']);
      await a.resign();
      expect(await store.leader('ab')).toBeUndefined();
    }, 15_000);
  });
}

// PrefixMirror on the embedded store: other writers' changes arrive by the watch, a write through
// the store object is waited for by the next read with nothing noted by the writer (or re-listed), and a broken or compacted watch makes readers re-list instead of
// trusting a copy that may be stale. (The Authorizer's and WatchedAccounts' own specs, and
// libs/rbac's mirror.int-spec.ts on real etcd, cover the same through their users.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from './embedded-store.js';
import { lastWrite, PrefixMirror } from './mirror.js';
import type { Store, WatchHandlers } from './store.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const PREFIX = '/orca/v1/things/';

/** The store, with a switch that stops delivering its watch events and the handlers to fail them. */
function breakableWatches(store: Store) {
  const handlers: WatchHandlers[] = [];
  let delivering = true;
  const wrapped = new Proxy(store, {
    get: (target, name) => {
      if (name === 'watch')
        return (prefix: string, from: number, h: WatchHandlers) => {
          handlers.push(h);
          return target.watch(prefix, from, {
            onEvents: (events, revision) => delivering && h.onEvents(events, revision),
            onCompacted: (revision) => delivering && h.onCompacted(revision),
            onError: (error) => delivering && h.onError?.(error),
          });
        };
      // Methods run with the proxy as `this`: writes through it are recorded against it.
      return Reflect.get(target, name) as unknown;
    },
  });
  return {
    store: wrapped,
    stopDelivering: () => (delivering = false),
    resume: () => (delivering = true),
    latest: () => handlers[handlers.length - 1] as WatchHandlers,
    watches: () => handlers.length,
  };
}

async function eventually(check: () => boolean | Promise<boolean>, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
}

describe('PrefixMirror', () => {
  let dir: string;
  let store: EmbeddedStore;
  const mirrors: PrefixMirror<unknown>[] = [];
  const open = (s: Store = store, log?: { warn(m: string): void }) => {
    // Values are numbers; "skip" is not kept; anything else that is not a number cannot be read.
    const mirror = new PrefixMirror<number>(
      s,
      PREFIX,
      (_key, value) => {
        if (value === 'skip') return undefined;
        const n = Number(value);
        if (Number.isNaN(n)) throw new Error('not a number');
        return n;
      },
      log,
    );
    mirrors.push(mirror);
    return mirror;
  };
  /** As a reader does: sync() waits for this process's newest write through the mirror's store. */
  const valueOf = async (mirror: PrefixMirror<number>, name: string) => {
    await mirror.sync();
    return mirror.entries().get(`${PREFIX}${name}`);
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-store-mirror-'));
    store = new EmbeddedStore({ dir });
  });
  afterEach(async () => {
    await Promise.all(mirrors.splice(0).map((m) => m.close()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists on first use, then follows puts and deletes by the watch', async () => {
    await store.put(`${PREFIX}a`, '1');
    await store.put('/orca/v1/other', '9');
    const warnings: string[] = [];
    const mirror = open(store, { warn: (m) => warnings.push(m) });
    expect(mirror.isCurrent()).toBe(false);
    await mirror.sync();
    expect(mirror.isCurrent()).toBe(true);
    expect([...mirror.entries()]).toEqual([[`${PREFIX}a`, 1]]);
    const generation = mirror.generation;
    await store.put(`${PREFIX}b`, '2');
    await store.put(`${PREFIX}c`, 'skip');
    await store.put(`${PREFIX}d`, 'garbage');
    await store.delete(`${PREFIX}a`);
    expect(await eventually(() => !mirror.entries().has(`${PREFIX}a`))).toBe(true);
    expect([...mirror.entries()]).toEqual([[`${PREFIX}b`, 2]]);
    expect(mirror.generation).toBeGreaterThan(generation);
    expect(warnings).toEqual([`ignoring unreadable ${PREFIX}d: not a number`]);
  });

  it('shows every kind of write through the store at the next read, with nothing noted', async () => {
    const mirror = open();
    await mirror.sync();
    for (let i = 0; i < 25; i++) {
      await store.put(`${PREFIX}x`, String(i));
      expect(await valueOf(mirror, 'x')).toBe(i);
      await store.delete(`${PREFIX}x`);
      expect(await valueOf(mirror, 'x')).toBeUndefined();
    }
    await store.txn([], [{ type: 'put', key: `${PREFIX}t`, value: '3' }]);
    expect(await valueOf(mirror, 't')).toBe(3);
    await store.txn([], [{ type: 'delete', key: `${PREFIX}t` }]);
    expect(await valueOf(mirror, 't')).toBeUndefined();
    const lease = await store.grantLease(30);
    await store.put(`${PREFIX}leased`, '4', { lease });
    expect(await valueOf(mirror, 'leased')).toBe(4);
    await store.put(`${PREFIX}sub/y`, '5');
    expect(await valueOf(mirror, 'sub/y')).toBe(5);
    await store.deletePrefix(`${PREFIX}sub/`);
    expect(await valueOf(mirror, 'sub/y')).toBeUndefined();
    await store.deletePrefix('/orca/v1/');
    expect(await valueOf(mirror, 'leased')).toBeUndefined();
    await lease.revoke();
  });

  it('records a write only against the registered prefixes holding the key', async () => {
    open();
    const { revision } = await store.put(`${PREFIX}x`, '1');
    expect(lastWrite(store, PREFIX)).toBe(revision);
    await store.put('/orca/v1/thingsX', '1');
    await store.put('/orca/v1/elsewhere/x', '1');
    expect(lastWrite(store, PREFIX)).toBe(revision);
    // Deleting a missing key makes no watch event: nothing to wait for.
    await store.delete(`${PREFIX}missing`);
    expect(lastWrite(store, PREFIX)).toBe(revision);
    // A prefix is watched from its first lastWrite on, also without a mirror.
    expect(lastWrite(store, '/orca/v1/elsewhere/')).toBe(0);
    const later = await store.put('/orca/v1/elsewhere/y', '1');
    expect(lastWrite(store, '/orca/v1/elsewhere/')).toBe(later.revision);
    expect(lastWrite(store, PREFIX)).toBe(revision);
  });

  it('re-lists when a write never arrives by the watch', async () => {
    const watches = breakableWatches(store);
    const mirror = open(watches.store);
    await mirror.sync();
    watches.stopDelivering();
    await watches.store.put(`${PREFIX}late`, '7');
    expect(mirror.isCurrent()).toBe(false);
    const started = Date.now();
    expect(await valueOf(mirror, 'late')).toBe(7);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(watches.watches()).toBe(2);
  });

  it('re-lists after a watch failure instead of serving a stale copy', async () => {
    const watches = breakableWatches(store);
    const mirror = open(watches.store);
    expect(await valueOf(mirror, 'k')).toBeUndefined();
    // The watch stops delivering, then fails: the write in between must still be seen.
    watches.stopDelivering();
    await store.put(`${PREFIX}k`, '1');
    watches.resume();
    watches.latest().onError?.(new Error('connection reset'));
    expect(mirror.isCurrent()).toBe(false);
    expect(await valueOf(mirror, 'k')).toBe(1);
    expect(watches.watches()).toBe(2);
    // And the new watch carries later changes.
    await store.delete(`${PREFIX}k`);
    expect(await eventually(() => !mirror.entries().has(`${PREFIX}k`))).toBe(true);
  });

  it('re-lists after compaction', async () => {
    const watches = breakableWatches(store);
    const mirror = open(watches.store);
    expect(await valueOf(mirror, 'k')).toBeUndefined();
    watches.stopDelivering();
    const { revision } = await store.put(`${PREFIX}k`, '5');
    watches.resume();
    watches.latest().onCompacted(revision);
    expect(await valueOf(mirror, 'k')).toBe(5);
    expect(watches.watches()).toBe(2);
  });

  it('fails when the store cannot answer and nothing is loaded, and once closed', async () => {
    const closed = open();
    await closed.close();
    await expect(closed.sync()).rejects.toThrow(`the ${PREFIX} copy is closed`);
    const mirror = open();
    await store.close();
    await expect(mirror.sync()).rejects.toThrow();
  });
});

import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from './embedded-store.js';
import { openStore } from './index.js';
import { StoreUnavailableError, type KeyValue } from './store.js';
import { describeStoreContract, EventLog, within } from './store.contract.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orca-embedded-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describeStoreContract('EmbeddedStore', async () => {
  const store = await EmbeddedStore.open(tempDir());
  return { store, second: async () => store, cleanup: () => store.close() };
});

describe('EmbeddedStore persistence', () => {
  it('keeps every write across close and reopen, with history for watches', async () => {
    const dir = tempDir();
    const store = await openStore({ kind: 'embedded', dir });
    const first = await store.put('k/a', '1');
    await store.put('k/b', '2');
    await store.txn(
      [],
      [
        { type: 'put', key: 'k/c', value: '3' },
        { type: 'delete', key: 'k/a' },
      ],
    );
    const before = await store.range('k/');
    await store.close();
    await expect(store.get('k/b')).rejects.toThrow(/closed/);

    const reopened = await EmbeddedStore.open(dir);
    const after = await reopened.range('k/');
    expect(after.kvs).toEqual(before.kvs);
    expect(after.revision).toBe(before.revision);
    const log = new EventLog();
    await reopened.watch('k/', first.revision, log.handlers);
    await log.until(() => log.events.length >= 4);
    expect(log.keys()).toEqual(['put k/a=1', 'put k/b=2', 'put k/c=3', 'delete k/a']);
    expect((await reopened.put('k/d', '4')).revision).toBe(before.revision + 1);
    await reopened.close();
  }, 15_000);

  it('keeps acknowledged writes after a crash (reopen without close) and drops a torn tail', async () => {
    const dir = tempDir();
    const crashed = new EmbeddedStore({ dir });
    const writes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => crashed.put(`crash/${String(i).padStart(2, '0')}`, `v${i}`)),
    );
    const last = Math.max(...writes.map((w) => w.revision));
    // A write torn in the middle by the crash: never acknowledged, must be ignored.
    appendFileSync(join(dir, 'wal.log'), '{"r":99999,"o":[["p","torn","x"');

    const reopened = new EmbeddedStore({ dir });
    const listed = await reopened.range('crash/');
    expect(listed.count).toBe(50);
    expect(listed.revision).toBe(last);
    expect(await reopened.get('torn')).toBeUndefined();
    expect((await reopened.put('after', 'crash')).revision).toBe(last + 1);
    await reopened.close();
    const again = new EmbeddedStore({ dir });
    expect((await again.get('after'))?.value).toBe('crash');
    expect((await again.range('crash/')).count).toBe(50);
    await again.close();
    await crashed.close(); // the abandoned instance writes nothing on close
  }, 15_000);

  it('snapshots and truncates the log, and recovers from snapshot plus log', async () => {
    const dir = tempDir();
    const store = new EmbeddedStore({ dir, snapshotEvery: 10 });
    for (let i = 0; i < 25; i++) await store.put(`s/${i % 7}`, `v${i}`);
    const before = await store.range('s/');
    const walLines = readFileSync(join(dir, 'wal.log'), 'utf8').split('\n').filter(Boolean);
    expect(walLines.length).toBeLessThan(10);
    expect(readFileSync(join(dir, 'snapshot.json'), 'utf8')).toContain('"format":1');
    await store.close();

    const reopened = new EmbeddedStore({ dir, snapshotEvery: 10 });
    const after = await reopened.range('s/');
    expect(after.kvs).toEqual(before.kvs);
    expect(after.revision).toBe(before.revision);
    // History before the snapshot is gone: such watches are told to re-list.
    const log = new EventLog();
    await reopened.watch('s/', 2, log.handlers);
    await log.until(() => log.compacted !== undefined);
    await reopened.close();
  }, 15_000);

  it('persists compaction', async () => {
    const dir = tempDir();
    const store = new EmbeddedStore({ dir });
    const early = await store.put('pc/a', '1');
    const later = await store.put('pc/a', '2');
    await store.compact(later.revision);
    await store.close();
    const reopened = new EmbeddedStore({ dir });
    const log = new EventLog();
    await reopened.watch('pc/', early.revision, log.handlers);
    await log.until(() => log.compacted !== undefined);
    expect(log.compacted).toBe(later.revision);
    await reopened.close();
  }, 15_000);

  it('drops leased keys on reopen', async () => {
    const dir = tempDir();
    const store = new EmbeddedStore({ dir });
    const lease = await store.grantLease(30);
    await store.put('lk/leased', '1', { lease });
    await store.put('lk/plain', '1');
    await store.close();
    await within(lease.lost, 100, 'lost on close');
    const reopened = new EmbeddedStore({ dir });
    expect((await reopened.range('lk/')).kvs.map((kv) => kv.key)).toEqual(['lk/plain']);
    await reopened.close();
  }, 15_000);
});

describe('EmbeddedStore leases', () => {
  it('expires a lease when the process stalls past its TTL', async () => {
    const store = new EmbeddedStore({ dir: tempDir() });
    const lease = await store.grantLease(1);
    await store.put('stall/a', '1', { lease });
    const until = Date.now() + 1600;
    while (Date.now() < until) {
      // busy-wait: the event loop (and so the internal keep-alive) is blocked
    }
    await within(lease.lost, 2000, 'lease.lost after a stall');
    expect(await store.get('stall/a')).toBeUndefined();
    await store.close();
  }, 15_000);
});

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('EmbeddedStore group commit with asynchronous fsync', () => {
  it('holds reads issued while a flush is in flight until its writes are acknowledged', async () => {
    const order: string[] = [];
    const heldReads: Promise<unknown>[] = [];
    const store: EmbeddedStore = new EmbeddedStore({
      dir: tempDir(),
      onWalSync: () => {
        // The batch is on disk but not yet acknowledged: these reads must wait for the acknowledgement.
        heldReads.push(store.get('gc/k').then((kv) => order.push(`held get ${kv?.value ?? 'missing'}`)));
        heldReads.push(store.range('gc/').then((r) => order.push(`held range ${r.count}`)));
        heldReads.push(
          store.txn([], [{ type: 'get', key: 'gc/k' }]).then((t) => {
            order.push(`held txn ${(t.results[0] as KeyValue | undefined)?.value ?? 'missing'}`);
          }),
        );
      },
    });
    let acknowledged = false;
    const written = store.put('gc/k', 'v').then(() => {
      acknowledged = true;
      order.push('ack');
    });
    // Reads issued on every turn of the event loop, also while the log write and sync run.
    const polls: Promise<unknown>[] = [];
    while (!acknowledged) {
      polls.push(store.get('gc/k').then((kv) => order.push(kv ? 'poll saw' : 'poll missed')));
      await nextTurn();
    }
    await Promise.all([written, ...heldReads, ...polls]);
    const ack = order.indexOf('ack');
    expect(order.slice(0, ack).every((o) => o === 'poll missed')).toBe(true);
    expect(order.slice(ack + 1)).toEqual(
      expect.arrayContaining(['held get v', 'held range 1', 'held txn v']),
    );
    expect(order.slice(ack + 1).filter((o) => o.includes('miss'))).toEqual([]);
    await store.close();
  }, 15_000);

  it('lets writers queued while a flush is in flight share the next fsync', async () => {
    let syncs = 0;
    let second: Promise<{ revision: number }>[] = [];
    const store: EmbeddedStore = new EmbeddedStore({
      dir: tempDir(),
      onWalSync: () => {
        syncs++;
        if (syncs === 1) second = Array.from({ length: 64 }, (_, i) => store.put(`share/b/${i}`, 'x'));
      },
    });
    const first = await Promise.all(Array.from({ length: 64 }, (_, i) => store.put(`share/a/${i}`, 'x')));
    const later = await Promise.all(second);
    expect(syncs).toBe(2);
    const firstRevisions = first.map((w) => w.revision);
    expect(new Set(firstRevisions).size).toBe(64);
    expect(Math.min(...later.map((w) => w.revision))).toBe(Math.max(...firstRevisions) + 1);
    expect((await store.range('share/')).count).toBe(128);
    await store.close();
  }, 15_000);

  it('recovers every acknowledged write from a copy of the data dir taken at an acknowledgement', async () => {
    const dir = tempDir();
    const copy = join(tempDir(), 'copy');
    const store = new EmbeddedStore({ dir });
    const acknowledged = new Map<string, number>();
    let atCopy: Map<string, number> | undefined;
    await Promise.all(
      Array.from({ length: 16 }, async (_, writer) => {
        for (let i = 0; i < 30; i++) {
          const key = `copy/${writer}/${i % 5}`;
          await store.put(key, String(i));
          acknowledged.set(key, i);
          // A crash right after this acknowledgement: the disk as it is now.
          if (writer === 3 && i === 20) {
            cpSync(dir, copy, { recursive: true });
            atCopy = new Map(acknowledged);
          }
        }
      }),
    );
    await store.close();
    expect(atCopy?.size).toBeGreaterThan(0);
    const recovered = new EmbeddedStore({ dir: copy });
    for (const [key, value] of atCopy as Map<string, number>) {
      // Writes of the same batch whose writers had not run yet may be there too, never older ones.
      expect(Number((await recovered.get(key))?.value)).toBeGreaterThanOrEqual(value);
    }
    await recovered.close();
  }, 15_000);

  it('finishes the flush in flight and queued writes on close, and refuses later ones', async () => {
    const dir = tempDir();
    let closing: Promise<void> | undefined;
    const store: EmbeddedStore = new EmbeddedStore({
      dir,
      onWalSync: () => {
        closing ??= store.close();
      },
    });
    const first = Array.from({ length: 8 }, (_, i) => store.put(`close/a/${i}`, 'x'));
    await nextTurn(); // the first batch is in flight now
    const queued = Array.from({ length: 8 }, (_, i) => store.put(`close/b/${i}`, 'x'));
    await Promise.all([...first, ...queued]);
    await closing;
    await expect(store.put('close/late', 'x')).rejects.toThrow(/closed/);
    await expect(store.get('close/a/0')).rejects.toThrow(/closed/);
    const reopened = new EmbeddedStore({ dir });
    expect((await reopened.range('close/')).count).toBe(16);
    await reopened.close();
  }, 15_000);

  it('goes broken when the log sync fails: writers rejected, later reads and writes refused', async () => {
    let failSync = false;
    const store = new EmbeddedStore({
      dir: tempDir(),
      onWalSync: () => {
        // A throw here counts as a failed sync.
        if (failSync) throw new Error('disk gone');
      },
    });
    await store.put('broken/ok', '1');
    failSync = true;
    const failed = [store.put('broken/a', '1'), store.put('broken/b', '1')];
    for (const write of failed) await expect(write).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.get('broken/ok')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.put('broken/c', '1')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.health()).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
  }, 15_000);
});

import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from './embedded-store.js';
import { openStore } from './index.js';
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

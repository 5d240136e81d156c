// PortStore over a real MessageChannel to an EmbeddedStore: reads, watches, a mirror in the
// "worker" that sees the owning side's write before answering, and writes refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { EmbeddedStore } from './embedded-store.js';
import { lastWrite, PrefixMirror } from './mirror.js';
import { PortStore, serveStoreOverPort } from './port-store.js';
import type { WatchEvent } from './store.js';

describe('PortStore', () => {
  let dir: string;
  let store: EmbeddedStore;
  let view: PortStore;
  let stopServing: () => Promise<void>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-port-store-'));
    store = new EmbeddedStore({ dir });
    const channel = new MessageChannel();
    stopServing = serveStoreOverPort(store, channel.port1);
    view = new PortStore(channel.port2);
  });

  afterEach(async () => {
    await view.close();
    await stopServing();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads what the owning store holds', async () => {
    await store.put('/a/1', 'one');
    await store.put('/a/2', 'two');
    expect((await view.get('/a/1'))?.value).toBe('one');
    expect(await view.get('/a/missing')).toBeUndefined();
    const listed = await view.range('/a/', { limit: 1 });
    expect(listed.kvs.map((kv) => kv.value)).toEqual(['one']);
    expect(listed.more).toBe(true);
    expect(listed.count).toBe(2);
    await expect(view.health()).resolves.toBeUndefined();
  });

  it('delivers watch events until the watch is closed', async () => {
    const { revision } = await store.put('/w/seed', 'x');
    const events: WatchEvent[] = [];
    const watch = await view.watch('/w/', revision + 1, {
      onEvents: (batch) => events.push(...batch),
      onCompacted: () => undefined,
    });
    await store.put('/w/k', 'v1');
    await store.delete('/w/seed');
    await new Promise((r) => setTimeout(r, 50));
    expect(events.map((e) => e.type)).toEqual(['put', 'delete']);
    await watch.close();
    await store.put('/w/k', 'v2');
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toHaveLength(2);
  });

  it("gives the view's mirrors the owning side's writes before they answer", async () => {
    const mirror = new PrefixMirror(view, '/m/', (_key, value) => value);
    await mirror.sync();
    for (let i = 0; i < 20; i++) {
      const { revision } = await store.put(`/m/${i}`, `v${i}`);
      // No waiting for the watch: sync() knows of the write and waits for it.
      await mirror.sync();
      expect(mirror.entries().get(`/m/${i}`)).toBe(`v${i}`);
      expect(lastWrite(view, '/m/')).toBe(revision);
    }
    await mirror.close();
  });

  it('refuses writes, and answers nothing once closed', async () => {
    await expect(view.put()).rejects.toThrow('read-only');
    await expect(view.txn([], [])).rejects.toThrow('read-only');
    await view.close();
    await expect(view.get('/a')).rejects.toThrow('closed');
  });
});

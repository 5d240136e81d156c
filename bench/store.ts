// The embedded store's commit path: 32 concurrent writers each putting in a loop, and how much of
// the event loop that costs (event-loop utilisation and the worst delay of a 1 ms timer while
// writing), which is what the store's fsync takes away from the requests served in the same
// process. The reference is the same client load through EtcdStore to a real etcd (Debian's), whose
// fsync runs in its own process. Prints figures only. Run alone: `node --import ./scripts/register.mjs dist/bench/store.js`.
import { EmbeddedStore, EtcdStore, type Store } from '@orca/store';
import { startEtcd } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const DURATION_MS = Number(process.env.ORCA_BENCH_SECONDS ?? 4) * 1000;
const WRITERS = 32;

export interface StoreFigures {
  writesPerSecond: number;
  eventLoopUtilisation: number;
  maxTimerDelayMs: number;
}

/** Runs the writers against a fresh store from `open` and returns the figures. */
export async function measureStore(
  open: (dir: string) => Promise<Pick<Store, 'put' | 'close'>>,
): Promise<StoreFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-store-'));
  const store = await open(dir);
  const value = 'x'.repeat(200);
  try {
    let writes = 0;
    let stop = false;
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const startUtilisation = performance.eventLoopUtilization();
    delay.enable();
    const started = performance.now();
    const timer = setTimeout(() => (stop = true), DURATION_MS);
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        for (let i = 0; !stop; i++) {
          await store.put(`bench/${writer}/${i % 100}`, value);
          writes++;
        }
      }),
    );
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    const utilisation = performance.eventLoopUtilization(startUtilisation);
    return {
      writesPerSecond: writes / seconds,
      eventLoopUtilisation: utilisation.utilization,
      maxTimerDelayMs: delay.max / 1e6,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatStoreFigures(name: string, figures: StoreFigures): string {
  return (
    `${name}: ${figures.writesPerSecond.toFixed(0)} writes/s with ${WRITERS} writers, ` +
    `event loop ${(figures.eventLoopUtilisation * 100).toFixed(0)} % busy ` +
    `(${((figures.eventLoopUtilisation * 1e6) / figures.writesPerSecond).toFixed(1)} µs per write), ` +
    `worst timer delay ${figures.maxTimerDelayMs.toFixed(1)} ms`
  );
}

export async function benchStore(): Promise<void> {
  const figures = await measureStore((dir) => EmbeddedStore.open(dir));
  console.log(formatStoreFigures('embedded store put', figures));
  const etcd = await startEtcd();
  try {
    const reference = await measureStore(async () => new EtcdStore({ endpoints: etcd.endpoints }));
    console.log(formatStoreFigures('reference: etcd via EtcdStore put', reference));
    console.log(
      `embedded/etcd writes/s ratio: ${(figures.writesPerSecond / reference.writesPerSecond).toFixed(2)}`,
    );
  } finally {
    await etcd.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await benchStore();

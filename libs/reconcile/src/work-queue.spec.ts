import { ManualClock, flushAsync } from './clock.js';
import { WorkQueue } from './work-queue.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('deduplicates waiting keys and runs each once', async () => {
    const seen: string[] = [];
    const q = new WorkQueue<string>({ handler: async (k) => void seen.push(k) });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    q.start();
    await q.idle();
    expect(seen).toEqual(['a', 'b']);
  });

  it('never runs a key twice at once, but runs it again if it was added while running', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue<string>({
      concurrency: 4,
      handler: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        if (runs === 1) await gate.promise;
        running--;
      },
    });
    q.start();
    q.add('k');
    await flushAsync();
    q.add('k');
    q.add('k');
    await flushAsync();
    expect(runs).toBe(1);
    gate.resolve();
    await q.idle();
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
  });

  it('handles different keys concurrently up to the limit', async () => {
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const started: string[] = [];
    const q = new WorkQueue<string>({
      concurrency: 2,
      handler: async (k) => {
        started.push(k);
        const g = deferred();
        gates.set(k, g);
        await g.promise;
      },
    });
    q.start();
    ['a', 'b', 'c'].forEach((k) => q.add(k));
    await flushAsync();
    expect(started).toEqual(['a', 'b']);
    gates.get('a')!.resolve();
    await flushAsync();
    await flushAsync();
    expect(started).toEqual(['a', 'b', 'c']);
    gates.get('b')!.resolve();
    gates.get('c')!.resolve();
    await q.idle();
  });

  it('retries a failing key with exponential backoff and resets it on success', async () => {
    const clock = new ManualClock(1000);
    const attempts: number[] = [];
    let failUntil = 4;
    const q = new WorkQueue<string>({
      clock,
      baseDelayMs: 100,
      maxDelayMs: 350,
      handler: async () => {
        attempts.push(clock.now());
        if (attempts.length < failUntil) throw new Error('not yet');
      },
    });
    q.start();
    q.add('k');
    await flushAsync();
    expect(q.failureCount('k')).toBe(1);
    await clock.advance(99);
    expect(attempts).toHaveLength(1);
    await clock.advance(1000);
    // 100, 200, then 400 capped to 350.
    expect(attempts).toEqual([1000, 1100, 1300, 1650]);
    expect(q.failureCount('k')).toBe(0);
    expect(clock.pending).toBe(0);
    failUntil = 0;
    q.add('k');
    await q.idle();
    expect(attempts).toHaveLength(5);
  });

  it('addAfter keeps the earliest pending time, and stop drops pending work', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const q = new WorkQueue<string>({ clock, handler: async () => void seen.push(clock.now()) });
    q.start();
    q.addAfter('k', 500);
    q.addAfter('k', 200);
    q.addAfter('k', 900);
    await clock.advance(1000);
    expect(seen).toEqual([200]);
    q.addAfter('k', 100);
    await q.stop();
    await clock.advance(1000);
    q.add('k');
    await flushAsync();
    expect(seen).toEqual([200]);
  });

  it('reports errors to onError with the failure count', async () => {
    const clock = new ManualClock();
    const errors: string[] = [];
    const q = new WorkQueue<{ id: string }>({
      clock,
      keyOf: (k) => k.id,
      handler: async () => {
        throw new Error('boom');
      },
      onError: (k, err, n) => errors.push(`${k.id}:${(err as Error).message}:${n}`),
    });
    q.start();
    q.add({ id: 'x' });
    await flushAsync();
    await clock.advance(100);
    expect(errors).toEqual(['x:boom:1', 'x:boom:2']);
    expect(q.failureCount({ id: 'x' })).toBe(2);
    await q.stop();
  });
});

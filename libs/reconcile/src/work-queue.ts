import { realClock, type Clock, type TimerHandle } from './clock.js';

export interface WorkQueueOptions<K> {
  /** Converges one key; a throw schedules a retry with backoff. */
  handler: (key: K) => Promise<void>;
  /** Keys handled at once (each key by at most one worker). Default 1. */
  concurrency?: number;
  /** First retry delay; doubles per consecutive failure of the key. Default 100 ms. */
  baseDelayMs?: number;
  /** Cap on the retry delay. Default 30 s. */
  maxDelayMs?: number;
  clock?: Clock;
  /** Identity of a key (default String(key)); keys with the same identity are deduplicated. */
  keyOf?: (key: K) => string;
  onError?: (key: K, err: unknown, failures: number) => void;
}

/**
 * A level-triggered keyed work queue, after client-go's: adding a key that is already waiting is a
 * no-op; a key added while its handler runs is run once more afterwards (never concurrently); a
 * failed key comes back after an exponential backoff, and success resets its backoff.
 */
export class WorkQueue<K> {
  private readonly handler: (key: K) => Promise<void>;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly clock: Clock;
  private readonly keyOf: (key: K) => string;
  private readonly onError?: (key: K, err: unknown, failures: number) => void;

  private readonly queue: string[] = [];
  private readonly keys = new Map<string, K>();
  /** Waiting to run (in `queue`, or marked to run again after the in-flight run). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: TimerHandle }>();
  private readonly idleWaiters: (() => void)[] = [];
  private running = 0;
  private started = false;
  private stopped = false;

  constructor(opts: WorkQueueOptions<K>) {
    this.handler = opts.handler;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.clock = opts.clock ?? realClock;
    this.keyOf = opts.keyOf ?? ((k) => String(k));
    this.onError = opts.onError;
  }

  /** Begins handing keys to the handler (keys added before start wait). */
  start(): void {
    if (this.stopped) return;
    this.started = true;
    this.pump();
  }

  /** Stops taking keys, drops waiting ones and timers, and waits for running handlers. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.delayed.values()) this.clock.clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    await this.idle();
  }

  add(key: K): void {
    if (this.stopped) return;
    const id = this.keyOf(key);
    this.keys.set(id, key);
    if (this.dirty.has(id)) return;
    this.dirty.add(id);
    if (!this.processing.has(id)) this.queue.push(id);
    this.pump();
  }

  /** Adds the key after `ms`; an earlier pending delayed add of the same key wins. */
  addAfter(key: K, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const id = this.keyOf(key);
    const at = this.clock.now() + ms;
    const pending = this.delayed.get(id);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimeout(pending.timer);
    this.keys.set(id, key);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(id);
      this.add(key);
    }, ms);
    this.delayed.set(id, { at, timer });
  }

  /** Consecutive failures of the key since its last success. */
  failureCount(key: K): number {
    return this.failures.get(this.keyOf(key)) ?? 0;
  }

  /** Keys waiting to run now (not counting running or delayed ones). */
  get length(): number {
    return this.queue.length;
  }

  /** Resolves once nothing is queued or running (delayed retries may still be pending). */
  idle(): Promise<void> {
    if (this.running === 0 && (this.queue.length === 0 || !this.started || this.stopped))
      return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (!this.started || this.stopped) return;
    while (this.running < this.concurrency && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.dirty.delete(id);
      this.processing.add(id);
      this.running++;
      void this.run(id);
    }
    if (this.running === 0 && this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async run(id: string): Promise<void> {
    const key = this.keys.get(id)!;
    try {
      await this.handler(key);
      this.failures.delete(id);
    } catch (err) {
      const n = (this.failures.get(id) ?? 0) + 1;
      this.failures.set(id, n);
      this.onError?.(key, err, n);
      this.addAfter(key, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1)));
    } finally {
      this.processing.delete(id);
      this.running--;
      // Re-added while running: run again now that this run is done.
      if (this.dirty.has(id) && !this.stopped) this.queue.push(id);
      if (!this.dirty.has(id) && !this.delayed.has(id)) this.keys.delete(id);
      if (this.stopped && this.running === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
      this.pump();
    }
  }
}

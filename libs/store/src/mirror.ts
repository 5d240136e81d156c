// A store prefix kept in memory by a watch, for hot paths that must not read the store on every
// call (RBAC decisions, the identity questions of the Docker and Kubernetes front doors and of the
// Kubernetes webhooks). Correctness comes first:
//  - the copy is (re)listed on first use, after compaction and after any watch failure; while the
//    watch is broken, every read re-lists (and fails when the store cannot answer) instead of
//    serving a copy that may miss a revocation;
//  - read-your-writes in the writing process: every write through the store object records its
//    revision against the mirrored prefixes holding the key (mirror-writes.ts), and sync() waits
//    until the watch has delivered the newest one (or re-lists); writers have nothing to remember;
//  - other processes' writes are seen as soon as their watch event arrives.
import { writeMark, type WriteMark } from './mirror-writes.js';
import type { Store, Watch, WatchEvent } from './store.js';

export { lastWrite } from './mirror-writes.js';

export interface MirrorLog {
  warn(message: string): void;
}

/** How long a reader waits for the watch to deliver a known write before re-listing instead. */
const CATCH_UP_MS = 500;
const RETRY_MS = 1000;

interface Waiter {
  revision: number;
  resolve: (caughtUp: boolean) => void;
}

export class PrefixMirror<T> {
  private values = new Map<string, T>();
  /** The copy holds every change up to this store revision. */
  private revision = 0;
  private changes = 0;
  private healthy = false;
  private closed = false;
  private loading?: Promise<void>;
  private watch?: Watch;
  /** Identifies the current watch: events of a replaced one are ignored. */
  private watchToken?: object;
  private retry?: NodeJS.Timeout;
  private readonly waiters = new Set<Waiter>();
  /** The newest revision this process wrote under the prefix (moved by the store on each write). */
  private readonly written: WriteMark;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    /** The value kept for a key; undefined: not kept. */
    private readonly decode: (key: string, value: string) => T | undefined,
    private readonly log?: MirrorLog,
  ) {
    this.written = writeMark(store, prefix);
  }

  /** Bumped on every change: derived views are rebuilt when it moves. */
  get generation(): number {
    return this.changes;
  }

  /**
   * True while the copy is watched and holds every write this process made under the prefix:
   * then entries() may be read without awaiting sync() (hot paths skip a promise per call).
   */
  isCurrent(): boolean {
    return this.healthy && this.revision >= this.written.revision;
  }

  /** The current copy (read it only after sync(); do not keep it across awaits). */
  entries(): ReadonlyMap<string, T> {
    return this.values;
  }

  /**
   * Resolves once the copy is loaded, watched, and holds every write this process made under the
   * prefix through this store object (and every change up to `atLeast`, when given). Rejects when
   * the store cannot answer.
   */
  async sync(atLeast = 0): Promise<void> {
    if (this.closed) throw new Error(`the ${this.prefix} copy is closed`);
    const revision = Math.max(atLeast, this.written.revision);
    // A listing already under way may have been read before the write: then wait for the watch.
    if (!this.healthy) await this.reload();
    if (this.revision >= revision) return;
    const caughtUp = await new Promise<boolean>((resolve) => {
      const waiter: Waiter = { revision, resolve };
      this.waiters.add(waiter);
      setTimeout(() => {
        if (this.waiters.delete(waiter)) resolve(false);
      }, CATCH_UP_MS).unref();
    });
    if (!caughtUp || this.revision < revision) await this.reload();
    // The shared listing may predate the write: a fresh one reads at a revision that holds it.
    if (this.revision < revision) await this.reload();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.healthy = false;
    if (this.retry) clearTimeout(this.retry);
    this.watchToken = undefined;
    for (const waiter of this.waiters) waiter.resolve(false);
    this.waiters.clear();
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch(() => undefined);
  }

  /** One listing at a time; concurrent readers share it. */
  private reload(): Promise<void> {
    this.loading ??= this.list().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async list(): Promise<void> {
    this.healthy = false;
    const previous = this.watch;
    this.watch = undefined;
    this.watchToken = undefined;
    await previous?.close().catch(() => undefined);
    const listed = await this.store.range(this.prefix);
    const values = new Map<string, T>();
    for (const kv of listed.kvs) this.keep(values, kv.key, kv.value);
    const token = {};
    this.watchToken = token;
    // Set before the watch exists: its first events may be delivered before store.watch resolves.
    this.values = values;
    this.revision = listed.revision;
    this.changes++;
    const watch = await this.store.watch(this.prefix, listed.revision + 1, {
      onEvents: (events, revision) => {
        if (this.watchToken === token) this.apply(events, revision);
      },
      onCompacted: () => {
        if (this.watchToken !== token) return;
        this.broken();
        void this.reload().catch((error: Error) => this.failed(error));
      },
      onError: (error) => {
        if (this.watchToken !== token) return;
        this.failed(error);
      },
    });
    if (this.watchToken !== token || this.closed) {
      await watch.close().catch(() => undefined);
      if (this.closed) return;
      throw new Error(`the watch on ${this.prefix} failed while starting`);
    }
    this.watch = watch;
    this.healthy = true;
    this.wake();
  }

  private keep(values: Map<string, T>, key: string, value: string): void {
    let decoded: T | undefined;
    try {
      decoded = this.decode(key, value);
    } catch (error) {
      this.log?.warn(`ignoring unreadable ${key}: ${(error as Error).message}`);
    }
    if (decoded === undefined) values.delete(key);
    else values.set(key, decoded);
  }

  private apply(events: WatchEvent[], revision: number): void {
    for (const event of events) {
      if (event.type === 'put') this.keep(this.values, event.kv.key, event.kv.value);
      else this.values.delete(event.key);
    }
    if (revision > this.revision) this.revision = revision;
    this.changes++;
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters) {
      if (waiter.revision <= this.revision) {
        this.waiters.delete(waiter);
        waiter.resolve(true);
      }
    }
  }

  /** The watch is gone: readers re-list until a new one is up. */
  private broken(): void {
    this.healthy = false;
    this.watchToken = undefined;
    const watch = this.watch;
    this.watch = undefined;
    void watch?.close().catch(() => undefined);
    for (const waiter of this.waiters) waiter.resolve(false);
    this.waiters.clear();
  }

  private failed(error: Error): void {
    if (this.closed) return;
    this.broken();
    this.log?.warn(`watch on ${this.prefix} failed, re-listing: ${error.message}`);
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed && !this.healthy) this.reload().catch((again: Error) => this.failed(again));
    }, RETRY_MS);
    this.retry.unref();
  }
}

// Single-node, in-process store with etcd's revision semantics, for `npm start` and tests.
// Durability: every committed transaction is appended to a write-ahead log and fdatasync'ed before
// it is acknowledged; a snapshot of the live keys is written every `snapshotEvery` records and the
// log is then truncated. The disk I/O is asynchronous so the event loop keeps serving meanwhile.
// Group commit: one flush at a time applies its batch to memory, writes and syncs the log, and only
// then resolves its writers and emits watch events; writes queued while it runs form the next batch.
// Every read waits for an in-flight flush, so no reader ever sees a write that is not yet durable.
import { randomInt } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fsync,
  fsyncSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  write,
  writeSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { campaign, leader } from './election.js';
import { compareKeys, lowerBound, prefixEnd } from './keys.js';
import { recordWrite } from './mirror-writes.js';
import {
  StoreUnavailableError,
  type CampaignOptions,
  type Compare,
  type KeyValue,
  type Leadership,
  type Lease,
  type PutOptions,
  type RangeOptions,
  type RangeResult,
  type Store,
  type TxnOp,
  type TxnResult,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
} from './store.js';

export interface EmbeddedStoreOptions {
  /** Directory holding the snapshot and the write-ahead log; created if missing. */
  dir: string;
  /** Write a snapshot and truncate the log after this many log records (default 10000). */
  snapshotEvery?: number;
  /** Revisions of history kept for watches from the past before auto-compaction (default 10000). */
  historyLimit?: number;
  /** Called after each fdatasync of the write-ahead log by a flush (for tests and metrics). */
  onWalSync?: () => void;
}

type WalOp = ['p', string, string, string | null] | ['d', string];
type WalRecord = { r: number; o: WalOp[] } | { c: number };

interface Snapshot {
  format: 1;
  revision: number;
  compactRevision: number;
  kvs: KeyValue[];
}

interface HistoryEntry {
  revision: number;
  events: WatchEvent[];
}

const SNAPSHOT = 'snapshot.json';
const WAL = 'wal.log';

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('embedded store is closed');
}

function settled(resolve: () => void, reject: (err: unknown) => void) {
  return (err: NodeJS.ErrnoException | null): void => (err ? reject(err) : resolve());
}

async function writeAll(fd: number, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await new Promise<number>((resolve, reject) =>
      write(fd, data, offset, data.length - offset, null, (err, written) =>
        err ? reject(err) : resolve(written),
      ),
    );
  }
}

const datasyncFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fdatasync(fd, settled(resolve, reject)));
const fsyncFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fsync(fd, settled(resolve, reject)));
const truncateFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => ftruncate(fd, 0, settled(resolve, reject)));

class EmbeddedLease implements Lease {
  readonly lost: Promise<Error>;
  private lostError: Error | undefined;
  private resolveLost!: (err: Error) => void;
  private expiresAt: number;
  private timer: NodeJS.Timeout | undefined;
  private revoking: Promise<void> | undefined;

  constructor(
    private readonly store: EmbeddedStore,
    readonly id: string,
    readonly ttlSeconds: number,
  ) {
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
    this.expiresAt = Date.now() + ttlSeconds * 1000;
    // The internal keepalive: refreshes the lease unless the process stalled past the TTL,
    // in which case the lease expires as it would on etcd.
    this.timer = setInterval(() => this.tick(), Math.max(100, (ttlSeconds * 1000) / 3));
    this.timer.unref();
  }

  private tick(): void {
    if (this.lostError) return;
    if (Date.now() > this.expiresAt) {
      this.stopTimer();
      void this.store.endLease(this.id, new Error(`lease ${this.id} expired`)).catch(() => undefined);
      return;
    }
    this.expiresAt = Date.now() + this.ttlSeconds * 1000;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  markLost(err: Error): void {
    if (this.lostError) return;
    this.stopTimer();
    this.lostError = err;
    this.resolveLost(err);
  }

  isLost(): boolean {
    return this.lostError !== undefined;
  }

  revoke(): Promise<void> {
    this.revoking ??= this.store.endLease(this.id, new Error(`lease ${this.id} revoked`));
    return this.revoking;
  }
}

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

class EmbeddedWatcher implements Watch {
  private queue: (() => void)[] = [];
  private draining = false;
  closed = false;

  constructor(
    readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly detach: (w: EmbeddedWatcher) => void,
  ) {}

  offer(entry: HistoryEntry): void {
    const events = entry.events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(this.prefix));
    if (events.length > 0) this.enqueue(() => this.handlers.onEvents(events, entry.revision));
  }

  compacted(compactRevision: number): void {
    this.enqueue(() => this.handlers.onCompacted(compactRevision));
    this.closed = true;
    this.detach(this);
  }

  // Handlers run asynchronously and strictly in order: replayed history before live events.
  private enqueue(fn: () => void): void {
    this.queue.push(fn);
    if (this.draining) return;
    this.draining = true;
    queueMicrotask(() => this.drain());
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const fn = this.queue.shift() as () => void;
      try {
        fn();
      } catch (err) {
        // A throwing handler must not break the store; report it like etcd3 reports watcher errors.
        try {
          this.handlers.onError?.(err instanceof Error ? err : new Error(String(err)));
        } catch {
          // ignore
        }
      }
    }
    this.draining = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.detach(this);
  }
}

export class EmbeddedStore implements Store {
  private readonly dir: string;
  private readonly snapshotEvery: number;
  private readonly historyLimit: number;
  private sorted: string[] = [];
  private readonly kvs = new Map<string, KeyValue>();
  private revision = 1;
  private compactRevision = 0;
  private history: HistoryEntry[] = [];
  private readonly leases = new Map<string, EmbeddedLease>();
  private readonly leaseKeys = new Map<string, Set<string>>();
  private readonly watchers = new Set<EmbeddedWatcher>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  /** The flush in flight (apply, log write and sync, maybe a snapshot): batches never overlap. */
  private flushing: Promise<void> | undefined;
  /** Set while a batch is applied in memory but not yet durable; every read waits for it. */
  private undurable: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly onWalSync: (() => void) | undefined;
  private walFd: number;
  private walRecords = 0;
  private walBuffer: string[] = [];
  private batchEvents: HistoryEntry[] = [];
  private closed = false;
  private broken: Error | undefined;

  constructor(options: EmbeddedStoreOptions) {
    this.dir = options.dir;
    this.snapshotEvery = options.snapshotEvery ?? 10_000;
    this.historyLimit = options.historyLimit ?? 10_000;
    this.onWalSync = options.onWalSync;
    mkdirSync(this.dir, { recursive: true });
    this.recover();
    this.walFd = openSync(join(this.dir, WAL), 'a');
    this.dropLeasedKeys();
  }

  static async open(dir: string, options: Omit<EmbeddedStoreOptions, 'dir'> = {}): Promise<EmbeddedStore> {
    return new EmbeddedStore({ ...options, dir });
  }

  // ---- recovery ----

  private recover(): void {
    const snapshotPath = join(this.dir, SNAPSHOT);
    let snapshotRevision = 0;
    if (existsSync(snapshotPath)) {
      const snap = JSON.parse(readFileSync(snapshotPath, 'utf8')) as Snapshot;
      this.revision = snap.revision;
      this.compactRevision = snap.compactRevision;
      snapshotRevision = snap.revision;
      for (const kv of snap.kvs) this.kvs.set(kv.key, kv);
      this.sorted = [...this.kvs.keys()].sort(compareKeys);
    }
    const walPath = join(this.dir, WAL);
    if (existsSync(walPath)) {
      const text = readFileSync(walPath, 'utf8');
      let offset = 0;
      while (offset < text.length) {
        const nl = text.indexOf('\n', offset);
        if (nl < 0) break; // torn tail: never acknowledged
        let record: WalRecord;
        try {
          record = JSON.parse(text.slice(offset, nl)) as WalRecord;
        } catch {
          break;
        }
        offset = nl + 1;
        this.walRecords++;
        if ('c' in record) {
          if (record.c > this.compactRevision) this.compactRevision = record.c;
        } else if (record.r > this.revision) {
          const entry = this.applyOps(record.o, record.r);
          this.history.push(entry);
        }
      }
      if (offset < Buffer.byteLength(text)) {
        // Cut the torn record so new appends start on a clean line.
        const fd = openSync(walPath, 'r+');
        ftruncateSync(fd, Buffer.byteLength(text.slice(0, offset)));
        fsyncSync(fd);
        closeSync(fd);
      }
    }
    // History before the snapshot is gone: watches from there must re-list.
    this.compactRevision = Math.max(this.compactRevision, snapshotRevision);
    this.history = this.history.filter((h) => h.revision > this.compactRevision);
    this.trimHistory();
  }

  // Leases do not survive a restart; their keys would expire anyway.
  private dropLeasedKeys(): void {
    const ops: WalOp[] = [];
    for (const kv of this.kvs.values()) if (kv.lease) ops.push(['d', kv.key]);
    if (ops.length === 0) return;
    const entry = this.applyOps(ops, this.revision + 1);
    this.appendWal({ r: entry.revision, o: ops });
    const data = this.takeWalBuffer();
    let written = 0;
    while (written < data.length) written += writeSync(this.walFd, data, written);
    fdatasyncSync(this.walFd); // still in the constructor: nothing else can run yet
    this.history.push(entry);
  }

  // ---- state changes (only called inside a flush or during recovery) ----

  private insertKey(key: string): void {
    const i = lowerBound(this.sorted, key);
    if (this.sorted[i] !== key) this.sorted.splice(i, 0, key);
  }

  private removeKey(key: string): void {
    const i = lowerBound(this.sorted, key);
    if (this.sorted[i] === key) this.sorted.splice(i, 1);
  }

  private unbind(kv: KeyValue): void {
    if (!kv.lease) return;
    const set = this.leaseKeys.get(kv.lease);
    set?.delete(kv.key);
  }

  /** Applies the mutations of one revision and returns its events. */
  private applyOps(ops: WalOp[], revision: number): HistoryEntry {
    const events: WatchEvent[] = [];
    for (const op of ops) {
      const key = op[1];
      const prev = this.kvs.get(key);
      if (op[0] === 'p') {
        const lease = op[3] ?? undefined;
        const kv: KeyValue = {
          key,
          value: op[2],
          createRevision: prev ? prev.createRevision : revision,
          modRevision: revision,
          version: prev ? prev.version + 1 : 1,
          ...(lease ? { lease } : {}),
        };
        if (prev) this.unbind(prev);
        else this.insertKey(key);
        this.kvs.set(key, kv);
        if (lease) {
          let set = this.leaseKeys.get(lease);
          if (!set) this.leaseKeys.set(lease, (set = new Set()));
          set.add(key);
        }
        events.push(prev ? { type: 'put', kv, prevKv: prev } : { type: 'put', kv });
      } else if (prev) {
        this.unbind(prev);
        this.kvs.delete(key);
        this.removeKey(key);
        events.push({ type: 'delete', key, modRevision: revision, prevKv: prev });
      }
    }
    this.revision = revision;
    return { revision, events };
  }

  /** Commits `ops` as the next revision, if they change anything. Returns the store revision. */
  private commit(ops: WalOp[]): number {
    const effective = ops.filter((op) => op[0] === 'p' || this.kvs.has(op[1]));
    if (effective.length === 0) return this.revision;
    const entry = this.applyOps(effective, this.revision + 1);
    // Read-your-writes: this process's mirrors of these keys wait for this revision.
    for (const op of effective) recordWrite(this, op[1], entry.revision);
    this.appendWal({ r: entry.revision, o: effective });
    this.batchEvents.push(entry);
    return entry.revision;
  }

  private appendWal(record: WalRecord): void {
    this.walBuffer.push(JSON.stringify(record) + '\n');
    this.walRecords++;
  }

  private takeWalBuffer(): Buffer {
    const data = Buffer.from(this.walBuffer.join(''));
    this.walBuffer = [];
    return data;
  }

  private async writeWal(): Promise<void> {
    if (this.walBuffer.length === 0) return;
    await writeAll(this.walFd, this.takeWalBuffer());
    await datasyncFd(this.walFd);
    this.onWalSync?.();
  }

  private trimHistory(): void {
    const excess = this.history.length - this.historyLimit;
    if (excess <= 0) return;
    this.compactRevision = Math.max(
      this.compactRevision,
      (this.history[excess - 1] as HistoryEntry).revision,
    );
    this.history = this.history.slice(excess);
  }

  // Runs inside a flush, so no batch appends to the log between the capture and the truncation.
  private async snapshot(): Promise<void> {
    const snap: Snapshot = {
      format: 1,
      revision: this.revision,
      compactRevision: this.compactRevision,
      kvs: [...this.kvs.values()],
    };
    const text = JSON.stringify(snap);
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, join(this.dir, SNAPSHOT));
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    // Only now is the log redundant; a crash before this point replays it over the snapshot.
    await truncateFd(this.walFd);
    await fsyncFd(this.walFd);
    this.walRecords = 0;
  }

  // ---- the commit queue ----

  private brokenError(): StoreUnavailableError {
    return new StoreUnavailableError('embedded store failed', { cause: this.broken });
  }

  private submit<T>(run: () => T): Promise<T> {
    if (this.closed || this.closing) return Promise.reject(closedError());
    if (this.broken) return Promise.reject(this.brokenError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  // Writes queued in the same tick, or while a flush is in flight, go in one batch.
  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.flushing) return;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        this.scheduleFlush();
      });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.broken) {
      for (const item of batch) item.reject(this.brokenError());
      return;
    }
    let becameDurable!: () => void;
    this.undurable = new Promise((resolve) => (becameDurable = resolve));
    try {
      const outcomes: { ok: boolean; value: unknown }[] = [];
      for (const item of batch) {
        try {
          outcomes.push({ ok: true, value: item.run() });
        } catch (err) {
          outcomes.push({ ok: false, value: err });
        }
      }
      try {
        await this.writeWal();
      } catch (err) {
        // Memory is ahead of the disk now: refuse everything, reads included, from here on.
        this.broken = err instanceof Error ? err : new Error(String(err));
        for (const item of batch)
          item.reject(new StoreUnavailableError('write-ahead log failed', { cause: err }));
        return;
      }
      const entries = this.batchEvents;
      this.batchEvents = [];
      for (const entry of entries) {
        this.history.push(entry);
        for (const w of this.watchers) w.offer(entry);
      }
      this.trimHistory();
      batch.forEach((item, i) => {
        const outcome = outcomes[i] as { ok: boolean; value: unknown };
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(outcome.value);
      });
    } finally {
      this.undurable = undefined;
      becameDurable();
    }
    if (this.walRecords >= this.snapshotEvery) {
      try {
        await this.snapshot();
      } catch {
        // The log still holds everything; try again after the next batch.
      }
    }
  }

  // ---- Store ----

  private check(): void {
    if (this.closed) throw closedError();
  }

  /** Waits until no batch is applied but not yet durable, then checks the store is usable. */
  private async readable(): Promise<void> {
    while (this.undurable) await this.undurable;
    this.check();
    if (this.broken) throw this.brokenError();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    if (this.undurable || this.broken) await this.readable();
    return this.kvs.get(key);
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    this.check();
    if (this.undurable || this.broken) await this.readable();
    const first =
      options.startKey !== undefined && compareKeys(options.startKey, prefix) > 0 ? options.startKey : prefix;
    const from = lowerBound(this.sorted, first);
    const end = prefixEnd(this.sorted, prefix, from);
    const count = end - from;
    const limit = options.limit && options.limit > 0 ? options.limit : count;
    const take = Math.min(limit, count);
    const kvs: KeyValue[] = [];
    for (let i = from; i < from + take; i++) {
      const kv = this.kvs.get(this.sorted[i] as string) as KeyValue;
      kvs.push(options.keysOnly ? { ...kv, value: '' } : kv);
    }
    return { kvs, revision: this.revision, more: take < count, count };
  }

  put(key: string, value: string, options: PutOptions = {}): Promise<{ revision: number }> {
    const lease = options.lease ? this.leaseId(options.lease) : null;
    return this.submit(() => {
      this.requireLease(lease);
      return { revision: this.commit([['p', key, value, lease]]) };
    });
  }

  delete(key: string): Promise<{ revision: number; deleted: number }> {
    return this.submit(() => {
      const deleted = this.kvs.has(key) ? 1 : 0;
      return { revision: this.commit([['d', key]]), deleted };
    });
  }

  deletePrefix(prefix: string): Promise<{ revision: number; deleted: number }> {
    return this.submit(() => {
      const from = lowerBound(this.sorted, prefix);
      const keys = this.sorted.slice(from, prefixEnd(this.sorted, prefix, from));
      return { revision: this.commit(keys.map((k): WalOp => ['d', k])), deleted: keys.length };
    });
  }

  txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    for (const ops of [success, failure]) {
      const written = new Set<string>();
      for (const op of ops) {
        if (op.type === 'get') continue;
        if (written.has(op.key))
          return Promise.reject(new Error('etcdserver: duplicate key given in txn request'));
        written.add(op.key);
      }
    }
    return this.submit(() => {
      const succeeded = compares.every((c) => this.evaluate(c));
      const ops = succeeded ? success : failure;
      // Apply in order so a get after a put in the same txn sees the put, as in etcd.
      const results: (KeyValue | undefined)[] = [];
      const writes: WalOp[] = [];
      const revision = this.revision + 1;
      const shadow = new Map<string, KeyValue | undefined>();
      for (const op of ops) {
        if (op.type === 'get') {
          results.push(shadow.has(op.key) ? shadow.get(op.key) : this.kvs.get(op.key));
          continue;
        }
        results.push(undefined);
        if (op.type === 'put') {
          const lease = op.lease ? this.leaseId(op.lease) : null;
          this.requireLease(lease);
          writes.push(['p', op.key, op.value, lease]);
          const prev = this.kvs.get(op.key);
          shadow.set(op.key, {
            key: op.key,
            value: op.value,
            createRevision: prev ? prev.createRevision : revision,
            modRevision: revision,
            version: prev ? prev.version + 1 : 1,
            ...(lease ? { lease } : {}),
          });
        } else {
          writes.push(['d', op.key]);
          shadow.set(op.key, undefined);
        }
      }
      return { succeeded, revision: this.commit(writes), results };
    });
  }

  private evaluate(c: Compare): boolean {
    const kv = this.kvs.get(c.key);
    if (c.target === 'value') {
      if (!kv) return false; // etcd: a value compare on a missing key is false
      return c.op === '=' ? kv.value === c.value : kv.value !== c.value;
    }
    const actual = kv
      ? c.target === 'modRevision'
        ? kv.modRevision
        : c.target === 'createRevision'
          ? kv.createRevision
          : kv.version
      : 0;
    switch (c.op) {
      case '=':
        return actual === c.value;
      case '!=':
        return actual !== c.value;
      case '<':
        return actual < c.value;
      case '>':
        return actual > c.value;
    }
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.check();
    if (this.undurable || this.broken) await this.readable();
    const watcher = new EmbeddedWatcher(prefix, handlers, (w) => this.watchers.delete(w));
    const start = fromRevision > 0 ? fromRevision : this.revision + 1;
    if (start <= this.compactRevision) {
      watcher.compacted(this.compactRevision);
      return watcher;
    }
    // Replay history from `start` (binary search), then receive live revisions.
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.history[mid] as HistoryEntry).revision < start) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.history.length; i++) watcher.offer(this.history[i] as HistoryEntry);
    this.watchers.add(watcher);
    return watcher;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.check();
    if (this.undurable || this.broken) await this.readable();
    if (!(ttlSeconds >= 1)) throw new Error('lease TTL must be at least 1 second');
    let id: string;
    do id = String(randomInt(1, 2 ** 47));
    while (this.leases.has(id));
    const lease = new EmbeddedLease(this, id, Math.ceil(ttlSeconds));
    this.leases.set(id, lease);
    this.leaseKeys.set(id, new Set());
    return lease;
  }

  revokeLease(id: string): Promise<void> {
    return this.endLease(id, new Error(`lease ${id} revoked`));
  }

  /** Deletes the lease and its keys in one revision, then signals `lost`. */
  endLease(id: string, reason: Error): Promise<void> {
    let lease: EmbeddedLease | undefined;
    const ended = this.submit(() => {
      const keys = this.leaseKeys.get(id);
      if (keys) this.commit([...keys].map((k): WalOp => ['d', k]));
      this.leaseKeys.delete(id);
      lease = this.leases.get(id);
      this.leases.delete(id);
    });
    // The holder learns of the loss once the deletion of its keys is durable (or the log failed).
    return ended.then(
      () => lease?.markLost(reason),
      (err: unknown) => {
        lease?.markLost(reason);
        throw err;
      },
    );
  }

  private leaseId(lease: Lease): string {
    return lease.id;
  }

  private requireLease(id: string | null): void {
    if (id !== null && !this.leases.has(id)) throw new Error('etcdserver: requested lease not found');
  }

  campaign(election: string, value: string, options?: CampaignOptions): Promise<Leadership> {
    return campaign(this, election, value, options);
  }

  leader(election: string): Promise<string | undefined> {
    return leader(this, election);
  }

  compact(revision: number): Promise<void> {
    return this.submit(() => {
      if (revision > this.revision)
        throw new Error('etcdserver: mvcc: required revision is a future revision');
      if (revision <= this.compactRevision) return;
      this.compactRevision = revision;
      this.history = this.history.filter((h) => h.revision > revision);
      this.appendWal({ c: revision });
    });
  }

  async health(): Promise<void> {
    if (this.closed) throw closedError();
    if (this.broken) throw new StoreUnavailableError('embedded store failed', { cause: this.broken });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // Writes accepted before close (queued or in flight) finish first; later ones are refused.
    while (this.flushing || this.queue.length > 0) {
      if (this.flushing) await this.flushing;
      else await new Promise((resolve) => setImmediate(resolve));
    }
    this.closed = true;
    for (const lease of this.leases.values()) lease.markLost(new Error('store closed'));
    this.leases.clear();
    for (const w of [...this.watchers]) await w.close();
    closeSync(this.walFd);
  }
}

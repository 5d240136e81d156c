// The Store contract on a real etcd cluster through the `etcd3` package, which is used only for
// its connection pool and its raw gRPC clients. Watches, lease keep-alives and elections are done
// here because of the package's known pitfalls (reference/control-plane.md §4.4):
// - watches resume from the last *delivered event* revision + 1 (not the response header revision,
//   which may run ahead of the events of a catching-up watcher), and compaction is reported;
// - a lease is declared lost locally as soon as its TTL has run out since the last keep-alive
//   that etcd answered, so the holder stops before the server can hand its role to someone else;
// - elections use the Go concurrency recipe (./election.ts), never the package's Election.
import { readFileSync } from 'node:fs';
import etcd3 from 'etcd3';
import type {
  IDuplexStream,
  IKeyValue,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  IOptions,
  IRequestOp,
  IWatchRequest,
  IWatchResponse,
  ICompare,
} from 'etcd3';
import { campaign, leader } from './election.js';
import { recordPrefixWrite, recordWrite } from './mirror-writes.js';
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

export interface EtcdStoreOptions {
  /** Client URLs, e.g. http://127.0.0.1:2379 (https:// with `tls`). */
  endpoints: string[];
  /** PEM texts, or paths of PEM files. */
  tls?: { ca: string; cert: string; key: string };
  /** Every key is stored under this prefix (default ''). */
  prefix?: string;
  /** Deadline of one request including retries (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Deadline of `health()` (default 1500 ms). */
  healthTimeoutMs?: number;
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

// The package's default policies retry non-idempotent writes and open a 5 s circuit breaker after
// three failures, which would hide a restarted etcd for 5 s: we pass calls straight through and
// retry ourselves, only where a retry is safe.
const passThrough = {
  execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
    return Promise.resolve().then(() => fn({ signal: new AbortController().signal }));
  },
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
} as unknown as Policy;

const unavailableClasses = [
  etcd3.GRPCUnavailableError,
  etcd3.GRPCDeadlineExceededError,
  etcd3.GRPCCancelledError,
  etcd3.ClientClosedError,
];

const unavailableMessages = [
  'etcdserver: request timed out',
  'etcdserver: leader changed',
  'etcdserver: no leader',
  'etcdserver: too many requests',
  'etcdserver: server stopped',
  'No connection established',
  'ECONNREFUSED',
];

function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  return (
    unavailableClasses.some((c) => err instanceof c) ||
    unavailableMessages.some((m) => err.message.includes(m))
  );
}

function toStoreError(err: unknown, what: string): Error {
  if (err instanceof StoreUnavailableError) return err;
  if (isUnavailable(err)) {
    return new StoreUnavailableError(`etcd unavailable (${what}): ${(err as Error).message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

// A connect failure means the request never left this process, so even a write may be retried.
function neverSent(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.message.includes('No connection established') || err.message.includes('ECONNREFUSED'))
  );
}

function pem(value: string): Buffer {
  return Buffer.from(value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8'));
}

/** End of the key range holding every key that starts with `prefix` (etcd's "prefix end"). */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all keys from `key` on
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const compareTarget = { modRevision: 2, createRevision: 1, version: 0, value: 3 } as const;
const compareResult = { '=': 0, '>': 1, '<': 2, '!=': 3 } as const;

export class EtcdStore implements Store {
  readonly prefix: string;
  /** @internal */ readonly client: InstanceType<typeof etcd3.Etcd3>;
  private readonly prefixBuf: Buffer;
  private readonly requestTimeoutMs: number;
  private readonly healthTimeoutMs: number;
  private readonly watches = new Set<EtcdWatch>();
  /** @internal */ readonly keepAlive: KeepAliveStream;
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new Error('EtcdStore needs at least one endpoint');
    this.prefix = options.prefix ?? '';
    this.prefixBuf = Buffer.from(this.prefix);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.healthTimeoutMs = options.healthTimeoutMs ?? 1500;
    this.client = new etcd3.Etcd3({
      hosts: options.endpoints,
      ...(options.tls
        ? {
            credentials: {
              rootCertificate: pem(options.tls.ca),
              certChain: pem(options.tls.cert),
              privateKey: pem(options.tls.key),
            },
          }
        : {}),
      grpcOptions: {
        // Detects a peer that stopped answering (SIGSTOP, dead network) under open streams.
        // etcd rejects pings more often than every 5 s (--grpc-keepalive-min-time).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2_000,
      },
      faultHandling: { host: () => passThrough, global: passThrough },
    });
    this.keepAlive = new KeepAliveStream(this);
  }

  // ---- key mapping ----

  /** @internal */ fullKey(key: string): Buffer {
    return Buffer.concat([this.prefixBuf, Buffer.from(key)]);
  }

  /** @internal */ toKeyValue(kv: IKeyValue): KeyValue {
    const out: KeyValue = {
      key: kv.key.subarray(this.prefixBuf.length).toString(),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
    };
    if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
    return out;
  }

  // ---- calls ----

  /** @internal */ deadline(ms = this.requestTimeoutMs): { deadline: number } {
    return { deadline: Date.now() + ms };
  }

  /** Runs `fn` with one shared deadline, retrying where safe, and maps failures. */
  /** @internal */ async call<T>(
    what: string,
    idempotent: boolean,
    fn: (options: { deadline: number }) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('etcd store is closed');
    const options = this.deadline();
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(options);
      } catch (err) {
        const retry =
          attempt < 4 &&
          Date.now() + 100 < options.deadline &&
          (neverSent(err) || (idempotent && isUnavailable(err))) &&
          !this.closed;
        if (!retry) throw toStoreError(err, what);
        await delay(50 * attempt);
      }
    }
  }

  // ---- Store ----

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call('get', true, (o) => this.client.kv.range({ key: this.fullKey(key) }, o));
    const kv = res.kvs[0];
    return kv ? this.toKeyValue(kv) : undefined;
  }

  async range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    const from = options.startKey !== undefined && options.startKey > prefix ? options.startKey : prefix;
    const res = await this.call('range', true, (o) =>
      this.client.kv.range(
        {
          key: this.fullKey(from),
          range_end: rangeEnd(this.fullKey(prefix)),
          limit: options.limit ?? 0,
          keys_only: options.keysOnly ?? false,
        },
        o,
      ),
    );
    return {
      kvs: res.kvs.map((kv) => this.toKeyValue(kv)),
      revision: Number(res.header.revision),
      more: res.more,
      count: Number(res.count),
    };
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<{ revision: number }> {
    const res = await this.call('put', false, (o) =>
      this.client.kv.put(
        { key: this.fullKey(key), value: Buffer.from(value), lease: options.lease?.id ?? 0 },
        o,
      ),
    );
    const revision = Number(res.header.revision);
    recordWrite(this, key, revision);
    return { revision };
  }

  async delete(key: string): Promise<{ revision: number; deleted: number }> {
    const res = await this.call('delete', false, (o) =>
      this.client.kv.deleteRange({ key: this.fullKey(key) }, o),
    );
    const revision = Number(res.header.revision);
    // Deleting a missing key makes no event: a mirror must not wait for one.
    if (Number(res.deleted) > 0) recordWrite(this, key, revision);
    return { revision, deleted: Number(res.deleted) };
  }

  async deletePrefix(prefix: string): Promise<{ revision: number; deleted: number }> {
    const full = this.fullKey(prefix);
    const res = await this.call('delete', false, (o) =>
      this.client.kv.deleteRange({ key: full, range_end: rangeEnd(full) }, o),
    );
    const revision = Number(res.header.revision);
    if (Number(res.deleted) > 0) recordPrefixWrite(this, prefix, revision);
    return { revision, deleted: Number(res.deleted) };
  }

  private toCompare(c: Compare): ICompare {
    const base: ICompare = {
      key: this.fullKey(c.key),
      target: compareTarget[c.target],
      result: compareResult[c.op],
    };
    switch (c.target) {
      case 'value':
        return { ...base, value: Buffer.from(c.value) };
      case 'modRevision':
        return { ...base, mod_revision: c.value };
      case 'createRevision':
        return { ...base, create_revision: c.value };
      case 'version':
        return { ...base, version: c.value };
    }
  }

  private toOp(op: TxnOp): IRequestOp {
    switch (op.type) {
      case 'put':
        return {
          request_put: { key: this.fullKey(op.key), value: Buffer.from(op.value), lease: op.lease?.id ?? 0 },
        };
      case 'delete':
        return { request_delete_range: { key: this.fullKey(op.key) } };
      case 'get':
        return { request_range: { key: this.fullKey(op.key) } };
    }
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const readOnly = [...success, ...failure].every((op) => op.type === 'get');
    const res = await this.call('txn', readOnly, (o) =>
      this.client.kv.txn(
        {
          compare: compares.map((c) => this.toCompare(c)),
          success: success.map((op) => this.toOp(op)),
          failure: failure.map((op) => this.toOp(op)),
        },
        o,
      ),
    );
    const ops = res.succeeded ? success : failure;
    const revision = Number(res.header.revision);
    ops.forEach((op, i) => {
      const changed =
        op.type === 'put' ||
        (op.type === 'delete' && Number(res.responses[i]?.response_delete_range?.deleted ?? 0) > 0);
      if (changed) recordWrite(this, op.key, revision);
    });
    const results = ops.map((op, i) => {
      if (op.type !== 'get') return undefined;
      const kv = res.responses[i]?.response_range?.kvs[0];
      return kv ? this.toKeyValue(kv) : undefined;
    });
    return { succeeded: res.succeeded, revision, results };
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    if (this.closed) throw new StoreUnavailableError('etcd store is closed');
    const full = this.fullKey(prefix);
    const watch = new EtcdWatch(this, full, rangeEnd(full), fromRevision, handlers, () =>
      this.watches.delete(watch),
    );
    this.watches.add(watch);
    try {
      await watch.start(this.requestTimeoutMs);
    } catch (err) {
      await watch.close();
      throw toStoreError(err, 'watch');
    }
    return watch;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    if (!(ttlSeconds >= 1)) throw new Error('lease TTL must be at least 1 second');
    const ttl = Math.ceil(ttlSeconds);
    const sentAt = Date.now();
    const res = await this.call('lease grant', false, (o) =>
      this.client.leaseClient.leaseGrant({ TTL: ttl }, o),
    );
    if (res.error) throw new Error(`lease grant failed: ${res.error}`);
    const lease = new EtcdLease(this, res.ID, ttl, sentAt + Number(res.TTL) * 1000);
    this.keepAlive.add(lease);
    return lease;
  }

  async revokeLease(id: string): Promise<void> {
    try {
      await this.call('lease revoke', true, (o) => this.client.leaseClient.leaseRevoke({ ID: id }, o));
    } catch (err) {
      if (!(err instanceof Error && err.message.includes('requested lease not found'))) throw err;
    }
    this.keepAlive.get(id)?.markLost(new Error(`lease ${id} revoked`));
  }

  campaign(election: string, value: string, options?: CampaignOptions): Promise<Leadership> {
    return campaign(this, election, value, options);
  }

  leader(election: string): Promise<string | undefined> {
    return leader(this, election);
  }

  async compact(revision: number): Promise<void> {
    try {
      await this.call('compact', true, (o) => this.client.kv.compact({ revision, physical: true }, o));
    } catch (err) {
      if (err instanceof Error && err.message.includes('required revision has been compacted')) return;
      throw err;
    }
  }

  async health(): Promise<void> {
    if (this.closed) throw new StoreUnavailableError('etcd store is closed');
    try {
      // A linearizable read needs a quorum: a member cut off from its peers fails this.
      await this.client.kv.range(
        { key: this.fullKey('\0health'), count_only: true },
        this.deadline(this.healthTimeoutMs),
      );
    } catch (err) {
      throw new StoreUnavailableError(`etcd health check failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.watches].map((w) => w.close()));
    // Revoke our leases so leaders step down at once instead of after their TTL.
    await this.keepAlive.closeAll(1000);
    this.closed = true;
    this.client.close();
  }
}

/** One etcd lease with its local expiry deadline. */
class EtcdLease implements Lease {
  readonly lost: Promise<Error>;
  private lostError: Error | undefined;
  private resolveLost!: (err: Error) => void;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private revoking: Promise<void> | undefined;
  /** Send times of keep-alives not answered yet, oldest first (the stream answers in order). */
  pending: number[] = [];
  sendTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: EtcdStore,
    readonly id: string,
    readonly ttlSeconds: number,
    private expiresAt: number,
  ) {
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
    this.armDeadline();
  }

  /** The server keeps the lease until at least `sentAt + ttl`: that is our deadline. */
  extend(sentAt: number, ttlSeconds: number): void {
    this.expiresAt = Math.max(this.expiresAt, sentAt + ttlSeconds * 1000);
    this.armDeadline();
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.lostError) return;
    this.deadlineTimer = setTimeout(
      () => {
        if (Date.now() >= this.expiresAt) this.expire();
        else this.armDeadline();
      },
      Math.max(0, this.expiresAt - Date.now()),
    );
    this.deadlineTimer.unref();
  }

  private expire(): void {
    this.markLost(
      new Error(`lease ${this.id} expired: etcd did not confirm a keep-alive within ${this.ttlSeconds}s`),
    );
    // Make sure the keys go once etcd answers again, even if the server had extended the lease.
    void this.store.client.leaseClient
      .leaseRevoke({ ID: this.id }, this.store.deadline())
      .catch(() => undefined);
  }

  markLost(err: Error): void {
    if (this.lostError) return;
    this.lostError = err;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.store.keepAlive.remove(this);
    this.resolveLost(err);
  }

  isLost(): boolean {
    return this.lostError !== undefined;
  }

  revoke(): Promise<void> {
    this.revoking ??= (async () => {
      this.store.keepAlive.remove(this);
      try {
        await this.store.revokeLease(this.id);
      } finally {
        this.markLost(new Error(`lease ${this.id} revoked`));
      }
    })();
    return this.revoking;
  }
}

/** One keep-alive stream shared by every lease of the store, rebuilt whenever it breaks or stalls. */
class KeepAliveStream {
  private readonly leases = new Map<string, EtcdLease>();
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private opening: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  /** Bumped on every reset, so a stream that finishes opening after a reset is discarded. */
  private generation = 0;

  constructor(private readonly store: EtcdStore) {}

  get(id: string): EtcdLease | undefined {
    return this.leases.get(id);
  }

  add(lease: EtcdLease): void {
    this.leases.set(lease.id, lease);
    // Every TTL/3, as the Go client does.
    lease.sendTimer = setInterval(() => void this.send(lease), Math.max(100, (lease.ttlSeconds * 1000) / 3));
    lease.sendTimer.unref();
  }

  remove(lease: EtcdLease): void {
    if (lease.sendTimer) clearInterval(lease.sendTimer);
    lease.sendTimer = undefined;
    this.leases.delete(lease.id);
    if (this.leases.size === 0) this.reset();
  }

  async closeAll(timeoutMs: number): Promise<void> {
    const leases = [...this.leases.values()];
    await Promise.all(
      leases.map(async (lease) => {
        this.remove(lease);
        await this.store.client.leaseClient
          .leaseRevoke({ ID: lease.id }, this.store.deadline(timeoutMs))
          .catch(() => undefined);
        lease.markLost(new Error('store closed'));
      }),
    );
    this.reset();
  }

  private reset(): void {
    this.generation++;
    const stream = this.stream;
    this.stream = undefined;
    this.opening = undefined;
    for (const lease of this.leases.values()) lease.pending = [];
    stream?.cancel();
  }

  private async send(lease: EtcdLease): Promise<void> {
    if (!this.leases.has(lease.id)) return;
    const oldest = lease.pending[0];
    if (oldest !== undefined && Date.now() - oldest > Math.max(1000, (lease.ttlSeconds * 1000) / 3)) {
      // No answer for a whole period: the stream is stuck (e.g. member paused); try a fresh one.
      this.reset();
    }
    try {
      const stream = await this.open();
      if (!this.leases.has(lease.id) || stream !== this.stream) return;
      lease.pending.push(Date.now());
      stream.write({ ID: lease.id });
    } catch {
      // Unreachable: the lease deadline decides when this becomes a loss.
    }
  }

  private open(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.stream) return Promise.resolve(this.stream);
    const generation = this.generation;
    this.opening ??= (async () => {
      const stream = await this.store.client.leaseClient.leaseKeepAlive();
      if (this.generation !== generation) {
        stream.cancel();
        throw new Error('keep-alive stream superseded');
      }
      const broken = (): void => {
        if (this.stream === stream) this.reset();
      };
      stream.on('data', (res) => this.onResponse(stream, res));
      stream.on('error', broken);
      stream.on('end', broken);
      this.stream = stream;
      this.opening = undefined;
      return stream;
    })().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  private onResponse(stream: unknown, res: ILeaseKeepAliveResponse): void {
    if (stream !== this.stream) return;
    const lease = this.leases.get(res.ID);
    if (!lease) return;
    const sentAt = lease.pending.shift();
    if (res.TTL === '0' || Number(res.TTL) <= 0) {
      lease.markLost(new Error(`lease ${lease.id} is expired or was revoked`));
      return;
    }
    if (sentAt !== undefined) lease.extend(sentAt, Number(res.TTL));
  }
}

/** A watch on its own gRPC stream that reconnects and resumes without gaps. */
class EtcdWatch implements Watch {
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private closed = false;
  private attempt = 0;
  private created: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Revision to resume from: one past the last delivered event (0 = "from now", until created). */
  private next: number;

  constructor(
    private readonly store: EtcdStore,
    private readonly key: Buffer,
    private readonly end: Buffer,
    fromRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly detach: () => void,
  ) {
    this.next = fromRevision > 0 ? fromRevision : 0;
  }

  async start(timeoutMs: number): Promise<void> {
    const established = new Promise<void>((resolve, reject) => (this.created = { resolve, reject }));
    const timer = setTimeout(
      () => this.created?.reject(new StoreUnavailableError('etcd did not confirm the watch in time')),
      timeoutMs,
    );
    void this.connect();
    try {
      await established;
    } finally {
      clearTimeout(timer);
    }
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.store.client.watchClient.watch();
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.closed) {
      stream.cancel();
      return;
    }
    this.stream = stream;
    stream.on('data', (res) => this.onResponse(stream, res));
    stream.on('error', () => this.onBroken(stream));
    stream.on('end', () => this.onBroken(stream));
    stream.write({
      create_request: { key: this.key, range_end: this.end, start_revision: this.next, prev_kv: true },
    });
  }

  private onBroken(stream: IDuplexStream<IWatchRequest, IWatchResponse>): void {
    if (stream !== this.stream || this.closed) return;
    this.stream = undefined;
    stream.cancel();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const backoff = Math.min(2000, 100 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, backoff);
  }

  private onResponse(stream: unknown, res: IWatchResponse): void {
    if (stream !== this.stream || this.closed) return;
    const compactRevision = Number(res.compact_revision || 0);
    if (compactRevision > 0) {
      // Never auto-resume past a compaction (etcd #8668): the caller must re-list.
      this.finish(() => this.handlers.onCompacted(compactRevision));
      return;
    }
    if (res.canceled) {
      const reason = res.cancel_reason || 'watch canceled by etcd';
      this.finish(() => this.handlers.onError?.(new Error(reason)));
      return;
    }
    if (res.created) {
      this.attempt = 0;
      if (this.next === 0) this.next = Number(res.header.revision) + 1;
      this.created?.resolve();
      this.created = undefined;
    }
    // Deliver revision by revision; events of one revision are contiguous.
    let batch: WatchEvent[] = [];
    let batchRevision = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      const events = batch;
      const revision = batchRevision;
      batch = [];
      this.next = revision + 1;
      try {
        this.handlers.onEvents(events, revision);
      } catch (err) {
        this.handlers.onError?.(err instanceof Error ? err : new Error(String(err)));
      }
    };
    for (const ev of res.events ?? []) {
      const revision = Number(ev.kv.mod_revision);
      if (revision < this.next) continue; // already delivered before a reconnect
      if (revision !== batchRevision) flush();
      batchRevision = revision;
      const prevKv = ev.prev_kv ? this.store.toKeyValue(ev.prev_kv) : undefined;
      if (String(ev.type).toUpperCase() === 'DELETE') {
        const key = ev.kv.key
          .subarray(this.store.prefix.length ? Buffer.byteLength(this.store.prefix) : 0)
          .toString();
        batch.push(
          prevKv
            ? { type: 'delete', key, modRevision: revision, prevKv }
            : { type: 'delete', key, modRevision: revision },
        );
      } else {
        const kv = this.store.toKeyValue(ev.kv);
        batch.push(prevKv ? { type: 'put', kv, prevKv } : { type: 'put', kv });
      }
      if (this.closed) return;
    }
    flush();
  }

  private finish(notify: () => void): void {
    void this.close();
    try {
      notify();
    } catch {
      // the caller's handler failed; the watch is closed either way
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.created?.reject(new Error('watch closed'));
    this.created = undefined;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.detach();
  }
}

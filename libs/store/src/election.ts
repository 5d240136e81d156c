// Elections on top of the Store primitives, following the Go client's concurrency recipe
// (etcd client/v3/concurrency/election.go): each candidate puts `<election>/<leaseIdHex>` bound
// to its own lease in a txn requiring createRevision == 0; the leader is the key with the lowest
// createRevision; a candidate becomes leader once every key with a lower createRevision is gone.
// Both stores use this code, so they share one set of election semantics.
import type { CampaignOptions, Compare, KeyValue, Lease, Leadership, Store } from './store.js';

export const DEFAULT_ELECTION_TTL_SECONDS = 10;

function electionPrefix(election: string): string {
  return election.endsWith('/') ? election : `${election}/`;
}

function lowest(kvs: KeyValue[]): KeyValue | undefined {
  let best: KeyValue | undefined;
  for (const kv of kvs) if (!best || kv.createRevision < best.createRevision) best = kv;
  return best;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('campaign aborted');
}

/** Resolves when `key` is deleted (or the watch can no longer tell), or rejects when `stop` settles first. */
async function waitDelete(
  store: Store,
  key: string,
  fromRevision: number,
  stop: Promise<Error>,
): Promise<void> {
  let done!: () => void;
  const deleted = new Promise<void>((resolve) => (done = resolve));
  const watch = await store.watch(key, fromRevision, {
    onEvents(events) {
      if (events.some((e) => e.type === 'delete' && e.key === key)) done();
    },
    // The caller re-reads the election after any of these, so waking up early is safe.
    onCompacted: () => done(),
    onError: () => done(),
  });
  try {
    await Promise.race([
      deleted,
      stop.then((err) => {
        throw err;
      }),
    ]);
  } finally {
    await watch.close().catch(() => undefined);
  }
}

/** Blocks until no key under `prefix` has a createRevision <= maxCreateRevision. */
async function waitDeletes(
  store: Store,
  prefix: string,
  maxCreateRevision: number,
  stop: Promise<Error>,
): Promise<void> {
  for (;;) {
    const listed = await store.range(prefix);
    let newestLower: KeyValue | undefined;
    for (const kv of listed.kvs) {
      if (
        kv.createRevision <= maxCreateRevision &&
        (!newestLower || kv.createRevision > newestLower.createRevision)
      ) {
        newestLower = kv;
      }
    }
    if (!newestLower) return;
    // Wait for the closest predecessor only (as Go does), then look again.
    await waitDelete(store, newestLower.key, listed.revision + 1, stop);
  }
}

export async function campaign(
  store: Store,
  election: string,
  value: string,
  options: CampaignOptions = {},
): Promise<Leadership> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const prefix = electionPrefix(election);
  const lease = await store.grantLease(options.ttlSeconds ?? DEFAULT_ELECTION_TTL_SECONDS);
  const key = `${prefix}${BigInt(lease.id).toString(16)}`;
  // Settles when campaigning must stop: lease gone or caller aborted.
  const stop = new Promise<Error>((resolve) => {
    void lease.lost.then(resolve);
    signal?.addEventListener('abort', () => resolve(abortError(signal)), { once: true });
  });
  try {
    const created = await store.txn(
      [{ key, target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key, value, lease }],
      [{ type: 'get', key }],
    );
    const myRevision = created.succeeded ? created.revision : (created.results[0]?.createRevision ?? 0);
    if (myRevision === 0) throw new Error(`election key ${key} vanished while campaigning`);
    await waitDeletes(store, prefix, myRevision - 1, stop);
    // Re-check after waiting: our key (and so our lease) must still be the leader key.
    const mine = await store.get(key);
    if (lease.isLost() || !mine || mine.createRevision !== myRevision) {
      throw new Error(`lost the election key ${key} while campaigning`);
    }
    if (signal?.aborted) throw abortError(signal);
    return await StoreLeadership.start(store, key, myRevision, lease);
  } catch (err) {
    await lease.revoke().catch(() => undefined);
    throw err;
  }
}

export async function leader(store: Store, election: string): Promise<string | undefined> {
  const listed = await store.range(electionPrefix(election));
  return lowest(listed.kvs)?.value;
}

class StoreLeadership implements Leadership {
  readonly lost: Promise<Error>;
  private lostError: Error | undefined;
  private resolveLost!: (err: Error) => void;
  private watch: { close(): Promise<void> } | undefined;

  private constructor(
    private readonly store: Store,
    readonly key: string,
    readonly revision: number,
    readonly lease: Lease,
  ) {
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
  }

  static async start(store: Store, key: string, revision: number, lease: Lease): Promise<StoreLeadership> {
    const leadership = new StoreLeadership(store, key, revision, lease);
    void lease.lost.then((err) => leadership.lose(err));
    await leadership.monitorKey(revision + 1);
    return leadership;
  }

  // Watches our own key from its creation on, so a delete anywhere in between is seen.
  private async monitorKey(fromRevision: number): Promise<void> {
    if (this.lostError) return;
    const watch = await this.store.watch(this.key, fromRevision, {
      onEvents: (events) => {
        for (const e of events) {
          if (e.type === 'delete' && e.key === this.key)
            this.lose(new Error(`leader key ${this.key} was deleted`));
          if (e.type === 'put' && e.kv.key === this.key && e.kv.createRevision !== this.revision) {
            this.lose(new Error(`leader key ${this.key} was re-created`));
          }
        }
      },
      onCompacted: () => void this.recheck(),
      onError: (err) => this.lose(err),
    });
    if (this.lostError) await watch.close().catch(() => undefined);
    else this.watch = watch;
  }

  private async recheck(): Promise<void> {
    try {
      const current = await this.store.get(this.key);
      if (!current || current.createRevision !== this.revision) {
        this.lose(new Error(`leader key ${this.key} is gone`));
        return;
      }
      const { revision } = await this.store.range(this.key, { limit: 1, keysOnly: true });
      await this.monitorKey(revision + 1);
    } catch (err) {
      this.lose(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private lose(err: Error): void {
    if (this.lostError) return;
    this.lostError = err;
    this.resolveLost(err);
    const watch = this.watch;
    this.watch = undefined;
    void watch?.close().catch(() => undefined);
    // The lease exists only for this campaign: drop it so our key cannot linger.
    if (!this.lease.isLost()) void this.lease.revoke().catch(() => undefined);
  }

  isLeader(): boolean {
    return this.lostError === undefined && !this.lease.isLost();
  }

  fence(): Compare {
    return { key: this.key, target: 'createRevision', op: '=', value: this.revision };
  }

  async resign(): Promise<void> {
    this.lose(new Error('resigned'));
    await this.lease.revoke().catch(() => undefined);
  }
}

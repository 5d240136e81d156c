// The store contract: everything orca keeps lives behind this interface. Two implementations
// satisfy it (EtcdStore on real etcd, EmbeddedStore on local disk) and one contract suite tests both.

export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which the key was created (0 never occurs for a live key). */
  createRevision: number;
  /** Revision of the last change to the key. */
  modRevision: number;
  /** Number of changes since creation, starting at 1. */
  version: number;
  /** Lease the key is bound to, as a decimal string; absent when unbound. */
  lease?: string;
}

export interface RangeOptions {
  /** At most this many keys; 0 or absent means no limit. */
  limit?: number;
  /** Start at this key (inclusive) instead of the prefix start: used for paging. */
  startKey?: string;
  /** Only count and return keys, values are empty strings. */
  keysOnly?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision the read was served at. */
  revision: number;
  /** True when the limit cut the result. */
  more: boolean;
  /** Total number of keys under the prefix (from startKey). */
  count: number;
}

export interface PutOptions {
  lease?: Lease;
}

export type Compare =
  | {
      key: string;
      target: 'modRevision' | 'createRevision' | 'version';
      op: '=' | '<' | '>' | '!=';
      value: number;
    }
  | { key: string; target: 'value'; op: '=' | '!='; value: string };

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: Lease }
  | { type: 'delete'; key: string }
  | { type: 'get'; key: string };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** One entry per op of the branch that ran: the KeyValue for gets (or undefined), undefined otherwise. */
  results: (KeyValue | undefined)[];
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prevKv?: KeyValue }
  | { type: 'delete'; key: string; modRevision: number; prevKv?: KeyValue };

export interface WatchHandlers {
  /** Events of one revision are delivered in order; the watch resumes after reconnects without gaps. */
  onEvents(events: WatchEvent[], revision: number): void;
  /**
   * The requested start revision was compacted: no more events come from this watch.
   * The caller re-lists (range) and starts a new watch from the listed revision + 1.
   */
  onCompacted(compactRevision: number): void;
  /** Unrecoverable watch failure; the watch is closed. */
  onError?(error: Error): void;
}

export interface Watch {
  close(): Promise<void>;
}

export interface Lease {
  /** Decimal lease id. */
  readonly id: string;
  readonly ttlSeconds: number;
  /** Resolves (never rejects) when the lease is known to be lost: expired, revoked by others, or unreachable store. */
  readonly lost: Promise<Error>;
  isLost(): boolean;
  revoke(): Promise<void>;
}

export interface Leadership {
  /** The election key this leader holds. */
  readonly key: string;
  /** Create revision of the leader key: the fencing token for leader-only writes. */
  readonly revision: number;
  readonly lease: Lease;
  /** Resolves when leadership is lost (lease lost, key deleted, resigned). */
  readonly lost: Promise<Error>;
  isLeader(): boolean;
  /** Comparison to add to a transaction so a write happens only while this leader still leads. */
  fence(): Compare;
  resign(): Promise<void>;
}

export interface CampaignOptions {
  ttlSeconds?: number;
  /** Abort campaigning (waiting to become leader). */
  signal?: AbortSignal;
}

export interface Store {
  get(key: string): Promise<KeyValue | undefined>;
  range(prefix: string, options?: RangeOptions): Promise<RangeResult>;
  put(key: string, value: string, options?: PutOptions): Promise<{ revision: number }>;
  delete(key: string): Promise<{ revision: number; deleted: number }>;
  deletePrefix(prefix: string): Promise<{ revision: number; deleted: number }>;
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult>;
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>;
  grantLease(ttlSeconds: number): Promise<Lease>;
  /**
   * Revokes a lease by id, also one granted to another client: its keys are deleted and its
   * holder sees `lost`. Used to evict a stuck leader. Resolves when the lease is gone (or never existed).
   */
  revokeLease(id: string): Promise<void>;
  /** Waits until elected under `election`, then returns the leadership. */
  campaign(election: string, value: string, options?: CampaignOptions): Promise<Leadership>;
  /** Current leader's value, if any. */
  leader(election: string): Promise<string | undefined>;
  compact(revision: number): Promise<void>;
  /** Cheap liveness probe used by /_ping. Rejects when the store cannot answer. */
  health(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

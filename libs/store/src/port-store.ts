// The process's store as seen from a worker thread: reads and watches are sent over a MessagePort
// to the thread that holds the real store (serveStoreOverPort), so a worker can keep its own
// watched copies (PrefixMirror) without a second etcd client, and with the embedded store, which
// only one thread may open. Read-only: writes stay with the owning thread. Every write the owning
// thread records is passed on, so the worker's mirrors wait for it before answering (the same
// read-your-writes the owning thread's mirrors give).
import type { MessagePort } from 'node:worker_threads';
import { onWrite, recordPrefixWrite, recordWrite, type WriteNotice } from './mirror-writes.js';
import {
  StoreUnavailableError,
  type Compare,
  type KeyValue,
  type Leadership,
  type Lease,
  type RangeOptions,
  type RangeResult,
  type Store,
  type TxnOp,
  type TxnResult,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
} from './store.js';

type ReadRequest =
  | { id: number; op: 'get'; key: string }
  | { id: number; op: 'range'; prefix: string; options?: RangeOptions }
  | { id: number; op: 'health' }
  | { id: number; op: 'watch'; watchId: number; prefix: string; fromRevision: number }
  | { id: number; op: 'unwatch'; watchId: number };

type ServedMessage =
  | { type: 'reply'; id: number; value?: unknown; error?: { name: string; message: string } }
  | { type: 'events'; watchId: number; events: WatchEvent[]; revision: number }
  | { type: 'compacted'; watchId: number; compactRevision: number }
  | { type: 'watch-error'; watchId: number; message: string }
  | { type: 'written'; notice: WriteNotice };

/**
 * Answers a PortStore's reads and watches from `store` on `port`, and tells it of every write
 * recorded on `store`. Returns the function that stops serving (watches closed, port closed).
 */
export function serveStoreOverPort(store: Store, port: MessagePort): () => Promise<void> {
  const watches = new Map<number, Promise<Watch | undefined>>();
  const post = (message: ServedMessage) => port.postMessage(message);
  const stopHearing = onWrite(store, (notice) => post({ type: 'written', notice }));
  const reply = (id: number, work: Promise<unknown>) =>
    work.then(
      (value) => post({ type: 'reply', id, value }),
      (error: Error) =>
        post({ type: 'reply', id, error: { name: error?.name ?? 'Error', message: String(error?.message) } }),
    );
  port.on('message', (request: ReadRequest) => {
    switch (request.op) {
      case 'get':
        return void reply(request.id, store.get(request.key));
      case 'range':
        return void reply(request.id, store.range(request.prefix, request.options));
      case 'health':
        return void reply(request.id, store.health());
      case 'watch': {
        const { watchId } = request;
        const opened = store.watch(request.prefix, request.fromRevision, {
          onEvents: (events, revision) => post({ type: 'events', watchId, events, revision }),
          onCompacted: (compactRevision) => post({ type: 'compacted', watchId, compactRevision }),
          onError: (error) => post({ type: 'watch-error', watchId, message: error.message }),
        });
        watches.set(
          watchId,
          opened.catch(() => undefined),
        );
        return void reply(
          request.id,
          opened.then(() => undefined),
        );
      }
      case 'unwatch': {
        const watch = watches.get(request.watchId);
        watches.delete(request.watchId);
        return void reply(request.id, watch?.then((w) => w?.close()) ?? Promise.resolve());
      }
    }
  });
  return async () => {
    stopHearing();
    const open = [...watches.values()];
    watches.clear();
    await Promise.all(open.map((w) => w.then((watch) => watch?.close())));
    port.close();
  };
}

const readOnly = (what: string) =>
  Promise.reject(new Error(`${what}: this store is a worker thread's read-only view`));

/** The worker thread's side: a read-only Store over the port serveStoreOverPort answers on. */
export class PortStore implements Store {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly watchers = new Map<number, WatchHandlers>();
  private closed = false;

  constructor(private readonly port: MessagePort) {
    port.on('message', (message: ServedMessage) => this.receive(message));
  }

  private receive(message: ServedMessage): void {
    switch (message.type) {
      case 'reply': {
        const waiting = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (!waiting) return;
        if (!message.error) return waiting.resolve(message.value);
        const error =
          message.error.name === 'StoreUnavailableError'
            ? new StoreUnavailableError(message.error.message)
            : new Error(message.error.message);
        return waiting.reject(error);
      }
      case 'events':
        return this.watchers.get(message.watchId)?.onEvents(message.events, message.revision);
      case 'compacted':
        return this.watchers.get(message.watchId)?.onCompacted(message.compactRevision);
      case 'watch-error': {
        const handlers = this.watchers.get(message.watchId);
        this.watchers.delete(message.watchId);
        return handlers?.onError?.(new StoreUnavailableError(message.message));
      }
      case 'written':
        // The owning thread wrote: this thread's mirrors wait for the revision before answering.
        if ('key' in message.notice) recordWrite(this, message.notice.key, message.notice.revision);
        else recordPrefixWrite(this, message.notice.prefix, message.notice.revision);
        return;
    }
  }

  private ask<T>(request: Record<string, unknown> & { op: ReadRequest['op'] }): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store view is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.port.postMessage({ ...request, id });
    });
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.ask({ op: 'get', key });
  }

  range(prefix: string, options?: RangeOptions): Promise<RangeResult> {
    return this.ask({ op: 'range', prefix, options });
  }

  health(): Promise<void> {
    return this.ask({ op: 'health' });
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    const watchId = this.nextId++;
    this.watchers.set(watchId, handlers);
    try {
      await this.ask({ op: 'watch', watchId, prefix, fromRevision });
    } catch (error) {
      this.watchers.delete(watchId);
      throw error;
    }
    return {
      close: async () => {
        if (!this.watchers.delete(watchId) || this.closed) return;
        await this.ask({ op: 'unwatch', watchId });
      },
    };
  }

  put(): Promise<{ revision: number }> {
    return readOnly('put');
  }
  delete(): Promise<{ revision: number; deleted: number }> {
    return readOnly('delete');
  }
  deletePrefix(): Promise<{ revision: number; deleted: number }> {
    return readOnly('deletePrefix');
  }
  txn(_compares: Compare[], _success: TxnOp[], _failure?: TxnOp[]): Promise<TxnResult> {
    return readOnly('txn');
  }
  grantLease(): Promise<Lease> {
    return readOnly('grantLease');
  }
  revokeLease(): Promise<void> {
    return readOnly('revokeLease');
  }
  campaign(): Promise<Leadership> {
    return readOnly('campaign');
  }
  leader(): Promise<string | undefined> {
    return readOnly('leader');
  }
  compact(): Promise<void> {
    return readOnly('compact');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    for (const waiting of this.pending.values())
      waiting.reject(new StoreUnavailableError('the store view is closed'));
    this.pending.clear();
    this.port.close();
  }
}

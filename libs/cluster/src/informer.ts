// Level-triggered view of a key prefix: list, then watch from the listed revision; when the watch
// start was compacted, list again. `onKeys` gets every key that may have changed (the whole prefix
// after a list), and a periodic resync re-lists so a missed event cannot leave drift for long.
import type { Store, Watch } from '@orca/store';

export interface InformerOptions {
  resyncMs?: number;
  onError?: (error: Error) => void;
}

export class PrefixInformer {
  private watch?: Watch;
  private resyncTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly onKeys: (keys: string[]) => void,
    private readonly options: InformerOptions = {},
  ) {}

  async start(): Promise<void> {
    await this.relist();
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        void this.resync();
      }, this.options.resyncMs);
      this.resyncTimer.unref();
    }
  }

  private async resync(): Promise<void> {
    try {
      const listed = await this.store.range(this.prefix, { keysOnly: true });
      if (!this.stopped) this.onKeys(listed.kvs.map((kv) => kv.key));
    } catch (error) {
      this.options.onError?.(error as Error);
    }
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    await this.watch?.close();
    const listed = await this.store.range(this.prefix, { keysOnly: true });
    this.onKeys(listed.kvs.map((kv) => kv.key));
    this.watch = await this.store.watch(this.prefix, listed.revision + 1, {
      onEvents: (events) => {
        if (!this.stopped) this.onKeys(events.map((e) => (e.type === 'put' ? e.kv.key : e.key)));
      },
      onCompacted: () => {
        this.relist().catch((error: Error) => this.options.onError?.(error));
      },
      onError: (error) => {
        this.options.onError?.(error);
        setTimeout(() => this.relist().catch((e: Error) => this.options.onError?.(e)), 1000).unref();
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.watch?.close();
  }
}

/** Resolves with the key's value once `accept` returns true for it, or rejects after timeoutMs. */
export async function waitForKey<T>(
  store: Store,
  key: string,
  fromRevision: number,
  accept: (value: T | undefined) => boolean,
  timeoutMs: number,
): Promise<T | undefined> {
  let watch: Watch | undefined;
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${key}`)), timeoutMs);
      const check = async (): Promise<void> => {
        const kv = await store.get(key);
        const value = kv ? (JSON.parse(kv.value) as T) : undefined;
        if (accept(value)) {
          clearTimeout(timer);
          resolve(value);
        }
      };
      store
        .watch(key, fromRevision, {
          onEvents: () => void check().catch(reject),
          onCompacted: () => void check().catch(reject),
          onError: (error) => reject(error),
        })
        .then((w) => {
          watch = w;
          return check();
        })
        .catch(reject);
    });
  } finally {
    await watch?.close();
  }
}

// Where the configuration lives: one store key holding the validated configuration as JSON,
// replaced with a compare-and-swap. Every controller reads it from there (or keeps a watched copy),
// so a change takes effect everywhere without a restart.
import { ApiError } from '@orca/api';
import type { KeyValue, Store, Watch } from '@orca/store';
import { defaultUcpConfig, validateUcpConfig, type UcpConfig } from './schema.js';

export const UCP_CONFIG_KEY = '/orca/v1/config/ucp';

// Decoding the same stored value again is wasted work on hot paths (every session check).
let lastDecoded: { value: string; config: UcpConfig } | undefined;

function decode(kv: KeyValue | undefined): UcpConfig {
  if (!kv) return defaultUcpConfig();
  if (lastDecoded?.value === kv.value) return lastDecoded.config;
  // Stored values were validated when written; re-validating fills keys added by later versions.
  const config = deepFreeze(validateUcpConfig(JSON.parse(kv.value)));
  lastDecoded = { value: kv.value, config };
  return config;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The current configuration (defaults when none was ever stored). Read-only. */
export async function readUcpConfig(store: Store): Promise<UcpConfig> {
  return decode(await store.get(UCP_CONFIG_KEY));
}

/** The current configuration with the revision a later write must match (0: never written). */
export async function readUcpConfigRevision(
  store: Store,
): Promise<{ config: UcpConfig; modRevision: number }> {
  const kv = await store.get(UCP_CONFIG_KEY);
  return { config: decode(kv), modRevision: kv?.modRevision ?? 0 };
}

/**
 * Replaces the configuration if it is still at `expectedModRevision` (0: never written);
 * 409 when another writer came first. The config must come from validateUcpConfig.
 */
export async function writeUcpConfig(
  store: Store,
  config: UcpConfig,
  expectedModRevision: number,
): Promise<void> {
  const value = JSON.stringify(config);
  const result = await store.txn(
    [
      expectedModRevision === 0
        ? { key: UCP_CONFIG_KEY, target: 'createRevision', op: '=', value: 0 }
        : { key: UCP_CONFIG_KEY, target: 'modRevision', op: '=', value: expectedModRevision },
    ],
    [{ type: 'put', key: UCP_CONFIG_KEY, value }],
  );
  if (!result.succeeded) {
    throw new ApiError(
      409,
      'CONFLICT',
      'the configuration was changed by another request; read it and try again',
    );
  }
}

export interface UcpConfigWatcher {
  /** The latest configuration seen (defaults until the first read). */
  current(): UcpConfig;
  close(): Promise<void>;
}

/**
 * Keeps a copy of the configuration up to date through a store watch, for hot paths that must not
 * read the store on every call (the front door's scheduling checks). `onChange` runs after each change.
 */
export async function watchUcpConfig(
  store: Store,
  onChange: (config: UcpConfig) => void = () => undefined,
  log: { warn(message: string): void } = { warn: () => undefined },
): Promise<UcpConfigWatcher> {
  let config = defaultUcpConfig();
  let watch: Watch | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const apply = (next: UcpConfig) => {
    config = next;
    onChange(next);
  };
  const resync = async (): Promise<void> => {
    if (closed) return;
    try {
      const listed = await store.range(UCP_CONFIG_KEY, { limit: 1 });
      const kv = listed.kvs.find((k) => k.key === UCP_CONFIG_KEY);
      apply(decode(kv));
      await watch?.close().catch(() => undefined);
      watch = await store.watch(UCP_CONFIG_KEY, listed.revision + 1, {
        onEvents: (events) => {
          for (const event of events) {
            if (event.type === 'put' && event.kv.key !== UCP_CONFIG_KEY) continue;
            if (event.type === 'delete' && event.key !== UCP_CONFIG_KEY) continue;
            try {
              apply(event.type === 'put' ? decode(event.kv) : defaultUcpConfig());
            } catch (error) {
              log.warn(`ignoring an unreadable UCP configuration: ${(error as Error).message}`);
            }
          }
        },
        onCompacted: () => void resync(),
        onError: () => schedule(),
      });
      if (closed) await watch.close();
    } catch (error) {
      log.warn(`cannot watch the UCP configuration, retrying: ${(error as Error).message}`);
      schedule();
    }
  };
  const schedule = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void resync();
    }, 1000);
    retry.unref();
  };
  await resync();
  return {
    current: () => config,
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await watch?.close();
    },
  };
}

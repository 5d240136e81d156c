export * from './store.js';
export * from './mirror.js';
export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded-store.js';
export { EtcdStore, type EtcdStoreOptions } from './etcd-store.js';
export { DEFAULT_ELECTION_TTL_SECONDS } from './election.js';
import { EmbeddedStore, type EmbeddedStoreOptions } from './embedded-store.js';
import { EtcdStore, type EtcdStoreOptions } from './etcd-store.js';
import type { Store } from './store.js';

export type StoreConfig =
  ({ kind: 'embedded' } & EmbeddedStoreOptions) | ({ kind: 'etcd' } & EtcdStoreOptions);

/** Opens the store the configuration names: embedded (local directory) or a real etcd cluster. */
export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.kind === 'embedded') {
    const { kind: _kind, ...options } = config;
    return new EmbeddedStore(options);
  }
  const { kind: _kind, ...options } = config;
  return new EtcdStore(options);
}
export { PortStore, serveStoreOverPort } from './port-store.js';

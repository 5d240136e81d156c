// Leader-only: keeps every node's desired component list equal to desiredComponents(node, settings).
// Runs on any change to node specs or component settings, and on a resync timer.
import type { ComponentSpec } from '@orca/reconcile';
import type { Leadership, Store } from '@orca/store';
import type { Logger } from './certificate-signer.js';
import { DEFAULT_COMPONENT_SETTINGS, desiredComponents } from './components.js';
import { PrefixInformer } from './informer.js';
import { keys, parseNodeKey, ROOT, type ComponentSettings, type NodeSpec } from './model.js';

export interface DesiredRecord {
  components: ComponentSpec[];
}

export async function componentSettings(store: Store): Promise<ComponentSettings> {
  const kv = await store.get(keys.componentSettings);
  return kv
    ? { ...DEFAULT_COMPONENT_SETTINGS, ...(JSON.parse(kv.value) as Partial<ComponentSettings>) }
    : DEFAULT_COMPONENT_SETTINGS;
}

export class ComponentPlanner {
  private informer?: PrefixInformer;
  private running = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  async start(leadership: Leadership): Promise<void> {
    this.informer = new PrefixInformer(
      this.store,
      `${ROOT}/`,
      (changed) => {
        const relevant = changed.filter(
          (key) => key === keys.componentSettings || parseNodeKey(key)?.part === 'spec',
        );
        if (relevant.length === 0) return;
        this.running = this.running
          .then(() => this.planAll(leadership))
          .catch((error: Error) => this.logger.error(`component planner: ${error.message}`));
      },
      { resyncMs: 30_000, onError: (e) => this.logger.error(`component planner: ${e.message}`) },
    );
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
    await this.running;
  }

  async planAll(leadership: Leadership): Promise<void> {
    if (!leadership.isLeader()) return;
    const settings = await componentSettings(this.store);
    const specs = await this.store.range(keys.nodesPrefix);
    for (const kv of specs.kvs) {
      const parsed = parseNodeKey(kv.key);
      if (parsed?.part !== 'spec') continue;
      const node = JSON.parse(kv.value) as NodeSpec;
      const current = await this.store.get(keys.nodeDesired(node.id));
      const next: DesiredRecord = { components: desiredComponents(node, settings) };
      if (current && current.value === JSON.stringify(next)) continue;
      await this.store.txn(
        [
          leadership.fence(),
          current
            ? { key: keys.nodeDesired(node.id), target: 'modRevision', op: '=', value: current.modRevision }
            : { key: keys.nodeDesired(node.id), target: 'createRevision', op: '=', value: 0 },
        ],
        [{ type: 'put', key: keys.nodeDesired(node.id), value: JSON.stringify(next) }],
      );
    }
  }
}

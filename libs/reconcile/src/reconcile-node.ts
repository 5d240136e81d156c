import type { RunningComponent, Runtime } from './runtime.js';
import { specHash, type ComponentSpec } from './spec.js';

export type ReconcileAction = 'created' | 'replaced' | 'removed' | 'unchanged' | 'failed';

export interface ComponentResult {
  component: string;
  action: ReconcileAction;
  error?: string;
}

export interface ReconcileResult {
  converged: boolean;
  actions: ComponentResult[];
}

export interface ReconcileNodeOptions {
  nodeId: string;
  desired: ComponentSpec[];
  runtime: Runtime;
  /** One line per step, in UCP's wording. */
  log?: (line: string) => void;
}

/**
 * Makes one node's orca-managed components match `desired`: starts what is missing, replaces what
 * differs by spec hash or is not running, removes managed things of this node that are no longer
 * desired. Reads the world first and never branches on history, so a second run does nothing.
 * Anything without orca's managed label is invisible to it (runtimes list only managed things).
 */
export async function reconcileNode(opts: ReconcileNodeOptions): Promise<ReconcileResult> {
  const log = opts.log ?? (() => undefined);
  const actions: ComponentResult[] = [];
  const fail = (component: string, err: unknown) => {
    const error = err instanceof Error ? err.message : String(err);
    log(`unable to reconcile state of ${component} component: ${error}`);
    actions.push({ component, action: 'failed', error });
  };

  let current: RunningComponent[];
  try {
    current = (await opts.runtime.list()).filter((c) => c.nodeId === opts.nodeId);
  } catch (err) {
    fail('*', err);
    return { converged: false, actions };
  }
  const byName = new Map<string, RunningComponent[]>();
  for (const c of current) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);

  const seen = new Set<string>();
  for (const spec of opts.desired) {
    log(`Reconciling state of component ${spec.name}`);
    if (seen.has(spec.name)) {
      fail(spec.name, new Error('component is listed twice in the desired state'));
      continue;
    }
    seen.add(spec.name);
    try {
      const hash = specHash(spec);
      const existing = byName.get(spec.name) ?? [];
      const keep = existing.find((c) => c.running && c.specHash === hash);
      // Remove before start: the name (and host ports) can only be held by one at a time.
      for (const stale of existing.filter((c) => c !== keep)) await opts.runtime.remove(stale.id);
      if (keep) {
        actions.push({ component: spec.name, action: existing.length > 1 ? 'replaced' : 'unchanged' });
      } else {
        await opts.runtime.start(spec, opts.nodeId);
        actions.push({ component: spec.name, action: existing.length > 0 ? 'replaced' : 'created' });
      }
      log(`successfully reconciled state of ${spec.name} component`);
    } catch (err) {
      fail(spec.name, err);
    }
  }

  for (const [name, leftovers] of byName) {
    if (seen.has(name)) continue;
    log(`Removing component ${name}`);
    try {
      for (const c of leftovers) await opts.runtime.remove(c.id);
      actions.push({ component: name, action: 'removed' });
      log(`successfully removed ${name} component`);
    } catch (err) {
      fail(name, err);
    }
  }

  return { converged: actions.every((a) => a.action !== 'failed'), actions };
}

import { reconcileNode } from './reconcile-node.js';
import type { RunningComponent, Runtime } from './runtime.js';
import { specHash, type ComponentSpec } from './spec.js';

/** An in-memory runtime; `foreign` stands for containers without orca's label, which list() never shows. */
class FakeRuntime implements Runtime {
  items: (RunningComponent & { spec: ComponentSpec })[] = [];
  foreign = [{ id: 'user-container', name: 'ucp-proxy' }];
  calls: string[] = [];
  failStart = new Set<string>();
  private next = 1;

  async list(): Promise<RunningComponent[]> {
    return this.items.map(({ spec: _spec, ...c }) => ({ ...c }));
  }

  async start(spec: ComponentSpec, nodeId: string): Promise<string> {
    this.calls.push(`start ${spec.name}`);
    if (this.failStart.has(spec.name)) throw new Error(`image ${spec.image} not found`);
    const id = `c${this.next++}`;
    this.items.push({ id, name: spec.name, nodeId, specHash: specHash(spec), running: true, spec });
    return id;
  }

  async remove(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    this.items = this.items.filter((c) => c.id !== id);
  }
}

const component = (name: string, command = ['sleep', '1000']): ComponentSpec => ({
  name,
  image: 'orca/busybox:1',
  command,
  env: {},
  mounts: [],
  ports: [],
  network: 'host',
  labels: {},
  restartPolicy: 'unless-stopped',
});

describe('reconcileNode', () => {
  it('creates what is missing, then a second run does nothing', async () => {
    const runtime = new FakeRuntime();
    const lines: string[] = [];
    const desired = [component('ucp-proxy'), component('ucp-kv')];
    const first = await reconcileNode({ nodeId: 'n1', desired, runtime, log: (l) => lines.push(l) });
    expect(first).toEqual({
      converged: true,
      actions: [
        { component: 'ucp-proxy', action: 'created' },
        { component: 'ucp-kv', action: 'created' },
      ],
    });
    expect(lines).toEqual([
      'Reconciling state of component ucp-proxy',
      'successfully reconciled state of ucp-proxy component',
      'Reconciling state of component ucp-kv',
      'successfully reconciled state of ucp-kv component',
    ]);
    runtime.calls = [];
    const second = await reconcileNode({ nodeId: 'n1', desired, runtime });
    expect(second.actions.map((a) => a.action)).toEqual(['unchanged', 'unchanged']);
    expect(runtime.calls).toEqual([]);
    expect(runtime.foreign).toHaveLength(1);
  });

  it('replaces a component whose spec changed or that is not running', async () => {
    const runtime = new FakeRuntime();
    await reconcileNode({ nodeId: 'n1', desired: [component('a'), component('b')], runtime });
    runtime.items.find((c) => c.name === 'b')!.running = false;
    runtime.calls = [];
    const result = await reconcileNode({
      nodeId: 'n1',
      desired: [component('a', ['sleep', '2000']), component('b')],
      runtime,
    });
    expect(result.actions).toEqual([
      { component: 'a', action: 'replaced' },
      { component: 'b', action: 'replaced' },
    ]);
    // The old one goes before the new one starts: the name and ports are exclusive.
    expect(runtime.calls).toEqual(['remove c1', 'start a', 'remove c2', 'start b']);
    expect(runtime.items.every((c) => c.running)).toBe(true);
  });

  it('removes managed components of this node that are no longer desired, and leaves other nodes alone', async () => {
    const runtime = new FakeRuntime();
    await reconcileNode({ nodeId: 'n1', desired: [component('a'), component('old')], runtime });
    await reconcileNode({ nodeId: 'n2', desired: [component('old')], runtime });
    const result = await reconcileNode({ nodeId: 'n1', desired: [component('a')], runtime });
    expect(result.actions).toEqual([
      { component: 'a', action: 'unchanged' },
      { component: 'old', action: 'removed' },
    ]);
    expect(runtime.items.map((c) => `${c.nodeId}/${c.name}`).sort()).toEqual(['n1/a', 'n2/old']);
  });

  it('keeps one healthy copy and removes duplicates', async () => {
    const runtime = new FakeRuntime();
    await reconcileNode({ nodeId: 'n1', desired: [component('a')], runtime });
    runtime.items.push({ ...runtime.items[0], id: 'dup' });
    const result = await reconcileNode({ nodeId: 'n1', desired: [component('a')], runtime });
    expect(result.converged).toBe(true);
    expect(runtime.items.map((c) => c.id)).toEqual(['c1']);
  });

  it('reports failures, carries on with the other components, and converges once fixed', async () => {
    const runtime = new FakeRuntime();
    runtime.failStart.add('a');
    const lines: string[] = [];
    const desired = [component('a'), component('b'), component('b')];
    const result = await reconcileNode({ nodeId: 'n1', desired, runtime, log: (l) => lines.push(l) });
    expect(result.converged).toBe(false);
    expect(result.actions).toEqual([
      { component: 'a', action: 'failed', error: 'image orca/busybox:1 not found' },
      { component: 'b', action: 'created' },
      { component: 'b', action: 'failed', error: 'component is listed twice in the desired state' },
    ]);
    expect(lines).toContain('unable to reconcile state of a component: image orca/busybox:1 not found');
    runtime.failStart.clear();
    const again = await reconcileNode({ nodeId: 'n1', desired: [component('a'), component('b')], runtime });
    expect(again).toEqual({
      converged: true,
      actions: [
        { component: 'a', action: 'created' },
        { component: 'b', action: 'unchanged' },
      ],
    });
  });

  it('does not converge when the runtime cannot list', async () => {
    const runtime = new FakeRuntime();
    runtime.list = () => Promise.reject(new Error('engine unreachable'));
    const result = await reconcileNode({ nodeId: 'n1', desired: [component('a')], runtime });
    expect(result).toEqual({
      converged: false,
      actions: [{ component: '*', action: 'failed', error: 'engine unreachable' }],
    });
  });
});

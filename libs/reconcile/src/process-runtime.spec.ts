import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRuntime } from './process-runtime.js';
import { reconcileNode } from './reconcile-node.js';
import { specHash, type ComponentSpec } from './spec.js';

const spec = (name: string, command: string[], env: Record<string, string> = {}): ComponentSpec => ({
  name,
  image: 'process',
  command,
  env,
  mounts: [],
  ports: [],
  network: 'host',
  labels: {},
  restartPolicy: 'always',
});

const waitFor = async (check: () => Promise<boolean>, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('ProcessRuntime', () => {
  let dir: string;
  let runtime: ProcessRuntime;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-proc-'));
    runtime = new ProcessRuntime({ stateDir: dir, stopTimeoutMs: 2000 });
  });

  afterEach(async () => {
    for (const c of await runtime.list()) await runtime.remove(c.id);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a process with its env, lists it with its spec hash, and stops it', async () => {
    const s = spec('ucp-proxy', ['/bin/sh', '-c', 'echo "value=$ORCA_X"; exec sleep 30'], { ORCA_X: '42' });
    const id = await runtime.start(s, 'node-1');
    const [listed] = await runtime.list();
    expect(listed).toEqual({ id, name: 'ucp-proxy', nodeId: 'node-1', specHash: specHash(s), running: true });
    await waitFor(async () => readFileSync(join(dir, `${id}.log`), 'utf8').includes('value=42'));
    const { pid } = JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as { pid: number };
    await runtime.remove(id);
    expect(await runtime.list()).toEqual([]);
    // Gone once reaped (it is our child, so it may be a zombie for a moment).
    await waitFor(async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  });

  it('reports a process that died as not running', async () => {
    const id = await runtime.start(spec('short', ['/bin/sh', '-c', 'exit 3']), 'node-1');
    await waitFor(async () => (await runtime.list()).some((c) => c.id === id && !c.running));
  });

  it('lets a new runtime on the same state dir find and stop what an earlier one started', async () => {
    const desired = [spec('a', ['sleep', '30']), spec('b', ['sleep', '31'])];
    const first = await reconcileNode({ nodeId: 'n1', desired, runtime });
    expect(first.actions.map((a) => a.action)).toEqual(['created', 'created']);

    const later = new ProcessRuntime({ stateDir: dir });
    const again = await reconcileNode({ nodeId: 'n1', desired, runtime: later });
    expect(again.actions.map((a) => a.action)).toEqual(['unchanged', 'unchanged']);

    const shrunk = await reconcileNode({
      nodeId: 'n1',
      desired: [spec('a', ['sleep', '32'])],
      runtime: later,
    });
    expect(shrunk.actions).toEqual([
      { component: 'a', action: 'replaced' },
      { component: 'b', action: 'removed' },
    ]);
    const listed = await later.list();
    expect(listed.map((c) => [c.name, c.running])).toEqual([['a', true]]);
  });

  it('fails to start a command that does not exist', async () => {
    await expect(runtime.start(spec('x', ['/nonexistent/orca-binary']), 'n1')).rejects.toThrow(/ENOENT/);
    expect(await runtime.list()).toEqual([]);
  });
});

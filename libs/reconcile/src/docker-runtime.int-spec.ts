import { buildImages, freePort, startDockerd, type Dockerd } from '@orca/testing';
import { DockerRuntime } from './docker-runtime.js';
import { reconcileNode } from './reconcile-node.js';
import { LABEL_COMPONENT, LABEL_MANAGED, LABEL_NODE, type ComponentSpec } from './spec.js';

const NODE = 'node-int-1';

describe('reconcileNode with DockerRuntime on a real dockerd', () => {
  let daemon: Dockerd;
  let busybox: string;
  let runtime: DockerRuntime;

  beforeAll(async () => {
    daemon = await startDockerd({ index: 0 });
    busybox = (await buildImages(daemon, ['busybox'])).busybox;
    runtime = new DockerRuntime(daemon.engine);
  }, 90_000);

  afterAll(async () => {
    await daemon?.stop();
  }, 60_000);

  const web = (port: number): ComponentSpec => ({
    name: 'ucp-web',
    image: busybox,
    command: ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/etc'],
    env: { ORCA_ROLE: 'test' },
    mounts: [],
    ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: port }],
    network: 'host',
    labels: { 'com.docker.ucp.access.label': '/System' },
    restartPolicy: 'unless-stopped',
  });
  const sleeper: ComponentSpec = {
    name: 'ucp-sleeper',
    image: '',
    command: ['sleep', '1000'],
    env: {},
    mounts: [],
    ports: [],
    network: 'none',
    labels: {},
    restartPolicy: 'no',
  };

  const serves = async (port: number) => {
    for (let i = 0; i < 50; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/passwd`);
        return res.status === 200 && (await res.text()).includes('root:');
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return false;
  };

  const ids = async () =>
    Object.fromEntries((await runtime.list()).map((c) => [c.name, c.id])) as Record<string, string>;

  it('creates, keeps, restores, replaces and removes components, and leaves foreign containers alone', async () => {
    const sleep = { ...sleeper, image: busybox };
    const port = await freePort();
    // Someone else's container, with no orca label: never touched.
    const foreign = await daemon.engine.createAndStartContainer({
      name: 'user-app',
      image: busybox,
      cmd: ['sleep', '1000'],
      networkMode: 'none',
    });

    const lines: string[] = [];
    const first = await reconcileNode({
      nodeId: NODE,
      desired: [web(port), sleep],
      runtime,
      log: (l) => lines.push(l),
    });
    expect(first).toEqual({
      converged: true,
      actions: [
        { component: 'ucp-web', action: 'created' },
        { component: 'ucp-sleeper', action: 'created' },
      ],
    });
    expect(lines[0]).toBe('Reconciling state of component ucp-web');
    expect(await serves(port)).toBe(true);
    const created = await ids();
    const details = await daemon.engine.inspectContainer(created['ucp-web']);
    expect(details).toMatchObject({ name: 'ucp-web', running: true, networkMode: 'host' });
    expect(details.labels).toMatchObject({
      [LABEL_MANAGED]: 'true',
      [LABEL_COMPONENT]: 'ucp-web',
      [LABEL_NODE]: NODE,
      'com.docker.ucp.access.label': '/System',
    });
    expect(details.env).toContain('ORCA_ROLE=test');

    // A second run is a no-op.
    const second = await reconcileNode({ nodeId: NODE, desired: [web(port), sleep], runtime });
    expect(second.actions.map((a) => a.action)).toEqual(['unchanged', 'unchanged']);
    expect(await ids()).toEqual(created);

    // Removed by hand: restored.
    await daemon.engine.removeContainer(created['ucp-sleeper'], { force: true });
    const restored = await reconcileNode({ nodeId: NODE, desired: [web(port), sleep], runtime });
    expect(restored.actions).toEqual([
      { component: 'ucp-web', action: 'unchanged' },
      { component: 'ucp-sleeper', action: 'created' },
    ]);

    // Stopped by hand: replaced.
    const sleeperId = (await ids())['ucp-sleeper'];
    await daemon.engine.stopContainer(sleeperId, 0);
    const restarted = await reconcileNode({ nodeId: NODE, desired: [web(port), sleep], runtime });
    expect(restarted.actions[1]).toEqual({ component: 'ucp-sleeper', action: 'replaced' });

    // A changed flag: replaced, serving on the new port.
    const port2 = await freePort();
    const changed = await reconcileNode({ nodeId: NODE, desired: [web(port2), sleep], runtime });
    expect(changed.actions[0]).toEqual({ component: 'ucp-web', action: 'replaced' });
    expect((await ids())['ucp-web']).not.toBe(created['ucp-web']);
    expect(await serves(port2)).toBe(true);

    // No longer desired: removed; the foreign container survives everything.
    const shrunk = await reconcileNode({ nodeId: NODE, desired: [web(port2)], runtime });
    expect(shrunk.actions).toEqual([
      { component: 'ucp-web', action: 'unchanged' },
      { component: 'ucp-sleeper', action: 'removed' },
    ]);
    expect(Object.keys(await ids())).toEqual(['ucp-web']);
    expect((await daemon.engine.inspectContainer(foreign.id)).running).toBe(true);
  }, 90_000);

  it('reports a component whose image is missing, and a name held by a foreign container', async () => {
    await daemon.engine.createAndStartContainer({
      name: 'ucp-taken',
      image: busybox,
      cmd: ['sleep', '1000'],
      networkMode: 'none',
    });
    const result = await reconcileNode({
      nodeId: NODE,
      desired: [
        { ...sleeper, name: 'ucp-noimage', image: 'orca/does-not-exist:1' },
        { ...sleeper, name: 'ucp-taken', image: busybox },
      ],
      runtime,
    });
    expect(result.converged).toBe(false);
    expect(result.actions.map((a) => [a.component, a.action])).toEqual([
      ['ucp-noimage', 'failed'],
      ['ucp-taken', 'failed'],
      ['ucp-web', 'removed'],
    ]);
    expect(result.actions[0].error).toMatch(/No such image/i);
    expect(result.actions[1].error).toMatch(/already in use/);
    const taken = await daemon.engine.listContainers({ all: true, name: 'ucp-taken' });
    expect(taken[0].labels[LABEL_MANAGED]).toBeUndefined();
  }, 60_000);
});

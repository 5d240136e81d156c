import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '@orca/engine';
import { buildImages, startDockerd, startSwarm, type Dockerd, type DockerSwarm } from './docker.js';

/** Runs a container to completion; returns its exit code and output. */
async function runToEnd(engine: Engine, image: string, entrypoint: string[], cmd: string[] = []) {
  const { id } = await engine.createAndStartContainer({ image, entrypoint, cmd, networkMode: 'none' });
  for (let i = 0; i < 300 && (await engine.inspectContainer(id)).running; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const { exitCode } = await engine.inspectContainer(id);
  const output = await engine.containerLogs(id);
  await engine.removeContainer(id, { force: true });
  return { exitCode, output };
}

describe('locally built images', () => {
  let daemon: Dockerd;

  beforeAll(async () => {
    daemon = await startDockerd({ index: 0 });
  }, 60_000);

  afterAll(async () => {
    const dir = daemon?.dir;
    await daemon?.stop();
    // stop() leaves nothing behind: no directory, no mounts.
    expect(dir && existsSync(dir)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  }, 60_000);

  it('builds busybox, node-base, etcd and orca images tagged by content hash, and skips them the second time', async () => {
    const refs = await buildImages(daemon);
    expect(Object.keys(refs).sort()).toEqual(['busybox', 'etcd', 'node-base', 'orca']);
    for (const [name, ref] of Object.entries(refs)) {
      expect(ref).toMatch(new RegExp(`^orca/${name}:[0-9a-f]{16}$`));
      expect(await daemon.engine.imageExists(ref)).toBe(true);
    }
    expect(await buildImages(daemon)).toEqual(refs);

    const sh = await runToEnd(
      daemon.engine,
      refs.busybox,
      ['/bin/sh', '-c'],
      ['echo hello from $(uname -s)'],
    );
    expect(sh).toEqual({ exitCode: 0, output: 'hello from Linux\n' });

    const etcd = await runToEnd(daemon.engine, refs.etcd, ['/usr/local/bin/etcd'], ['--version']);
    expect(etcd.exitCode).toBe(0);
    expect(etcd.output).toContain('etcd Version: 3.4');

    // The orca image runs Node.js and loads a compiled lib (dockerode from the copied production deps).
    const node = await runToEnd(
      daemon.engine,
      refs.orca,
      ['node'],
      [
        '--import',
        './scripts/register.mjs',
        '--input-type=module',
        '-e',
        "const { Engine } = await import('@orca/engine'); console.log(process.version, typeof Engine);",
      ],
    );
    expect(node).toEqual({ exitCode: 0, output: `${process.version} function\n` });

    // Engine.importImage and Engine.buildImage (what the image builder uses) on the same inputs.
    const tag = refs.busybox.split(':')[1];
    const cache = process.env.ORCA_IMAGE_CACHE ?? join(homedir(), '.cache', 'orca', 'images');
    await daemon.engine.importImage(join(cache, `busybox-${tag}.tar`), 'orca/imported:test');
    expect(await daemon.engine.imageExists('orca/imported:test')).toBe(true);
    const ctx = mkdtempSync(join(tmpdir(), 'orca-build-'));
    try {
      writeFileSync(
        join(ctx, 'Dockerfile'),
        'FROM orca/imported:test\nRUN echo built > /built\nCMD ["cat", "/built"]\n',
      );
      const lines: string[] = [];
      const id = await daemon.engine.buildImage(ctx, 'orca/built:test', { onOutput: (l) => lines.push(l) });
      expect(id).toMatch(/^(sha256:)?[0-9a-f]{12,64}$/);
      expect(lines.join('\n')).toContain('Step 2/3');
      expect(await runToEnd(daemon.engine, 'orca/built:test', [])).toEqual({
        exitCode: 0,
        output: 'built\n',
      });
      await expect(
        daemon.engine.buildImage(ctx, 'orca/broken:test', { dockerfile: 'Missing' }),
      ).rejects.toMatchObject({
        name: 'EngineError',
      });
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('a 3-daemon swarm', () => {
  let swarm: DockerSwarm;

  beforeAll(async () => {
    swarm = await startSwarm(3);
  }, 90_000);

  afterAll(async () => {
    await swarm?.stop();
  }, 90_000);

  it('forms on 127.0.0.1-3 and runs a global host-network service with one task per node', async () => {
    const { manager, daemons, nodeIds } = swarm;
    const nodes = await manager.engine.listNodes();
    expect(nodes.map((n) => n.state)).toEqual(['ready', 'ready', 'ready']);
    // Each engine advertises its own loopback address (the manager sees every peer's source as 127.0.0.1).
    const advertised = await Promise.all(daemons.map(async (d) => (await d.engine.info()).swarm.nodeAddr));
    expect(advertised).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    expect(nodes.filter((n) => n.role === 'manager').map((n) => n.manager?.leader)).toEqual([true]);
    const info = await manager.engine.swarmInspect();
    expect(info.joinTokens.worker).toMatch(/^SWMTKN-1-/);
    expect(info.trustRoot).toContain('BEGIN CERTIFICATE');

    // Images are per engine: every node needs the busybox image (cached rootfs, so this is quick).
    const refs = await Promise.all(daemons.map(async (d) => (await buildImages(d, ['busybox'])).busybox));
    expect(new Set(refs).size).toBe(1);

    const serviceId = await manager.engine.createService({
      name: 'orca-sleeper',
      image: refs[0],
      args: ['sleep', '1000'],
      mode: { global: true },
      networks: ['host'],
      labels: { 'com.docker.ucp.orca.managed': 'true' },
    });
    const deadline = Date.now() + 60_000;
    let running: string[] = [];
    while (Date.now() < deadline) {
      const tasks = await manager.engine.listTasks({ service: serviceId, desiredState: 'running' });
      running = tasks.filter((t) => t.state === 'running').map((t) => t.nodeId!);
      if (running.length === 3) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(running.sort()).toEqual([...nodeIds].sort());
    const service = await manager.engine.inspectService(serviceId);
    // The engine stores the network by id; the task containers show it is the host network.
    expect(service.spec).toMatchObject({
      name: 'orca-sleeper',
      mode: { global: true },
      args: ['sleep', '1000'],
    });

    // The task containers run on each node's own engine, with host networking.
    for (const d of daemons) {
      const containers = await d.engine.listContainers({
        labels: { 'com.docker.swarm.service.id': serviceId },
      });
      expect(containers).toHaveLength(1);
      expect((await d.engine.inspectContainer(containers[0].id)).networkMode).toBe('host');
    }
  }, 120_000);
});

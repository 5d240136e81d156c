// `orca install` on a real three-engine swarm, as a UCP user would run it: the manager's components
// come up as containers, swarm schedules ucp-agent onto every node, the workers join with the worker
// token, every node runs exactly its components, and drift is repaired.
import { buildImages, freePort, startDockerd, startSwarm, type DockerSwarm } from '@orca/testing';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { connect } from 'node:tls';
import { joinCluster } from '../apps/agent/src/agent.js';
import { httpsJson, httpsRequest } from '../apps/agent/src/https-json.js';

const root = resolve(process.cwd());
const ADMIN_PASSWORD = 'orca-e2e-admin';

function orca(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [
        '--import',
        join(root, 'scripts', 'register.mjs'),
        join(root, 'dist', 'apps', 'cli', 'src', 'main.js'),
        ...args,
      ],
      { cwd: root, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function docker(host: string, args: string[]): Promise<string> {
  return new Promise((done, reject) => {
    execFile('docker', ['-H', host, ...args], (error, stdout, stderr) =>
      error ? reject(new Error(stderr || error.message)) : done(stdout.trim()),
    );
  });
}

interface NodeRow {
  id: string;
  role: string;
  hostname: string;
  address: string;
  engineNodeId?: string;
  status: string;
  lastHeartbeat?: string;
  certificate: { state: string; notAfter?: string };
  components: { name: string; state: string }[];
}

async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out: ${what}${last ? ` (${(last as Error).message})` : ''}`);
}

describe('orca install on a real swarm', () => {
  let swarm: DockerSwarm;
  let baseDir: string;
  let url: string;
  let images: Record<string, string>;
  const basic = Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64');
  const nodes = () => httpsJson<NodeRow[]>('GET', `${url}/api/orca/v1/nodes`, { insecure: true, basic });
  const names = async (host: string) =>
    (await docker(host, ['ps', '--format', '{{.Names}}'])).split('\n').filter(Boolean).sort();

  beforeAll(async () => {
    baseDir = mkdtempSync(join(tmpdir(), 'orca-e2e-'));
    swarm = await startSwarm(3, { baseDir });
    images = await buildImages(swarm.manager, ['busybox', 'etcd', 'orca']);
    // Nothing can be pulled here: every engine gets the images the way an offline UCP install
    // pre-loads them (docker save | docker load), before swarm schedules ucp-agent onto it.
    for (const worker of swarm.daemons.slice(1)) {
      await new Promise<void>((done, reject) =>
        execFile(
          'sh',
          [
            '-c',
            `docker -H ${swarm.manager.dockerHost} save ${Object.values(images).join(' ')} | docker -H ${worker.dockerHost} load`,
          ],
          (error) => (error ? reject(error) : done()),
        ),
      );
    }
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    const install = await orca(
      [
        'install',
        '--engine',
        swarm.manager.socketPath,
        '--address',
        swarm.manager.address,
        '--controller-port',
        String(port),
        '--engine-dir',
        baseDir,
        '--orca-image',
        images.orca,
        '--etcd-image',
        images.etcd,
      ],
      { ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD },
    );
    if (install.code !== 0)
      throw new Error(`install failed (${install.code}):\n${install.stdout}\n${install.stderr}`);
    expect(install.stdout).toContain(url);
    expect(install.stdout).toMatch(/Worker join token:\s+SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}/);
  }, 600_000);

  afterAll(async () => {
    await swarm?.stop();
    rmSync(baseDir, { recursive: true, force: true });
  }, 120_000);

  it('joins every swarm node through ucp-agent and runs exactly its components', async () => {
    const ready = await eventually('three Ready nodes with running components', 180_000, async () => {
      const list = await nodes();
      const done =
        list.length === 3 &&
        list.every(
          (n) =>
            n.status === 'Ready' &&
            n.components.length > 0 &&
            n.components.every((c) => c.state === 'running'),
        );
      return done ? list : undefined;
    });
    const managers = ready.filter((n) => n.role === 'swarm-manager');
    const workers = ready.filter((n) => n.role === 'swarm-worker');
    expect(managers).toHaveLength(1);
    expect(workers).toHaveLength(2);
    expect(managers[0].components.map((c) => c.name).sort()).toEqual([
      'ucp-controller',
      'ucp-kv',
      'ucp-proxy',
    ]);
    for (const worker of workers) expect(worker.components.map((c) => c.name)).toEqual(['ucp-proxy']);
    expect(ready.map((n) => n.address).sort()).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    expect(new Set(ready.map((n) => n.engineNodeId))).toEqual(new Set(swarm.nodeIds));
    for (const node of ready) expect(Date.parse(node.certificate.notAfter ?? '')).toBeGreaterThan(Date.now());

    const [managerEngine, worker1, worker2] = swarm.daemons;
    expect(
      (await names(managerEngine.dockerHost)).filter(
        (n) => n.startsWith('ucp-') && !n.startsWith('ucp-agent.'),
      ),
    ).toEqual(['ucp-controller', 'ucp-kv', 'ucp-proxy']);
    for (const worker of [worker1, worker2]) {
      const running = await names(worker.dockerHost);
      expect(running.filter((n) => !n.startsWith('ucp-agent.'))).toEqual(['ucp-proxy']);
      expect(running.some((n) => n.startsWith('ucp-agent.'))).toBe(true);
    }

    // orca nodes, as an operator runs it.
    const cli = await orca(['nodes', '--url', url, '--password', ADMIN_PASSWORD]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.split('\n').filter((l) => / (manager|worker) /.test(l))).toHaveLength(3);
  }, 240_000);

  it('lets managers (and only managers) through ucp-proxy to the node engine', async () => {
    const tokens = await httpsJson<{ Worker: string; Manager: string }>(
      'GET',
      `${url}/api/orca/v1/jointokens`,
      { insecure: true, basic },
    );
    const asManager = await joinCluster({
      managerUrl: url,
      token: tokens.Manager,
      address: '127.0.0.9',
      hostname: 'probe-m',
      runtimeKind: 'process',
    });
    const asWorker = await joinCluster({
      managerUrl: url,
      token: tokens.Worker,
      address: '127.0.0.9',
      hostname: 'probe-w',
      runtimeKind: 'process',
    });
    const ping = (identity: typeof asManager) =>
      new Promise<string>((done, reject) => {
        const socket = connect(
          {
            host: '127.0.0.2',
            port: 12376,
            ca: identity.caPem,
            cert: identity.certPem,
            key: identity.keyPem,
            checkServerIdentity: () => undefined,
          },
          () => {
            socket.write('GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
          },
        );
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString()));
        socket.on('end', () => done(data));
        socket.on('error', reject);
      });
    expect(await ping(asManager)).toMatch(/^HTTP\/1.1 200 OK[\s\S]*OK$/);
    expect(await ping(asWorker)).toMatch(/^HTTP\/1.1 403/);
  }, 60_000);

  it('restores a component removed by hand within 10 seconds and leaves user containers alone', async () => {
    const worker = swarm.daemons[1];
    const userApp = await docker(worker.dockerHost, [
      'run',
      '-d',
      '--name',
      'user-app',
      '--network',
      'none',
      images.busybox,
      'sleep',
      '3600',
    ]);
    await docker(worker.dockerHost, [
      'create',
      '--name',
      'user-idle',
      '--network',
      'none',
      images.busybox,
      'true',
    ]);
    const before = await docker(worker.dockerHost, ['inspect', '-f', '{{.Id}}', 'ucp-proxy']);
    const removedAt = Date.now();
    await docker(worker.dockerHost, ['rm', '-f', 'ucp-proxy']);
    const after = await eventually('ucp-proxy back', 10_000, async () => {
      const id = await docker(worker.dockerHost, [
        'inspect',
        '-f',
        '{{if .State.Running}}{{.Id}}{{end}}',
        'ucp-proxy',
      ]).catch(() => '');
      return id && id !== before ? id : undefined;
    });
    expect(after).not.toBe(before);
    expect(Date.now() - removedAt).toBeLessThan(10_000);
    expect(await docker(worker.dockerHost, ['inspect', '-f', '{{.Name}}', 'user-idle'])).toBe('/user-idle');
    expect(await docker(worker.dockerHost, ['inspect', '-f', '{{.Id}} {{.State.Running}}', 'user-app'])).toBe(
      `${userApp} true`,
    );
  }, 60_000);

  it('rolls out a changed component spec to every node', async () => {
    const before = await Promise.all(
      swarm.daemons.map((d) => docker(d.dockerHost, ['inspect', '-f', '{{.Id}}', 'ucp-proxy'])),
    );
    await httpsJson(
      'PUT',
      `${url}/api/orca/v1/settings/components`,
      { insecure: true, basic },
      {
        extraArgs: { 'ucp-proxy': ['--idle-timeout', '600'] },
      },
    );
    for (const [i, daemon] of swarm.daemons.entries()) {
      await eventually(`ucp-proxy replaced on node ${i}`, 30_000, async () => {
        const [id, args] = (
          await docker(daemon.dockerHost, [
            'inspect',
            '-f',
            '{{.Id}} {{.State.Running}} {{json .Args}}',
            'ucp-proxy',
          ])
        ).split(' ');
        return id !== before[i] && args === 'true' ? id : undefined;
      });
      expect(await docker(daemon.dockerHost, ['inspect', '-f', '{{json .Args}}', 'ucp-proxy'])).toContain(
        '"--idle-timeout","600"',
      );
    }
    expect(await docker(swarm.daemons[1].dockerHost, ['inspect', '-f', '{{.Name}}', 'user-idle'])).toBe(
      '/user-idle',
    );
  }, 90_000);

  it('marks a node whose agent stops Down within 15 seconds, and Ready when it returns', async () => {
    const worker = swarm.daemons[2];
    const agent = (await names(worker.dockerHost)).find((n) => n.startsWith('ucp-agent.'))!;
    const nodeOf = async () => (await nodes()).find((n) => n.engineNodeId === swarm.nodeIds[2])!;
    await docker(worker.dockerHost, ['kill', '--signal', 'STOP', agent]);
    const pausedAt = Date.now();
    try {
      await eventually('node Down', 25_000, async () =>
        (await nodeOf()).status === 'Down' ? true : undefined,
      );
      expect(Date.now() - pausedAt).toBeLessThan(22_000);
    } finally {
      await docker(worker.dockerHost, ['kill', '--signal', 'CONT', agent]);
    }
    await eventually('node Ready again', 20_000, async () =>
      (await nodeOf()).status === 'Ready' ? true : undefined,
    );
  }, 90_000);

  it('says so in /_ping within seconds when the store goes away, and resumes when the agent restores it', async () => {
    const manager = swarm.manager;
    const ping = () => httpsRequest('GET', `${url}/_ping`, { insecure: true }, undefined, 5000);
    expect((await ping()).status).toBe(200);
    // Hold the manager's agent so it does not restore ucp-kv at once, then take the store away.
    const agent = (await names(manager.dockerHost)).find((n) => n.startsWith('ucp-agent.'))!;
    await docker(manager.dockerHost, ['kill', '--signal', 'STOP', agent]);
    try {
      await docker(manager.dockerHost, ['stop', '-t', '1', 'ucp-kv']);
      const stoppedAt = Date.now();
      const down = await eventually('/_ping 500', 15_000, async () => {
        const answer = await ping();
        return answer.status === 500 ? answer : undefined;
      });
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
      expect(down.text).toContain('store');
    } finally {
      await docker(manager.dockerHost, ['kill', '--signal', 'CONT', agent]);
    }
    await eventually('/_ping 200 again', 60_000, async () =>
      (await ping()).status === 200 ? true : undefined,
    );
    expect(await docker(manager.dockerHost, ['inspect', '-f', '{{.State.Running}}', 'ucp-kv'])).toBe('true');
  }, 120_000);

  it('loses no node record or certificate when the controller is killed', async () => {
    const listed = await nodes();
    const before = listed.map((n) => `${n.id} ${n.role} ${n.certificate.notAfter}`).sort();
    const readyBefore = listed.filter((n) => n.status === 'Ready').map((n) => n.id);
    expect(readyBefore.length).toBeGreaterThanOrEqual(3);
    await docker(swarm.manager.dockerHost, ['kill', 'ucp-controller']);
    const after = await eventually('controller back with the same nodes', 60_000, async () => {
      const list = await nodes();
      // Nodes that were Ready before (the probes joined by an earlier test never heartbeat).
      const wereReady = new Set(readyBefore);
      if (list.length === before.length && list.every((n) => n.status === 'Ready' || !wereReady.has(n.id)))
        return list;
      throw new Error(JSON.stringify(list.map((n) => [n.address, n.status, n.lastHeartbeat])));
    }).catch(async (error: Error) => {
      const host = swarm.manager.dockerHost;
      const agent = (await names(host)).find((n) => n.startsWith('ucp-agent.')) ?? '';
      const logs = await new Promise<string>((done) =>
        execFile('docker', ['-H', host, 'logs', '--tail', '40', agent], (_e, out, err) =>
          done(`${out}${err}`),
        ),
      );
      const controllerLogs = await new Promise<string>((done) =>
        execFile('docker', ['-H', host, 'logs', '--tail', '40', 'ucp-controller'], (_e, out, err) =>
          done(`${out}${err}`),
        ),
      );
      throw new Error(
        `${error.message}\n${await docker(host, ['ps', '-a'])}\nagent:\n${logs}\ncontroller:\n${controllerLogs}`,
      );
    });
    expect(after.map((n) => `${n.id} ${n.role} ${n.certificate.notAfter}`).sort()).toEqual(before);
  }, 90_000);

  it('joins an engine outside swarm with `orca agent` and runs its ucp-proxy', async () => {
    const standalone = await startDockerd({ index: 3, baseDir });
    try {
      await new Promise<void>((done, reject) =>
        execFile(
          'sh',
          [
            '-c',
            `docker -H ${swarm.manager.dockerHost} save ${images.orca} | docker -H ${standalone.dockerHost} load`,
          ],
          (error) => (error ? reject(error) : done()),
        ),
      );
      const tokens = await httpsJson<{ Worker: string }>('GET', `${url}/api/orca/v1/jointokens`, {
        insecure: true,
        basic,
      });
      const state = mkdtempSync(join(tmpdir(), 'orca-agent-state-'));
      const agent = spawn(
        process.execPath,
        [
          '--import',
          join(root, 'scripts', 'register.mjs'),
          join(root, 'dist', 'apps', 'cli', 'src', 'main.js'),
          'agent',
          '--token',
          tokens.Worker,
          '--manager',
          url,
          '--engine',
          standalone.socketPath,
          '--state',
          state,
          '--address',
          standalone.address,
        ],
        { stdio: 'ignore' },
      );
      try {
        const node = await eventually('standalone node Ready with ucp-proxy running', 60_000, async () => {
          const found = (await nodes()).find((n) => n.address === standalone.address);
          return found?.status === 'Ready' &&
            found.components.some((c) => c.name === 'ucp-proxy' && c.state === 'running')
            ? found
            : undefined;
        });
        expect(node.role).toBe('swarm-worker');
        expect(await names(standalone.dockerHost)).toEqual(['ucp-proxy']);
      } finally {
        agent.kill('SIGTERM');
        rmSync(state, { recursive: true, force: true });
      }
    } finally {
      await standalone.stop();
    }
  }, 180_000);

  it('fails a join to a manager that is down with a one-line error and no node record', async () => {
    const before = (await nodes()).length;
    const tokens = await httpsJson<{ Worker: string }>('GET', `${url}/api/orca/v1/jointokens`, {
      insecure: true,
      basic,
    });
    const state = mkdtempSync(join(tmpdir(), 'orca-agent-down-'));
    try {
      const closedPort = await freePort();
      const result = await orca([
        'agent',
        '--token',
        tokens.Worker,
        '--manager',
        `https://127.0.0.1:${closedPort}`,
        '--runtime',
        'process',
        '--state',
        state,
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('cannot reach the manager');
      const wrongToken = await orca([
        'agent',
        '--token',
        'SWMTKN-1-bogus',
        '--manager',
        url,
        '--runtime',
        'process',
        '--state',
        state,
      ]);
      expect(wrongToken.code).toBe(1);
      expect(wrongToken.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
    expect((await nodes()).length).toBe(before);
  }, 60_000);

  // Before the late join below: that engine must join orca with the rotated token.
  it('prints and rotates join tokens from the CLI, and the ucp-agent service gets the new token', async () => {
    const shown = await orca(['join-token', 'worker', '-q', '--url', url, '--password', ADMIN_PASSWORD]);
    expect(shown.code).toBe(0);
    expect(shown.stdout.trim()).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const rotated = await orca([
      'join-token',
      'worker',
      '--rotate',
      '-q',
      '--url',
      url,
      '--password',
      ADMIN_PASSWORD,
    ]);
    expect(rotated.stdout.trim()).not.toBe(shown.stdout.trim());
    const digest = createHash('sha256').update(rotated.stdout.trim()).digest('hex');
    await eventually('the ucp-agent service to carry the rotated worker token', 30_000, async () => {
      const service = (await swarm.manager.engine.listServices()).find((s) => s.spec.name === 'ucp-agent');
      const secrets = await swarm.manager.engine.listSecrets();
      const current = secrets.find((x) => x.labels['com.docker.ucp.orca.token-sha256'] === digest);
      return current && service?.spec.secrets?.some((x) => x.secretId === current.id) ? true : undefined;
    });
    // The old token's secret goes once nothing uses it.
    await eventually('the old join-token secret to be removed', 30_000, async () => {
      const secrets = (await swarm.manager.engine.listSecrets()).filter((x) =>
        x.name.startsWith('ucp-agent-join-token'),
      );
      return secrets.length === 1 ? true : undefined;
    });
    const bad = await orca(['join-token', 'worker', '--url', url, '--password', 'wrong-password']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Invalid username or password.');
  }, 60_000);

  it('gets ucp-agent onto an engine that joins the swarm later, which then joins orca with the rotated token', async () => {
    const late = await startDockerd({ index: 4, baseDir });
    try {
      await new Promise<void>((done, reject) =>
        execFile(
          'sh',
          [
            '-c',
            `docker -H ${swarm.manager.dockerHost} save ${images.orca} | docker -H ${late.dockerHost} load`,
          ],
          (error) => (error ? reject(error) : done()),
        ),
      );
      const { joinTokens } = await swarm.manager.engine.swarmInspect();
      await late.engine.swarmJoin({
        remoteAddrs: [`${swarm.manager.address}:2377`],
        joinToken: joinTokens.worker,
        advertiseAddr: late.address,
        listenAddr: `${late.address}:2377`,
        dataPathAddr: late.address,
      });
      const joined = await eventually(
        'the late engine Ready in orca with ucp-proxy running',
        90_000,
        async () => {
          const found = (await nodes()).find((n) => n.address === late.address);
          return found?.status === 'Ready' &&
            found.components.some((c) => c.name === 'ucp-proxy' && c.state === 'running')
            ? found
            : undefined;
        },
      );
      expect(joined.role).toBe('swarm-worker');
      expect(joined.engineNodeId).toBe((await late.engine.info()).swarmNodeId);
      expect((await names(late.dockerHost)).some((n) => n.startsWith('ucp-agent.'))).toBe(true);
    } finally {
      await late.stop();
    }
  }, 180_000);
});

// `npm start` runs the Kubernetes control plane as components: its agent's process runtime starts
// ucp-kv (Debian's etcd, Kubernetes' storage), ucp-kube-apiserver, -controller-manager,
// -scheduler and ucp-kwok with certificates orca issued from its cluster CA, and the controller's
// 6443 front door uses that apiserver with no ORCA_KUBE_* setting. The installed kubectl with
// downloaded bundles' kube.yml: nodes, namespaces, a deployment Running, apply; a user refused
// until a grant (webhook mode), then allowed; a killed apiserver brought back by the agent.
import { basicAuth, freePort, httpsCall, orcaIdToken, runKubectl, until } from '@orca/testing';
import JSZip from 'jszip';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(process.cwd());
const ADMIN_PASSWORD = 'orca-admin-pass';

/** The installed kubectl with only this kubeconfig. */
const kubectl = (kubeconfig: string, args: string[], input?: string) =>
  runKubectl(kubeconfig, args, { input });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start with Kubernetes', () => {
  let dir: string;
  let dataDir: string;
  let child: ChildProcess | undefined;
  let output = '';
  let url: string;
  let kubePort: number;
  let apiserverPort: number;
  let webhookPort: number;
  const kubeconfigs: Record<string, string> = {};
  const admin = basicAuth('admin', ADMIN_PASSWORD);

  /** The process runtime's record of a component: `<node>--<name>.json` in the data dir. */
  const componentPid = (name: string): number => {
    const processes = join(dataDir, 'processes');
    const file = readdirSync(processes).find((f) => f.endsWith(`--${name}.json`));
    if (!file) throw new Error(`no ${name} component`);
    return (JSON.parse(readFileSync(join(processes, file), 'utf8')) as { pid: number }).pid;
  };

  async function bundle(user: string, password: string): Promise<string> {
    const reply = await httpsCall(url, '/api/clientbundle', {
      method: 'POST',
      auth: basicAuth(user, password),
    });
    expect(reply.status).toBe(200);
    const zip = await JSZip.loadAsync(reply.body);
    const path = join(dir, `${user}-kube.yml`);
    writeFileSync(path, await zip.file('kube.yml')!.async('string'), { mode: 0o600 });
    return path;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-kube-e2e-'));
    dataDir = join(dir, 'data');
    const port = await freePort();
    kubePort = await freePort();
    apiserverPort = await freePort();
    webhookPort = await freePort();
    url = `https://127.0.0.1:${port}`;
    const env = {
      ORCA_PORT: String(port),
      ORCA_DTR_PORT: String(await freePort()),
      ORCA_KUBE_PORT: String(kubePort),
      ORCA_KUBE_APISERVER_PORT: String(apiserverPort),
      ORCA_KUBE_KV_PORT: String(await freePort()),
      ORCA_KUBE_KV_PEER_PORT: String(await freePort()),
      ORCA_KUBE_WEBHOOK_PORT: String(webhookPort),
      ORCA_DATA_DIR: dataDir,
      ORCA_ENGINE: join(dir, 'no-engine.sock'),
      ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ORCA_KUBERNETES: 'true',
    };
    for (const key of Object.keys(process.env)) if (key.startsWith('ORCA_KUBE_')) delete process.env[key];
    child = spawn('npm', ['start', '--silent'], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolveUp, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('stop with Ctrl-C')) resolveUp();
      };
      child!.stdout?.on('data', onData);
      child!.stderr?.on('data', onData);
      child!.on('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
    });
    kubeconfigs.admin = await bundle('admin', ADMIN_PASSWORD);
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGINT');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    // Whatever a failed run left: the components are process groups of their own.
    try {
      for (const file of readdirSync(join(dataDir, 'processes')).filter((f) => f.endsWith('.json'))) {
        const { pid } = JSON.parse(readFileSync(join(dataDir, 'processes', file), 'utf8')) as { pid: number };
        if (alive(pid)) process.kill(-pid, 'SIGKILL');
      }
    } catch {
      // nothing left
    }
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('says where Kubernetes is, and kubectl with the admin bundle sees the kwok node Ready', async () => {
    expect(output).toContain(`Kubernetes:        https://127.0.0.1:${kubePort}`);
    expect(readFileSync(kubeconfigs.admin, 'utf8')).toContain(`server: https://127.0.0.1:${kubePort}`);
    const nodes = await until('a Ready node', 90_000, async () => {
      const res = await kubectl(kubeconfigs.admin, ['get', 'nodes', '--no-headers']);
      return /\sReady\s/.test(res.stdout) ? res.stdout : undefined;
    });
    expect(nodes).toMatch(/\sReady\s+master\s/);
    // The leader registered orca's admission webhook with the apiserver it runs.
    const hook = await until('the admission webhook registration', 30_000, async () => {
      const res = await kubectl(kubeconfigs.admin, [
        'get',
        'validatingwebhookconfiguration',
        'orca-ucp-authorization',
        '-o',
        'jsonpath={.webhooks[0].clientConfig.url}',
      ]);
      return res.code === 0 ? res.stdout : undefined;
    });
    // On the webhooks' own port and thread, as the apiserver's authorization webhook.
    expect(hook).toBe(`https://127.0.0.1:${webhookPort}/kube/webhooks/admit`);
  }, 100_000);

  it('admin: create namespace, a deployment whose pods reach Running, apply -f', async () => {
    // The controller-manager makes the namespace's default service account, which pods need.
    expect((await kubectl(kubeconfigs.admin, ['create', 'namespace', 'e2e'])).code).toBe(0);
    await until('the default service account', 60_000, async () =>
      (await kubectl(kubeconfigs.admin, ['get', 'serviceaccount', 'default', '-n', 'e2e'])).code === 0
        ? true
        : undefined,
    );
    const created = await kubectl(kubeconfigs.admin, [
      'create',
      'deployment',
      'web',
      '-n',
      'e2e',
      '--image=registry.invalid/nginx:1',
      '--replicas=2',
    ]);
    expect(created.stderr).toBe('');
    const phases = await until('two Running pods', 60_000, async () => {
      const res = await kubectl(kubeconfigs.admin, ['get', 'pods', '-n', 'e2e', '-o', 'json']);
      const items = (JSON.parse(res.stdout) as { items: { status: { phase?: string } }[] }).items;
      const list = items.map((p) => p.status.phase);
      return list.length === 2 && list.every((p) => p === 'Running') ? list : undefined;
    });
    expect(phases).toEqual(['Running', 'Running']);
    const manifest = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: settings, namespace: e2e}',
      'data: {colour: blue}',
      '---',
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: web, namespace: e2e}',
      'spec: {selector: {app: web}, ports: [{port: 80}]}',
      '',
    ].join('\n');
    const applied = await kubectl(kubeconfigs.admin, ['apply', '-f', '-'], manifest);
    expect(applied.stdout).toContain('configmap/settings created');
    expect(applied.stdout).toContain('service/web created');
  }, 150_000);

  it('a user is refused until a grant on the namespace, then allowed (authorization webhook)', async () => {
    const created = await httpsCall(url, '/accounts/', {
      method: 'POST',
      auth: admin,
      body: { name: 'bob', password: 'bob-password-1' },
    });
    expect(created.status).toBe(201);
    const bobId = (JSON.parse(created.body.toString()) as { id: string }).id;
    kubeconfigs.bob = await bundle('bob', 'bob-password-1');
    const refused = await kubectl(kubeconfigs.bob, ['get', 'pods', '-n', 'e2e']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Forbidden');
    const grant = await httpsCall(url, `/collectionGrants/${bobId}/e2e/viewonly?type=namespace`, {
      method: 'PUT',
      auth: admin,
    });
    expect(grant.status).toBe(201);
    // The webhook's cache TTLs are 0 s: the next request sees the grant.
    const allowed = await kubectl(kubeconfigs.bob, ['get', 'pods', '-n', 'e2e', '--no-headers']);
    expect(allowed.stderr).toBe('');
    expect(allowed.stdout).toMatch(/^web-/m);
    // View Only: no writes, and nothing outside the namespace.
    expect((await kubectl(kubeconfigs.bob, ['delete', 'pods', '--all', '-n', 'e2e'])).stderr).toContain(
      'Forbidden',
    );
    expect((await kubectl(kubeconfigs.bob, ['get', 'pods', '-n', 'default'])).stderr).toContain('Forbidden');
  }, 60_000);

  it("accepts orca's OpenID Connect ID tokens at the apiserver itself (--oidc-* at orca)", async () => {
    const ca = readFileSync(join(dataDir, 'node', 'ca.pem'), 'utf8');
    const token = await orcaIdToken(`${url}/oidc`, ca, 'bob', 'bob-password-1');
    const path = join(dir, 'bob-oidc.kubeconfig');
    writeFileSync(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'direct',
            cluster: {
              server: `https://127.0.0.1:${apiserverPort}`,
              'certificate-authority-data': Buffer.from(ca).toString('base64'),
            },
          },
        ],
        users: [{ name: 'bob', user: { token } }],
        contexts: [{ name: 'direct', context: { cluster: 'direct', user: 'bob' } }],
        'current-context': 'direct',
      }),
      { mode: 0o600 },
    );
    const who = await until('the apiserver OIDC authenticator', 30_000, async () => {
      const res = await kubectl(path, ['auth', 'whoami', '-o', 'json']);
      return res.code === 0 ? res.stdout : undefined;
    });
    expect((JSON.parse(who) as { status: { userInfo: { username: string } } }).status.userInfo.username).toBe(
      'bob',
    );
    // The same grant applies: the webhook answers for bob however he authenticated.
    expect((await kubectl(path, ['get', 'pods', '-n', 'e2e'])).code).toBe(0);
    expect((await kubectl(path, ['get', 'pods', '-n', 'default'])).stderr).toContain('Forbidden');
  }, 60_000);

  it("hands a manager's Kubernetes material to that manager's certificate only", async () => {
    const nodeDir = join(dataDir, 'node');
    const { nodeId } = JSON.parse(readFileSync(join(nodeDir, 'node.json'), 'utf8')) as { nodeId: string };
    const tls = {
      ca: readFileSync(join(nodeDir, 'ca.pem'), 'utf8'),
      cert: readFileSync(join(nodeDir, 'cert.pem'), 'utf8'),
      key: readFileSync(join(nodeDir, 'key.pem'), 'utf8'),
    };
    const get = (path: string, withCert: boolean) => httpsCall(url, path, withCert ? tls : { ca: tls.ca });
    const mine = await get(`/api/orca/v1/nodes/${nodeId}/kube`, true);
    expect(mine.status).toBe(200);
    const bundle = JSON.parse(mine.body.toString()) as { apiserverUrl: string; material: { caPem: string } };
    expect(bundle.material.caPem).toBe(tls.ca);
    // What the agent wrote is what the API gives.
    expect(readFileSync(join(nodeDir, 'kube', 'ca.pem'), 'utf8')).toBe(tls.ca);
    expect((await get(`/api/orca/v1/nodes/${nodeId}/kube`, false)).status).toBe(401);
    expect((await get('/api/orca/v1/nodes/someoneelse0000000000000/kube', true)).status).toBe(403);
    expect((await get('/api/orca/v1/nodes/bad..id/kube', true)).status).toBe(400);
    const admin401 = await httpsCall(url, `/api/orca/v1/nodes/${nodeId}/kube`, { auth: admin });
    expect(admin401.status).toBe(401);
  });

  it('brings a killed kube-apiserver back (drift repair), with its objects kept in ucp-kv', async () => {
    const before = componentPid('ucp-kube-apiserver');
    process.kill(before, 'SIGKILL');
    const after = await until('a new kube-apiserver', 30_000, async () => {
      const pid = componentPid('ucp-kube-apiserver');
      return pid !== before && alive(pid) ? pid : undefined;
    });
    expect(after).not.toBe(before);
    const configmap = await until('the apiserver answering again', 60_000, async () => {
      const res = await kubectl(kubeconfigs.admin, [
        'get',
        'configmap',
        'settings',
        '-n',
        'e2e',
        '-o',
        'json',
      ]);
      return res.code === 0 ? (JSON.parse(res.stdout) as { data: Record<string, string> }) : undefined;
    });
    expect(configmap.data).toEqual({ colour: 'blue' });
  }, 100_000);

  it('stops every component with Ctrl-C', async () => {
    const pids = [
      'ucp-kv',
      'ucp-kube-apiserver',
      'ucp-kube-controller-manager',
      'ucp-kube-scheduler',
      'ucp-kwok',
    ].map(componentPid);
    expect(pids.every(alive)).toBe(true);
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  }, 60_000);
});

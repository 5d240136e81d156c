// The Kubernetes front door, the authorization webhook and the admission webhook end to end: a
// controller in-process, a real kube-apiserver/controller-manager/scheduler/kwok configured as orca's
// reconciler configures a manager's (libs/testing startOrcaKube: Webhook authorizer, admission
// webhooks and OIDC pointing at that controller), and the installed kubectl with client bundles'
// kube.yml, UCP grants and OIDC ID tokens.
import { checkResponse } from '@orca/api';
import { Directory } from '@orca/identity';
import { createRootCa, CertificateAuthority, generateKeyPair } from '@orca/pki';
import {
  freePort,
  orcaIdToken,
  until,
  type KubeCluster,
  type KubectlResult,
  type OrcaKube,
} from '@orca/testing';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningController } from '../controller.js';
import { startControllerWithKube } from './test-kube.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  ca?: string;
  cert?: string;
  key?: string;
}

function call(url: string, opts: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const kubeconfigJson = (server: string, caPem: string, user: Record<string, string>) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'c', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } },
    ],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'c',
  });

// Both of orca's authorization modes: `webhook` (UCP 3.0: the webhook answers from the grants) and
// `rbac` (UCP 3.1: the grants are kept as RoleBindings/ClusterRoleBindings).
describe.each(['webhook', 'rbac'] as const)(
  'Kubernetes front door and webhooks (%s authorization)',
  (mode) => {
    let dir: string;
    let controller: RunningController | undefined;
    let cluster: KubeCluster | undefined;
    let orca: OrcaKube<RunningController> | undefined;
    let kubePort: number;
    let clusterCaPem: string;
    let webhookClient: { cert: string; key: string };
    let podServer: Server | undefined;
    const users: Record<string, string> = {};
    const kubeconfigs: Record<string, string> = {};
    const ADMIN = `Basic ${Buffer.from('admin:orca-admin-pass').toString('base64')}`;

    const kube = (): KubeCluster => {
      if (!cluster) throw new Error('cluster did not start');
      return cluster;
    };
    const ctl = (who: string, args: string[], input?: string): Promise<KubectlResult> =>
      kube().kubectl(args, { kubeconfig: kubeconfigs[who], input, timeoutMs: 30_000 });
    const api = (method: string, path: string, body?: unknown) =>
      call(`${controller!.url}${path}`, {
        method,
        ca: clusterCaPem,
        headers: { authorization: ADMIN, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    /** A client bundle made through the UCP API; its kube.yml used exactly as downloaded. */
    async function bundleFor(name: string, password: string): Promise<void> {
      kubeconfigs[name] = await orca!.bundleKubeconfig(name, password);
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'orca-kube-'));
      // kwok plays the kubelet for logs, exec and port-forward: a log file, local commands, and a
      // local HTTP server standing in for the pod's port 80.
      // The CRI log format kubelets keep (what kwok reads): time, stream, tag, line.
      const logsFile = join(dir, 'pod.log');
      writeFileSync(
        logsFile,
        '2026-01-01T00:00:00.000000000Z stdout F line one from kwok\n' +
          '2026-01-01T00:00:01.000000000Z stdout F line two from kwok\n',
      );
      podServer = createServer((_req, res) => res.end('pong from the pod'));
      await new Promise<void>((resolve) => podServer!.listen(0, '127.0.0.1', resolve));
      const podPort = (podServer.address() as AddressInfo).port;
      const kwokConfig = [
        'apiVersion: kwok.x-k8s.io/v1alpha1',
        'kind: ClusterLogs',
        'metadata: {name: logs}',
        `spec: {logs: [{logsFile: ${JSON.stringify(logsFile)}, follow: true}]}`,
        '---',
        'apiVersion: kwok.x-k8s.io/v1alpha1',
        'kind: ClusterExec',
        'metadata: {name: exec}',
        `spec: {execs: [{local: {workDir: ${JSON.stringify(dir)}}}]}`,
        '---',
        'apiVersion: kwok.x-k8s.io/v1alpha1',
        'kind: ClusterPortForward',
        'metadata: {name: port-forward}',
        `spec: {forwards: [{target: {port: ${podPort}, address: 127.0.0.1}}]}`,
      ].join('\n');

      orca = await startControllerWithKube(
        dir,
        { ORCA_KUBE_AUTHORIZATION: mode },
        { kwokServer: true, kwokConfig },
      );
      controller = orca.controller;
      cluster = orca.cluster;
      clusterCaPem = orca.clusterCaPem;
      webhookClient = orca.webhookClient;
      kubePort = Number(new URL(orca.frontDoor).port);

      const directory = new Directory(orca.controller.store);
      for (const name of ['bob', 'carol', 'dave', 'erin']) {
        const account = await directory.create({ name, password: `${name}-password` });
        users[name] = account.id;
      }
      await directory.create({ name: 'eng', isOrg: true });
      await directory.setOrgMember('eng', 'carol', {});
      const team = await directory.createTeam('eng', { name: 'dev' });
      await directory.setTeamMember('eng', 'dev', 'carol', {});
      users['eng:dev'] = team.id;
      await bundleFor('admin', 'orca-admin-pass');
      for (const name of ['bob', 'carol', 'dave', 'erin']) await bundleFor(name, `${name}-password`);
    }, 150_000);

    afterAll(async () => {
      await orca?.stop();
      podServer?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('points the bundle kube.yml at the front door; kubectl with the admin bundle sees the kwok node', async () => {
      const yml = readFileSync(kubeconfigs.admin, 'utf8');
      expect(yml).toContain(`server: https://127.0.0.1:${kubePort}`);
      expect(yml).toContain(`ucp_127.0.0.1:${kubePort}_admin`);
      const nodes = await ctl('admin', ['get', 'nodes', '--no-headers']);
      expect(nodes.stderr).toBe('');
      expect(nodes.stdout).toMatch(/^kwok-node-0\s+Ready/m);
      const whoami = await ctl('admin', ['auth', 'whoami', '-o', 'json']);
      const info = JSON.parse(whoami.stdout).status.userInfo;
      expect(info.username).toBe('admin');
      expect(info.groups).toEqual(expect.arrayContaining(['system:authenticated', 'system:masters']));
    });

    it('admin: creates namespaces, a deployment whose pods reach Running, and applies a manifest', async () => {
      for (const ns of ['ns-a', 'ns-b'])
        expect((await ctl('admin', ['create', 'namespace', ns])).code).toBe(0);
      const created = await ctl('admin', [
        'create',
        'deployment',
        'web',
        '-n',
        'ns-a',
        '--image=registry.invalid/nginx:1',
        '--replicas=2',
      ]);
      expect(created.stderr).toBe('');
      const rollout = await kube().kubectl(
        ['rollout', 'status', 'deployment/web', '-n', 'ns-a', '--timeout=60s'],
        {
          kubeconfig: kubeconfigs.admin,
          timeoutMs: 70_000,
        },
      );
      expect(rollout.code).toBe(0);
      const pods = JSON.parse((await ctl('admin', ['get', 'pods', '-n', 'ns-a', '-o', 'json'])).stdout) as {
        items: { status: { phase: string } }[];
      };
      expect(pods.items.map((p) => p.status.phase)).toEqual(['Running', 'Running']);

      const manifest = [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: settings, namespace: ns-b}',
        'data: {colour: blue}',
        '---',
        'apiVersion: v1',
        'kind: Service',
        'metadata: {name: web, namespace: ns-a}',
        'spec: {selector: {app: web}, ports: [{port: 80}]}',
        '',
      ].join('\n');
      const applied = await ctl('admin', ['apply', '-f', '-'], manifest);
      expect(applied.stdout).toContain('configmap/settings created');
      expect(applied.stdout).toContain('service/web created');
      const again = await ctl('admin', ['apply', '-f', '-'], manifest);
      expect(again.stdout).toContain('configmap/settings unchanged');
    });

    it('admin: logs (also -f), exec and port-forward pass through the front door', async () => {
      const pod = (await ctl('admin', ['get', 'pods', '-n', 'ns-a', '-o', 'name'])).stdout.split('\n')[0];
      expect(pod).toMatch(/^pod\/web-/);
      const logs = await ctl('admin', ['logs', '-n', 'ns-a', pod]);
      expect(logs.stderr).toBe('');
      expect(logs.stdout).toBe('line one from kwok\nline two from kwok\n');
      // Following: the stream stays open; what arrived before the kill is what matters.
      const followed = await kube().kubectl(['logs', '-f', '-n', 'ns-a', pod], {
        kubeconfig: kubeconfigs.admin,
        timeoutMs: 3_000,
      });
      expect(followed.stdout).toContain('line two from kwok');

      const exec = await ctl('admin', ['exec', '-n', 'ns-a', pod, '--', 'sh', '-c', 'echo exec-ok; pwd']);
      expect(exec.stderr).toBe('');
      expect(exec.stdout).toBe(`exec-ok\n${dir}\n`);
      // The same over SPDY (kubectl's WebSocket default turned off).
      const spdy = (kubeconfig: string, args: string[], input?: string, timeoutMs = 15_000) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], {
            env: { ...process.env, KUBECONFIG: '', KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
          });
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr.on('data', (d: Buffer) => (out += d.toString()));
          child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, out });
          });
          child.stdin.end(input ?? '');
        });
      expect(
        await spdy(kubeconfigs.admin, ['exec', '-n', 'ns-a', pod, '--', 'echo', 'through spdy']),
      ).toEqual({
        code: 0,
        out: 'through spdy\n',
      });
      // stdin flows too (kwok's local exec does not end `cat` when stdin closes, directly either:
      // the command is killed after the timeout, what it echoed is what counts).
      const interactive = await spdy(
        kubeconfigs.admin,
        ['exec', '-i', '-n', 'ns-a', pod, '--', 'cat'],
        'typed\n',
        3_000,
      );
      expect(interactive.out).toBe('typed\n');

      const localPort = await freePort();
      const forward = spawn(
        'kubectl',
        [`--kubeconfig=${kubeconfigs.admin}`, 'port-forward', '-n', 'ns-a', pod, `${localPort}:80`],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
      );
      try {
        let out = '';
        forward.stdout.on('data', (d: Buffer) => (out += d.toString()));
        forward.stderr.on('data', (d: Buffer) => (out += d.toString()));
        await until('port-forward listening', 15_000, async () =>
          out.includes('Forwarding from') ? true : undefined,
        );
        const body = await new Promise<string>((resolve, reject) => {
          httpGet(`http://127.0.0.1:${localPort}/`, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve(text));
          }).on('error', reject);
        });
        expect(body).toBe('pong from the pod');
      } finally {
        forward.kill('SIGKILL');
      }
    });

    it('streams a watch through the front door', async () => {
      const yml = readFileSync(kubeconfigs.admin, 'utf8');
      const data = (key: string) =>
        Buffer.from(new RegExp(`${key}: (\\S+)`).exec(yml)![1], 'base64').toString();
      const events: string[] = [];
      const req = request(`https://127.0.0.1:${kubePort}/api/v1/namespaces/ns-b/configmaps?watch=true`, {
        ca: data('certificate-authority-data'),
        cert: data('client-certificate-data'),
        key: data('client-key-data'),
      });
      const opened = new Promise<void>((resolve) =>
        req.on('response', (res) => {
          res.on('data', (c: Buffer) => events.push(c.toString()));
          resolve();
        }),
      );
      req.end();
      await opened;
      await ctl('admin', ['create', 'configmap', 'watched', '-n', 'ns-b', '--from-literal=a=b']);
      await until('the ADDED event', 10_000, async () =>
        events.join('').includes('"watched"') ? true : undefined,
      );
      req.destroy();
    });

    describe('UCP grants on namespaces', () => {
      beforeAll(async () => {
        const role = await api('POST', '/roles', {
          name: 'pod-writer',
          operations: {
            'Kubernetes Pod': {
              'Kubernetes Pod Get': [],
              'Kubernetes Pod List': [],
              'Kubernetes Pod Create': [],
              'Kubernetes Pod Delete': [],
            },
            'Kubernetes Deployment': { 'Kubernetes Deployment Create': [], 'Kubernetes Deployment Get': [] },
          },
        });
        expect(role.status).toBe(201);
        const podWriter = (JSON.parse(role.body) as { id: string }).id;
        const grant = async (subject: string, object: string, roleId: string, type: string) =>
          expect(
            (
              await api(
                'PUT',
                `/collectionGrants/${encodeURIComponent(subject)}/${object}/${roleId}?type=${type}`,
              )
            ).status,
          ).toBe(201);
        await grant(users.bob, 'ns-a', 'fullcontrol', 'namespace');
        await grant(users.bob, 'ns-b', 'viewonly', 'namespace');
        await grant(users.bob, 'ns-b', podWriter, 'namespace');
        await grant(users['eng:dev'], 'ns-b', podWriter, 'namespace');
        await grant(users.dave, 'kubernetesnamespaces', 'viewonly', 'grantobject');
        // The RBAC mode's reconcile loop catches up within a pass or two.
        await until('the grants in effect', 20_000, async () =>
          (await canI('carol', 'list', 'pods', 'ns-b')) === 'yes' &&
          (await canI('dave', 'list', 'nodes')) === 'yes' &&
          (await canI('bob', 'create', 'deployments', 'ns-b')) === 'yes'
            ? true
            : undefined,
        );
      });

      const canI = async (who: string, verb: string, resource: string, ns?: string) => {
        const r = await ctl(who, ['auth', 'can-i', verb, resource, ...(ns ? ['-n', ns] : [])]);
        // "yes", or "no - <the webhook's reason>"
        return r.stdout.trim().split(' ')[0];
      };

      it('kubectl auth can-i answers from the grants', async () => {
        const matrix: [string, string, string, string | undefined, 'yes' | 'no'][] = [
          ['bob', 'create', 'configmaps', 'ns-a', 'yes'], // Full Control on ns-a
          ['bob', 'delete', 'deployments', 'ns-a', 'yes'],
          ['bob', 'create', 'configmaps', 'ns-b', 'no'], // View Only + pod-writer on ns-b
          ['bob', 'get', 'configmaps', 'ns-b', 'yes'],
          ['bob', 'create', 'pods', 'ns-b', 'yes'],
          ['bob', 'get', 'pods', 'default', 'no'],
          ['bob', 'list', 'nodes', undefined, 'no'], // cluster-scoped: all-namespaces grants only
          ['carol', 'list', 'pods', 'ns-b', 'yes'], // through team eng:dev
          ['carol', 'get', 'configmaps', 'ns-b', 'no'],
          ['carol', 'list', 'pods', 'ns-a', 'no'],
          ['dave', 'list', 'pods', 'ns-a', 'yes'], // View Only on all namespaces
          ['dave', 'list', 'nodes', undefined, 'yes'],
          ['dave', 'delete', 'pods', 'ns-b', 'no'],
          ['erin', 'get', 'pods', 'ns-a', 'no'], // no grants at all
          ['admin', 'delete', 'nodes', undefined, 'yes'],
        ];
        const answers = [];
        for (const [who, verb, resource, ns] of matrix) answers.push(await canI(who, verb, resource, ns));
        expect(answers).toEqual(matrix.map((row) => row[4]));
      });

      it('real calls are allowed or refused as the grants say', async () => {
        const made = await ctl('bob', ['create', 'configmap', 'bobs', '-n', 'ns-a', '--from-literal=x=y']);
        expect(made.stdout).toContain('configmap/bobs created');
        expect((await ctl('bob', ['get', 'configmap', 'bobs', '-n', 'ns-a'])).code).toBe(0);
        expect((await ctl('bob', ['delete', 'configmap', 'bobs', '-n', 'ns-a'])).code).toBe(0);

        const refused = await ctl('bob', ['create', 'configmap', 'nope', '-n', 'ns-b', '--from-literal=x=y']);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/forbidden: User "bob" cannot create resource "configmaps"/);
        expect((await ctl('bob', ['get', 'configmap', 'settings', '-n', 'ns-b'])).code).toBe(0);

        expect((await ctl('carol', ['get', 'pods', '-n', 'ns-b'])).code).toBe(0);
        expect((await ctl('carol', ['get', 'pods', '-n', 'ns-a'])).stderr).toMatch(/forbidden/);
        const all = await ctl('dave', ['get', 'pods', '--all-namespaces', '--no-headers']);
        expect(all.stdout).toMatch(/^ns-a\s+web-/m);
        expect((await ctl('dave', ['delete', 'deployment', 'web', '-n', 'ns-a'])).stderr).toMatch(
          /forbidden/,
        );
        expect((await ctl('erin', ['get', 'pods', '-n', 'ns-a'])).stderr).toMatch(/forbidden/);
      });

      it('GET /kubernetesNamespaces lists the namespaces a user has a grant for', async () => {
        const names = async (who: string, password: string) => {
          const reply = await call(`${controller!.url}/kubernetesNamespaces`, {
            ca: clusterCaPem,
            headers: { authorization: `Basic ${Buffer.from(`${who}:${password}`).toString('base64')}` },
          });
          expect(reply.status).toBe(200);
          const list = JSON.parse(reply.body) as { kind: string; items: { metadata: { name: string } }[] };
          expect(list.kind).toBe('NamespaceList');
          expect(checkResponse('ucp-3.0', 'get', '/kubernetesNamespaces', 200, list)).toEqual([]);
          return list.items.map((i) => i.metadata.name).sort();
        };
        expect(await names('bob', 'bob-password')).toEqual(['ns-a', 'ns-b']);
        expect(await names('carol', 'carol-password')).toEqual(['ns-b']);
        expect(await names('erin', 'erin-password')).toEqual([]);
        expect(await names('dave', 'dave-password')).toEqual(
          expect.arrayContaining(['default', 'ns-a', 'ns-b']),
        );
      });

      it('refuses privileged pods and other service accounts to non-admins without Full Control', async () => {
        const pod = (name: string, ns: string, spec: Record<string, unknown>) =>
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: ns },
            spec: { containers: [{ name: 'c', image: 'registry.invalid/busybox:1', ...spec }] },
          });
        const privileged = { securityContext: { privileged: true } };
        const refused = await ctl('bob', ['create', '-f', '-'], pod('priv', 'ns-b', privileged));
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain(
          'user "bob" is not an admin and does not have permissions to use privileged for resource priv',
        );
        const plain = await ctl('bob', ['create', '-f', '-'], pod('plain', 'ns-b', {}));
        expect(plain.stdout).toContain('pod/plain created');
        // Full Control on ns-a: allowed there.
        expect((await ctl('bob', ['create', '-f', '-'], pod('priv', 'ns-a', privileged))).stdout).toContain(
          'pod/priv created',
        );
        const hostNet = JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'hostnet', namespace: 'ns-b' },
          spec: {
            selector: { matchLabels: { app: 'h' } },
            template: {
              metadata: { labels: { app: 'h' } },
              spec: { hostNetwork: true, containers: [{ name: 'c', image: 'registry.invalid/x:1' }] },
            },
          },
        });
        // Pod templates too: bob may create deployments in ns-b, but not with host networking.
        const hostNetRefused = await ctl('bob', ['create', '-f', '-'], hostNet);
        expect(hostNetRefused.stderr).toContain(
          'user "bob" is not an admin and does not have permissions to use hostNetwork for resource hostnet',
        );
        expect((await ctl('admin', ['create', '-f', '-'], hostNet)).stdout).toContain(
          'deployment.apps/hostnet created',
        );
        const otherSa = JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'sa', namespace: 'ns-a' },
          spec: { serviceAccountName: 'builder', containers: [{ name: 'c', image: 'registry.invalid/x:1' }] },
        });
        await ctl('admin', ['create', 'serviceaccount', 'builder', '-n', 'ns-a']);
        const sa = await ctl('bob', ['create', '-f', '-'], otherSa);
        expect(sa.stderr).toContain(
          'only docker EE admin users are permitted to use service accounts other than `default`',
        );
      });

      it('service accounts are grant subjects', async () => {
        await ctl('admin', ['create', 'serviceaccount', 'robot', '-n', 'ns-a']);
        const asRobot = ['--as=system:serviceaccount:ns-a:robot'];
        // The admin impersonates directly against the apiserver.
        const direct = (args: string[]) => kube().kubectl([...asRobot, ...args]);
        expect((await direct(['auth', 'can-i', 'list', 'pods', '-n', 'ns-a'])).stdout).toMatch(/^no/);
        expect(
          (
            await api(
              'PUT',
              `/collectionGrants/${encodeURIComponent('system:serviceaccount:ns-a:robot')}/ns-a/viewonly?type=namespace`,
            )
          ).status,
        ).toBe(201);
        await until('the service account grant in effect', 20_000, async () =>
          (await direct(['auth', 'can-i', 'list', 'pods', '-n', 'ns-a'])).stdout.trim() === 'yes'
            ? true
            : undefined,
        );
        expect((await direct(['auth', 'can-i', 'list', 'pods', '-n', 'ns-b'])).stdout).toMatch(/^no/);
      });

      const rbacOnly = mode === 'rbac' ? it : it.skip;

      rbacOnly(
        'keeps grants as RoleBindings and ClusterRoleBindings, repairs drift, follows removals',
        async () => {
          const managed = async (kind: string, ns?: string) => {
            const r = await kube().request(
              'GET',
              `/apis/rbac.authorization.k8s.io/v1/${ns ? `namespaces/${ns}/` : ''}${kind}?labelSelector=orca.docker.com%2Fmanaged%3Dtrue`,
            );
            return (JSON.parse(r.body) as { items: Binding[] }).items;
          };
          interface Binding {
            metadata: { name: string; namespace?: string };
            roleRef: { name: string };
            subjects: { kind: string; name: string; namespace?: string }[];
          }
          const bindingsA = await managed('rolebindings', 'ns-a');
          const bobFull = bindingsA.find((b) => b.roleRef.name === 'ucp:role:fullcontrol')!;
          expect(bobFull.subjects).toEqual([
            { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'bob' },
          ]);
          const bindingsB = await managed('rolebindings', 'ns-b');
          expect(bindingsB.flatMap((b) => b.subjects.map((s) => `${s.kind}:${s.name}`)).sort()).toEqual(
            ['Group:eng:dev', 'User:bob', 'User:bob'].sort(),
          );
          const cluster = await managed('clusterrolebindings');
          expect(cluster.map((b) => [b.roleRef.name, b.subjects[0].name])).toEqual([
            ['ucp:role:viewonly', 'dave'],
          ]);
          const roles = (await managed('clusterroles')).map((r) => r.metadata.name).sort();
          expect(roles).toEqual(expect.arrayContaining(['ucp:role:fullcontrol', 'ucp:role:viewonly']));

          // Drift: someone deletes bob's binding and rewrites carol's team binding; both come back.
          const path = `/apis/rbac.authorization.k8s.io/v1/namespaces/ns-a/rolebindings/${encodeURIComponent(bobFull.metadata.name)}`;
          expect((await kube().request('DELETE', path)).status).toBe(200);
          expect(await canI('bob', 'create', 'configmaps', 'ns-a')).toBe('no');
          await until('the deleted RoleBinding recreated', 20_000, async () =>
            (await canI('bob', 'create', 'configmaps', 'ns-a')) === 'yes' ? true : undefined,
          );
          const team = bindingsB.find((b) => b.subjects[0].kind === 'Group')!;
          const teamPath = `/apis/rbac.authorization.k8s.io/v1/namespaces/ns-b/rolebindings/${encodeURIComponent(team.metadata.name)}`;
          const edited = {
            ...team,
            subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'erin' }],
          };
          expect((await kube().request('PUT', teamPath, edited)).status).toBe(200);
          await until('the edited RoleBinding restored', 20_000, async () => {
            const now = JSON.parse((await kube().request('GET', teamPath)).body) as Binding;
            return now.subjects[0].name === 'eng:dev' ? true : undefined;
          });
          expect(await canI('erin', 'list', 'pods', 'ns-b')).toBe('no');

          // Removing a grant removes its binding, and the access with it.
          expect(
            (await api('DELETE', `/collectionGrants/${users.dave}/kubernetesnamespaces/viewonly`)).status,
          ).toBe(204);
          await until('the ClusterRoleBinding removed', 20_000, async () =>
            (await managed('clusterrolebindings')).length === 0 ? true : undefined,
          );
          expect(await canI('dave', 'list', 'pods', 'ns-a')).toBe('no');
        },
      );

      rbacOnly('POST /api/authz/resolve-rbac-subjects turns names into UCP ids', async () => {
        const reply = await api('POST', '/api/authz/resolve-rbac-subjects', [
          { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'carol' },
          { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'eng:dev' },
          { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'eng' },
          { kind: 'ServiceAccount', name: 'robot', namespace: 'ns-a' },
          { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'nobody' },
        ]);
        expect(reply.status).toBe(200);
        const eng = await new Directory(controller!.store).record('eng');
        expect(JSON.parse(reply.body)).toEqual({
          subjects: [
            { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: users.carol },
            {
              kind: 'Group',
              apiGroup: 'rbac.authorization.k8s.io',
              name: `team:${eng.id}:${users['eng:dev']}`,
            },
            { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `org:${eng.id}` },
            { kind: 'ServiceAccount', name: 'robot', namespace: 'ns-a' },
          ],
          errors: ['user "nobody" not found'],
        });
        expect((await api('POST', '/api/authz/resolve-rbac-subjects', { not: 'a list' })).status).toBe(400);
        const asBob = await call(`${controller!.url}/api/authz/resolve-rbac-subjects`, {
          method: 'POST',
          ca: clusterCaPem,
          headers: { authorization: `Basic ${Buffer.from('bob:bob-password').toString('base64')}` },
          body: '[]',
        });
        expect(asBob.status).toBe(403);
      });
    });

    describe('OpenID Connect ID tokens', () => {
      let carolToken: string;
      const frontDoor = () => `https://127.0.0.1:${kubePort}`;
      const idTokenFor = (username: string, password: string) =>
        orcaIdToken(`${controller!.url}/oidc`, clusterCaPem, username, password);

      beforeAll(async () => {
        carolToken = await idTokenFor('carol', 'carol-password');
      });

      const tokenKubeconfig = (name: string, server: string, caPem: string, token: string) => {
        const path = join(dir, `${name}.kubeconfig`);
        writeFileSync(path, kubeconfigJson(server, caPem, { token }));
        return path;
      };

      it('kubectl --token through the front door: the right user and groups, grants apply', async () => {
        const path = tokenKubeconfig('carol-oidc', frontDoor(), clusterCaPem, carolToken);
        const who = await kube().kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: path });
        const info = JSON.parse(who.stdout).status.userInfo;
        expect(info.username).toBe('carol');
        expect(info.groups).toEqual(['eng:dev', 'system:authenticated']);
        expect((await kube().kubectl(['get', 'pods', '-n', 'ns-b'], { kubeconfig: path })).code).toBe(0);
        expect((await kube().kubectl(['get', 'pods', '-n', 'ns-a'], { kubeconfig: path })).stderr).toMatch(
          /forbidden/,
        );
      });

      it('the apiserver itself accepts the ID token (--oidc-* pointing at orca)', async () => {
        const path = tokenKubeconfig('carol-direct', kube().server, kube().ca.certPem, carolToken);
        const who = await until('the apiserver OIDC authenticator', 30_000, async () => {
          const r = await kube().kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: path });
          return r.code === 0 ? r : undefined;
        });
        const info = JSON.parse(who.stdout).status.userInfo;
        expect(info.username).toBe('carol');
        expect(info.groups).toEqual(expect.arrayContaining(['eng:dev', 'system:authenticated']));
        expect((await kube().kubectl(['get', 'pods', '-n', 'ns-b'], { kubeconfig: path })).code).toBe(0);
      });

      it('refuses the ID token of an account deactivated since it was issued', async () => {
        await new Directory(controller!.store).create({ name: 'frank', password: 'frank-password' });
        const token = await idTokenFor('frank', 'frank-password');
        const path = tokenKubeconfig('frank-oidc', frontDoor(), clusterCaPem, token);
        expect((await kube().kubectl(['auth', 'whoami'], { kubeconfig: path })).code).toBe(0);
        expect((await api('PATCH', '/accounts/frank', { isActive: false })).status).toBe(200);
        const refused = await kube().kubectl(['auth', 'whoami'], { kubeconfig: path });
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/Unauthorized/);
      });

      it('refuses a token with a bad signature or from a foreign issuer', async () => {
        const [header, payload, signature] = carolToken.split('.');
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
        const tampered = Buffer.from(JSON.stringify({ ...claims, preferred_username: 'admin' })).toString(
          'base64url',
        );
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        const foreignPayload = Buffer.from(
          JSON.stringify({ ...claims, iss: 'https://evil.example/oidc' }),
        ).toString('base64url');
        const foreign = `${header}.${foreignPayload}.${sign('RSA-SHA256', Buffer.from(`${header}.${foreignPayload}`), privateKey).toString('base64url')}`;
        for (const token of [`${header}.${tampered}.${signature}`, foreign]) {
          // Neither the front door nor the apiserver's own OIDC authenticator takes them.
          for (const [server, ca] of [
            [frontDoor(), clusterCaPem],
            [kube().server, kube().ca.certPem],
          ]) {
            const path = tokenKubeconfig('bad', server, ca, token);
            const r = await kube().kubectl(['get', 'pods', '-n', 'ns-b'], { kubeconfig: path });
            expect(r.code).not.toBe(0);
            expect(r.stderr).toMatch(/Unauthorized/);
          }
        }
      });
    });

    describe('refusals', () => {
      it('answers an unauthenticated request with 401 in Kubernetes Status JSON', async () => {
        const reply = await call(`https://127.0.0.1:${kubePort}/api/v1/namespaces`, { ca: clusterCaPem });
        expect(reply.status).toBe(401);
        expect(JSON.parse(reply.body)).toMatchObject({
          kind: 'Status',
          status: 'Failure',
          code: 401,
          reason: 'Unauthorized',
        });
      });

      it('sends every request to the apiserver: a path naming another host is refused', async () => {
        const yml = readFileSync(kubeconfigs.admin, 'utf8');
        const data = (key: string) =>
          Buffer.from(new RegExp(`${key}: (\\S+)`).exec(yml)![1], 'base64').toString();
        const reply = await new Promise<Reply>((resolve, reject) => {
          const req = request(
            {
              hostname: '127.0.0.1',
              port: kubePort,
              path: '//127.0.0.1:1/api',
              ca: clusterCaPem,
              cert: data('client-certificate-data'),
              key: data('client-key-data'),
              checkServerIdentity: () => undefined,
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
            },
          );
          req.on('error', reject);
          req.end();
        });
        expect(reply.status).toBe(400);
        expect(JSON.parse(reply.body)).toMatchObject({ kind: 'Status', code: 400 });
      });

      it('strips identity headers clients send', async () => {
        const yml = readFileSync(kubeconfigs.erin, 'utf8');
        const data = (key: string) =>
          Buffer.from(new RegExp(`${key}: (\\S+)`).exec(yml)![1], 'base64').toString();
        const reply = await call(
          `https://127.0.0.1:${kubePort}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
          {
            method: 'POST',
            ca: clusterCaPem,
            cert: data('client-certificate-data'),
            key: data('client-key-data'),
            headers: {
              'content-type': 'application/json',
              'X-Remote-User': 'admin',
              'X-Remote-Group': 'system:masters',
            },
            body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
          },
        );
        expect(reply.status).toBe(201);
        expect(JSON.parse(reply.body).status.userInfo).toEqual({
          username: 'erin',
          groups: ['system:authenticated'],
        });
      });

      it('refuses forged and foreign client certificates, and revoked bundles', async () => {
        // A certificate for "admin" from a CA orca does not know.
        const foreignCa = new CertificateAuthority(await createRootCa({ commonName: 'UCP Client Root CA' }));
        const keys = await generateKeyPair();
        const forged = await foreignCa.issueClientCertificate({
          publicKeyPem: keys.publicKeyPem,
          commonName: 'admin',
          instanceId: 'forged',
        });
        const reply = await call(`https://127.0.0.1:${kubePort}/api/v1/nodes`, {
          ca: clusterCaPem,
          cert: forged.certPem,
          key: keys.privateKeyPem,
        });
        expect(reply.status).toBe(401);
        // Revoked: bob's bundle stops working once its public key is deleted.
        expect((await ctl('bob', ['get', 'pods', '-n', 'ns-a'])).code).toBe(0);
        const keysList = JSON.parse((await api('GET', '/accounts/bob/publicKeys')).body) as {
          accountPublicKeys: { id: string }[];
        };
        for (const k of keysList.accountPublicKeys)
          expect((await api('DELETE', `/accounts/bob/publicKeys/${k.id}`)).status).toBe(204);
        const revoked = await ctl('bob', ['get', 'pods', '-n', 'ns-a']);
        expect(revoked.code).not.toBe(0);
        expect(revoked.stderr).toMatch(/Unauthorized/);
      });

      it('answers malformed SubjectAccessReview and AdmissionReview bodies with 400, strangers with 401', async () => {
        const post = (path: string, body: string, withCert = true) =>
          call(`${controller!.url}${path}`, {
            method: 'POST',
            ca: clusterCaPem,
            ...(withCert ? webhookClient : {}),
            headers: { 'content-type': 'application/json' },
            body,
          });
        for (const path of ['/kube/webhooks/authorize', '/kube/webhooks/admit']) {
          for (const body of [
            'not json',
            '[]',
            '{}',
            '{"kind":"SubjectAccessReview"}',
            'null',
            '{"apiVersion":"x"}',
          ]) {
            const reply = await post(path, body);
            expect([path, body, reply.status]).toEqual([path, body, 400]);
            expect(JSON.parse(reply.body)).toMatchObject({ kind: 'Status', code: 400 });
          }
          expect((await post(path, '{}', false)).status).toBe(401);
        }
        const badSpec = await post(
          '/kube/webhooks/authorize',
          JSON.stringify({
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: { user: 7 },
          }),
        );
        expect(badSpec.status).toBe(400);
        const noUid = await post(
          '/kube/webhooks/admit',
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            request: { object: {} },
          }),
        );
        expect(noUid.status).toBe(400);
        const good = await post(
          '/kube/webhooks/authorize',
          JSON.stringify({
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: 'dave',
              groups: [],
              resourceAttributes: { verb: 'list', resource: 'pods', namespace: 'x' },
            },
          }),
        );
        // In the RBAC mode grants are RoleBindings: the webhook speaks for administrators only.
        expect(JSON.parse(good.body)).toMatchObject({
          kind: 'SubjectAccessReview',
          status: { allowed: mode === 'webhook' },
        });
      });
    });
  },
);

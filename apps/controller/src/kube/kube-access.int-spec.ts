// The 6443 front door beyond orca's own credentials, with a real kube-apiserver (webhook
// authorization pointing at an in-process controller) and the installed kubectl: service-account
// tokens (checked by the apiserver's TokenReview, authorized by UCP grants), `--as`/`--as-group`
// impersonation (the apiserver asks the authorizers), and audit records for every state-changing
// request through the front door.
import { Directory } from '@orca/identity';
import { until, type KubeCluster, type KubectlResult, type OrcaKube } from '@orca/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningController } from '../controller.js';
import { startControllerWithKube } from './test-kube.js';

interface Reply {
  status: number;
  body: string;
}

function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ca: opts.ca,
        checkServerIdentity: () => undefined,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

interface AuditEntry {
  subject: string;
  method: string;
  path: string;
  operation?: string;
  resource?: string;
  decision?: string;
  reason?: string;
  status: number;
  outcome: string;
}

// Both authorization modes: the webhook answering from grants (3.0), grants as RoleBindings (3.1).
describe.each(['webhook', 'rbac'] as const)(
  'Kubernetes front door (%s authorization): service-account tokens, impersonation, audit',
  (mode) => {
    let dir: string;
    let controller: RunningController | undefined;
    let cluster: KubeCluster | undefined;
    let orca: OrcaKube<RunningController> | undefined;
    let kubePort: number;
    let clusterCaPem: string;
    const kubeconfigs: Record<string, string> = {};
    const users: Record<string, string> = {};
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
    const frontDoor = () => `https://127.0.0.1:${kubePort}`;
    /** A kubeconfig with only a bearer token, for the front door (or the apiserver itself). */
    const tokenKubeconfig = (name: string, token: string, direct = false) => {
      const path = join(dir, `${name}.kubeconfig`);
      const server = direct ? kube().server : frontDoor();
      const ca = direct ? kube().ca.certPem : clusterCaPem;
      writeFileSync(
        path,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'c',
              cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') },
            },
          ],
          users: [{ name: 'u', user: { token } }],
          contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'c',
        }),
      );
      return path;
    };
    const withToken = (token: string, args: string[], direct = false) =>
      kube().kubectl(args, {
        kubeconfig: tokenKubeconfig(direct ? 'direct' : 'token', token, direct),
        timeoutMs: 30_000,
      });
    const grant = async (subject: string, object: string, role: string, type: string) =>
      expect(
        (await api('PUT', `/collectionGrants/${encodeURIComponent(subject)}/${object}/${role}?type=${type}`))
          .status,
      ).toBe(201);

    async function bundleFor(name: string, password: string): Promise<void> {
      kubeconfigs[name] = await orca!.bundleKubeconfig(name, password);
    }

    /** Audit entries (newest first) whose path contains `fragment`. */
    const auditEntries = async (fragment: string): Promise<AuditEntry[]> => {
      const reply = await api('GET', '/api/ucp/audit?limit=1000');
      expect(reply.status).toBe(200);
      return (JSON.parse(reply.body) as { entries: AuditEntry[] }).entries.filter((e) =>
        e.path.includes(fragment),
      );
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'orca-kube-access-'));
      orca = await startControllerWithKube(
        dir,
        { ORCA_KUBE_AUTHORIZATION: mode },
        {
          // kwok runs `kubectl exec` commands locally (in the test's directory).
          kwokServer: true,
          kwokConfig: [
            'apiVersion: kwok.x-k8s.io/v1alpha1',
            'kind: ClusterExec',
            'metadata: {name: exec}',
            `spec: {execs: [{local: {workDir: ${JSON.stringify(dir)}}}]}`,
          ].join('\n'),
        },
      );
      controller = orca.controller;
      cluster = orca.cluster;
      clusterCaPem = orca.clusterCaPem;
      kubePort = Number(new URL(orca.frontDoor).port);

      const directory = new Directory(orca.controller.store);
      users.bob = (await directory.create({ name: 'bob', password: 'bob-password' })).id;
      await bundleFor('admin', 'orca-admin-pass');
      await bundleFor('bob', 'bob-password');
      await until('the front door reaching the apiserver', 30_000, async () =>
        (await ctl('admin', ['create', 'namespace', 'apps'])).code === 0 ? true : undefined,
      );
      expect((await ctl('admin', ['create', 'serviceaccount', 'robot', '-n', 'apps'])).code).toBe(0);
    }, 150_000);

    afterAll(async () => {
      await orca?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    describe('service-account tokens', () => {
      let token: string;

      beforeAll(async () => {
        // `kubectl create token` through the front door, as the admin.
        const created = await ctl('admin', ['create', 'token', 'robot', '-n', 'apps']);
        expect(created.stderr).toBe('');
        token = created.stdout.trim();
      });

      it('is the same user through the front door as against the apiserver', async () => {
        const through = await withToken(token, ['auth', 'whoami', '-o', 'json']);
        expect(through.stderr).toBe('');
        const direct = await withToken(token, ['auth', 'whoami', '-o', 'json'], true);
        const info = JSON.parse(through.stdout).status.userInfo;
        expect(info.username).toBe('system:serviceaccount:apps:robot');
        expect(info.groups).toEqual(
          expect.arrayContaining([
            'system:serviceaccounts',
            'system:serviceaccounts:apps',
            'system:authenticated',
          ]),
        );
        // Extras (the token's credential id) included: exactly what the apiserver says on its own.
        expect(info).toEqual(JSON.parse(direct.stdout).status.userInfo);
      });

      it('is authorized by UCP grants on the subject system:serviceaccount:<ns>:<name>', async () => {
        const refused = await withToken(token, ['get', 'pods', '-n', 'apps']);
        expect(refused.stderr).toMatch(/forbidden/);
        await grant('system:serviceaccount:apps:robot', 'apps', 'viewonly', 'namespace');
        await until('the grant in effect', 20_000, async () =>
          (await withToken(token, ['get', 'pods', '-n', 'apps'])).code === 0 ? true : undefined,
        );
        expect((await withToken(token, ['auth', 'can-i', 'list', 'pods', '-n', 'default'])).stdout).toMatch(
          /^no/,
        );
        const write = await withToken(token, ['create', 'configmap', 'by-robot', '-n', 'apps']);
        expect(write.stderr).toMatch(/forbidden.*cannot create resource "configmaps"/);
      });

      it('refuses forged and unknown tokens with 401 and a Kubernetes Status', async () => {
        const [header, payload, signature] = token.split('.');
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
        const forgedPayload = Buffer.from(
          JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:default' }),
        ).toString('base64url');
        for (const bad of [
          `${header}.${forgedPayload}.${signature}`,
          'not-a-token-anyone-issued',
          `${token}x`,
        ]) {
          const reply = await call(`${frontDoor()}/api/v1/namespaces/apps/pods`, {
            ca: clusterCaPem,
            headers: { authorization: `Bearer ${bad}` },
          });
          expect(reply.status).toBe(401);
          expect(JSON.parse(reply.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: 401 });
        }
        const kubectl = await withToken(`${header}.${forgedPayload}.${signature}`, [
          'get',
          'pods',
          '-n',
          'apps',
        ]);
        expect(kubectl.stderr).toMatch(/Unauthorized/);
      });

      it('takes a legacy secret-based service-account token too', async () => {
        const secret = [
          'apiVersion: v1',
          'kind: Secret',
          'type: kubernetes.io/service-account-token',
          'metadata: {name: robot-legacy, namespace: apps, annotations: {kubernetes.io/service-account.name: robot}}',
          '',
        ].join('\n');
        expect((await ctl('admin', ['apply', '-f', '-'], secret)).code).toBe(0);
        const legacy = await until('the token controller filling the secret', 30_000, async () => {
          const r = await ctl('admin', [
            'get',
            'secret',
            'robot-legacy',
            '-n',
            'apps',
            '-o',
            'jsonpath={.data.token}',
          ]);
          return r.stdout ? Buffer.from(r.stdout, 'base64').toString() : undefined;
        });
        const who = await withToken(legacy, ['auth', 'whoami', '-o', 'json']);
        expect(JSON.parse(who.stdout).status.userInfo.username).toBe('system:serviceaccount:apps:robot');
      });

      it('stops working when the service account is deleted', async () => {
        const other = await ctl('admin', ['create', 'serviceaccount', 'temp', '-n', 'apps']);
        expect(other.code).toBe(0);
        const tempToken = (await ctl('admin', ['create', 'token', 'temp', '-n', 'apps'])).stdout.trim();
        expect((await withToken(tempToken, ['auth', 'whoami'])).code).toBe(0);
        expect((await ctl('admin', ['delete', 'serviceaccount', 'temp', '-n', 'apps'])).code).toBe(0);
        await until('the deleted account refused', 20_000, async () =>
          /Unauthorized/.test((await withToken(tempToken, ['auth', 'whoami'])).stderr) ? true : undefined,
        );
      });
    });

    describe('impersonation (--as, --as-group)', () => {
      it("lets an administrator act as another user, with that user's rights", async () => {
        const who = await ctl('admin', ['--as=bob', 'auth', 'whoami', '-o', 'json']);
        expect(JSON.parse(who.stdout).status.userInfo).toMatchObject({ username: 'bob' });
        const asBob = await ctl('admin', ['--as=bob', 'get', 'pods', '-n', 'apps']);
        expect(asBob.stderr).toMatch(/User "bob" cannot list resource "pods"/);
        const withGroup = await ctl('admin', [
          '--as=bob',
          '--as-group=eng:dev',
          'auth',
          'whoami',
          '-o',
          'json',
        ]);
        expect(JSON.parse(withGroup.stdout).status.userInfo).toMatchObject({
          username: 'bob',
          groups: expect.arrayContaining(['eng:dev']),
        });
        const asRobot = await ctl('admin', [
          '--as=system:serviceaccount:apps:robot',
          'auth',
          'whoami',
          '-o',
          'json',
        ]);
        expect(JSON.parse(asRobot.stdout).status.userInfo.username).toBe('system:serviceaccount:apps:robot');
      });

      it('refuses impersonation to users who are not administrators, even with Full Control', async () => {
        await grant(users.bob, 'kubernetesnamespaces', 'fullcontrol', 'grantobject');
        await until("bob's grant in effect", 20_000, async () =>
          (await ctl('bob', ['get', 'pods', '-n', 'apps'])).code === 0 ? true : undefined,
        );
        const asAdmin = await ctl('bob', ['--as=admin', 'get', 'pods', '-n', 'apps']);
        expect(asAdmin.stderr).toMatch(/User "bob" cannot impersonate resource "users"/);
        const asMasters = await ctl('bob', ['--as=bob', '--as-group=system:masters', 'get', 'nodes']);
        expect(asMasters.stderr).toMatch(/cannot impersonate/);
        // Raw headers too: the front door forwards them, the apiserver refuses them.
        const raw = await ctl('bob', [
          '--as=system:serviceaccount:kube-system:default',
          'get',
          'secrets',
          '-A',
        ]);
        expect(raw.stderr).toMatch(/cannot impersonate resource "serviceaccounts"/);
      });
    });

    describe('audit log', () => {
      it('records state-changing requests through 6443: who, operation, object, decision and status', async () => {
        expect((await ctl('admin', ['create', 'configmap', 'audited', '-n', 'apps'])).code).toBe(0);
        expect((await ctl('admin', ['get', 'configmaps', '-n', 'apps'])).code).toBe(0);
        const refused = await ctl('bob', ['--as=admin', 'delete', 'configmap', 'audited', '-n', 'apps']);
        expect(refused.code).not.toBe(0);
        expect((await ctl('admin', ['--as=bob', 'delete', 'configmap', 'audited', '-n', 'apps'])).code).toBe(
          0,
        );
        const forged = await call(`${frontDoor()}/api/v1/namespaces/apps/configmaps`, {
          method: 'POST',
          ca: clusterCaPem,
          headers: { authorization: 'Bearer forged-token', 'content-type': 'application/json' },
          body: '{}',
        });
        expect(forged.status).toBe(401);

        const entries = await until('the audit entries', 15_000, async () => {
          const found = await auditEntries('/api/v1/namespaces/apps/configmaps');
          return found.length >= 4 ? found : undefined;
        });
        const created = entries.find((e) => e.method === 'POST' && e.subject === 'admin');
        expect(created).toMatchObject({
          subject: 'admin',
          method: 'POST',
          operation: 'Kubernetes Config Map Create',
          resource: 'namespaces/apps/configmaps',
          decision: 'allow',
          status: 201,
          outcome: 'success',
        });
        // Reads are not audited.
        expect(entries.filter((e) => e.method === 'GET')).toEqual([]);
        const deletes = entries.filter((e) => e.method === 'DELETE');
        expect(deletes).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              subject: 'bob',
              operation: 'Kubernetes Config Map Delete',
              resource: 'namespaces/apps/configmaps/audited',
              decision: 'deny',
              status: 403,
              reason: expect.stringMatching(/^impersonating admin: .*cannot impersonate/),
            }),
            expect.objectContaining({
              subject: 'admin',
              decision: 'allow',
              status: 200,
              reason: 'impersonating bob',
            }),
          ]),
        );
        expect(entries).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ subject: 'anonymous', method: 'POST', decision: 'deny', status: 401 }),
          ]),
        );
      });

      it("records a service account's refused write and a plain exec POST", async () => {
        const token = (await ctl('admin', ['create', 'token', 'robot', '-n', 'apps'])).stdout.trim();
        await withToken(token, ['create', 'configmap', 'by-robot-2', '-n', 'apps']);
        const entry = await until('the service account entry', 15_000, async () =>
          (await auditEntries('/api/v1/namespaces/apps/configmaps')).find(
            (e) => e.subject === 'system:serviceaccount:apps:robot',
          ),
        );
        expect(entry).toMatchObject({
          decision: 'deny',
          status: 403,
          operation: 'Kubernetes Config Map Create',
          // kubectl's typed client reads protobuf: the message comes out of the protobuf Status.
          reason: expect.stringMatching(/cannot create resource "configmaps"/),
        });
        // exec on a pod that does not exist (a plain POST, as an old client sends before upgrading).
        const exec = await call(`${frontDoor()}/api/v1/namespaces/apps/pods/nowhere/exec?command=true`, {
          method: 'POST',
          ca: clusterCaPem,
          headers: { authorization: ADMIN },
        });
        expect(exec.status).toBeGreaterThanOrEqual(400);
        const recorded = await until(
          'the exec entry',
          15_000,
          async () => (await auditEntries('/pods/nowhere/exec'))[0],
        );
        expect(recorded).toMatchObject({
          subject: 'admin',
          operation: 'Kubernetes Pod Create',
          resource: 'namespaces/apps/pods/nowhere/exec',
          status: exec.status,
        });
      });

      it('records exec streams (upgraded connections) with the 101 that started them', async () => {
        expect(
          (await ctl('admin', ['run', 'shell', '-n', 'apps', '--image=registry.invalid/sh:1'])).code,
        ).toBe(0);
        await until('the pod running on the kwok node', 60_000, async () =>
          (await ctl('admin', ['get', 'pod', 'shell', '-n', 'apps', '-o', 'jsonpath={.status.phase}']))
            .stdout === 'Running'
            ? true
            : undefined,
        );
        // A pod's own token (bound to the pod): the same user and extras as at the apiserver.
        const podUid = (
          await ctl('admin', ['get', 'pod', 'shell', '-n', 'apps', '-o', 'jsonpath={.metadata.uid}'])
        ).stdout;
        const bound = await ctl('admin', [
          'create',
          'token',
          'default', // the pod's own service account
          '-n',
          'apps',
          '--bound-object-kind=Pod',
          '--bound-object-name=shell',
          `--bound-object-uid=${podUid}`,
        ]);
        expect(bound.stderr).toBe('');
        const podToken = bound.stdout.trim();
        const whoami = async (direct: boolean) =>
          JSON.parse((await withToken(podToken, ['auth', 'whoami', '-o', 'json'], direct)).stdout).status
            .userInfo;
        const through = await whoami(false);
        expect(through.username).toBe('system:serviceaccount:apps:default');
        expect(through.extra['authentication.kubernetes.io/pod-name']).toEqual(['shell']);
        expect(through).toEqual(await whoami(true));
        const exec = await ctl('admin', [
          'exec',
          'shell',
          '-n',
          'apps',
          '--',
          'echo',
          'through the front door',
        ]);
        expect(exec.stdout).toContain('through the front door');
        const entry = await until('the exec stream entry', 15_000, async () =>
          (await auditEntries('/pods/shell/exec')).find((e) => e.status === 101),
        );
        expect(entry).toMatchObject({
          subject: 'admin',
          operation: 'Kubernetes Pod Create',
          resource: 'namespaces/apps/pods/shell/exec',
          decision: 'allow',
          outcome: 'success',
        });
      });
    });
  },
);

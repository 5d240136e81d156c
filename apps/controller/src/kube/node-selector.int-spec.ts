// UCPNodeSelector as orca's mutating admission webhook, with a real kube-apiserver (calling an
// in-process controller), the real scheduler, kwok and the installed kubectl through the 6443 front
// door: a worker fake node (the harness's) and a manager fake node made by the leader's FakeNodeLoop
// with UCP's manager labels. User workloads stay off the manager unless config-toml's
// `[scheduling_configuration]` lets them there, read live (no restart between the cases).
import { keys, type NodeSpec } from '@orca/cluster';
import { createCsr, generateKeyPair, MANAGER_ROLE, WORKER_ROLE } from '@orca/pki';
import { Directory } from '@orca/identity';
import {
  basicAuth,
  httpsCall,
  until,
  type KubeCluster,
  type KubectlResult,
  type OrcaKube,
} from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningController } from '../controller.js';
import { startControllerWithKube } from './test-kube.js';
import { FakeNodeLoop } from './managed.js';

const MANAGER_NODE = 'orca-manager-1';
const WORKER_NODE = 'kwok-node-0';
const OFF_MANAGERS = { key: 'com.docker.ucp.collection.system', operator: 'NotIn', values: ['true'] };
const ADMIN = basicAuth('admin', 'orca-admin-pass');

interface PodView {
  metadata: { name: string };
  spec: { nodeName?: string; affinity?: unknown };
  status?: { phase?: string };
}

describe('UCPNodeSelector: user workloads stay off manager nodes unless the scheduling settings allow them', () => {
  let dir: string;
  let controller: RunningController | undefined;
  let cluster: KubeCluster | undefined;
  let orca: OrcaKube<RunningController> | undefined;
  let fakeNodes: FakeNodeLoop | undefined;
  let clusterCaPem: string;
  let webhookClient: { cert: string; key: string };
  const kubeconfigs: Record<string, string> = {};

  const kube = (): KubeCluster => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const ctl = (who: string, args: string[], input?: string): Promise<KubectlResult> =>
    kube().kubectl(args, { kubeconfig: kubeconfigs[who], input, timeoutMs: 30_000 });
  const api = (method: string, path: string, body?: unknown, contentType?: string) =>
    httpsCall(controller!.url, path, { method, ca: clusterCaPem, auth: ADMIN, body, contentType });
  const get = async <T>(path: string): Promise<T> => {
    const reply = await kube().request('GET', path);
    expect([path, reply.status]).toEqual([path, 200]);
    return JSON.parse(reply.body) as T;
  };

  /** config-toml's scheduling settings, through UCP's API as an admin. */
  async function scheduling(admin: boolean, user: boolean): Promise<void> {
    const toml = `[scheduling_configuration]\nenable_admin_ucp_scheduling = ${admin}\nenable_user_ucp_scheduling = ${user}\n`;
    const reply = await api('PUT', '/api/ucp/config-toml', toml, 'application/toml');
    expect([reply.status, reply.text]).toEqual([200, expect.stringContaining('Configuration updated')]);
  }

  async function bundleFor(name: string, password: string): Promise<void> {
    kubeconfigs[name] = await orca!.bundleKubeconfig(name, password);
  }

  const templateAffinity = async (name: string) =>
    (
      await get<{ spec: { template: { spec: { affinity?: unknown } } } }>(
        `/apis/apps/v1/namespaces/apps/deployments/${name}`,
      )
    ).spec.template.spec.affinity;

  /** A deployment's pods once all of them run (kwok makes scheduled pods Running). */
  const runningPods = (name: string, replicas: number, namespace = 'apps'): Promise<PodView[]> =>
    until(`${replicas} running pods of ${name}`, 60_000, async () => {
      const list = await get<{ items: PodView[] }>(
        `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`app=${name}`)}`,
      );
      const running = list.items.filter((p) => p.status?.phase === 'Running' && p.spec.nodeName);
      return running.length === replicas ? running : undefined;
    });

  const deploy = async (who: string, name: string, replicas: number) => {
    const created = await ctl(who, [
      'create',
      'deployment',
      name,
      '--image=busybox',
      `--replicas=${replicas}`,
      '-n',
      'apps',
    ]);
    expect([created.code, created.stderr]).toEqual([0, '']);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-node-selector-'));
    orca = await startControllerWithKube(dir, {}, { nodeName: WORKER_NODE });
    controller = orca.controller;
    cluster = orca.cluster;
    clusterCaPem = orca.clusterCaPem;
    webhookClient = orca.webhookClient;

    // The manager's fake Node, made as the leader makes it (kwok then keeps it Ready).
    const manager: NodeSpec = {
      id: 'managernode1',
      role: 'swarm-manager',
      hostname: MANAGER_NODE,
      address: '127.0.0.1',
      runtime: 'process',
      facts: {},
      createdAt: new Date().toISOString(),
    };
    await orca.controller.store.put(keys.nodeSpec(manager.id), JSON.stringify(manager));
    fakeNodes = new FakeNodeLoop(orca.controller.store, orca.controller.kube!, () => true, {
      warn: (m) => process.stderr.write(`${m}\n`),
    });
    await until('the manager fake node Ready', 60_000, async () => {
      await fakeNodes!.once();
      const node = await get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        `/api/v1/nodes/${MANAGER_NODE}`,
      );
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined;
    });

    const bob = await new Directory(orca.controller.store).create({ name: 'bob', password: 'bob-password' });
    await bundleFor('admin', 'orca-admin-pass');
    await bundleFor('bob', 'bob-password');
    await until('the front door reaching the apiserver', 30_000, async () =>
      (await ctl('admin', ['create', 'namespace', 'apps'])).code === 0 ? true : undefined,
    );
    const granted = await api('PUT', `/collectionGrants/${bob.id}/apps/fullcontrol?type=namespace`);
    expect(granted.status).toBe(201);
    await until('the grant in effect', 20_000, async () =>
      (await ctl('bob', ['auth', 'can-i', 'create', 'deployments', '-n', 'apps'])).stdout.startsWith('yes')
        ? true
        : undefined,
    );
  }, 150_000);

  afterAll(async () => {
    fakeNodes?.stop();
    await orca?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('labels the manager fake node as UCP labelled managers, and not the worker', async () => {
    type NodeView = { metadata: { labels: Record<string, string> } };
    const manager = await get<NodeView>(`/api/v1/nodes/${MANAGER_NODE}`);
    expect(manager.metadata.labels).toMatchObject({
      'com.docker.ucp.collection.system': 'true',
      'com.docker.ucp.collection': 'system',
    });
    const worker = await get<NodeView>(`/api/v1/nodes/${WORKER_NODE}`);
    expect(worker.metadata.labels['com.docker.ucp.collection.system']).toBeUndefined();
    // A label removed by hand comes back on the next pass.
    const removed = await kube().kubectl([
      'label',
      'node',
      MANAGER_NODE,
      'com.docker.ucp.collection.system-',
    ]);
    expect(removed.code).toBe(0);
    await fakeNodes!.once();
    expect((await get<NodeView>(`/api/v1/nodes/${MANAGER_NODE}`)).metadata.labels).toMatchObject({
      'com.docker.ucp.collection.system': 'true',
    });
  });

  it('keeps a non-admin user off managers by default; an admin and Kubernetes controllers are not changed', async () => {
    await scheduling(true, false);
    await deploy('bob', 'user-off', 6);
    await deploy('admin', 'admin-on', 2);
    expect(await templateAffinity('user-off')).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [OFF_MANAGERS] }],
        },
      },
    });
    expect(await templateAffinity('admin-on')).toBeUndefined();
    const userPods = await runningPods('user-off', 6);
    expect(new Set(userPods.map((p) => p.spec.nodeName))).toEqual(new Set([WORKER_NODE]));
    // The pods carry the template's affinity once: the replicaset controller's requests are exempt.
    for (const pod of userPods) expect(pod.spec.affinity).toEqual(await templateAffinity('user-off'));
    // ...which is also why the admin's pods, made by the same (non-admin) controller, have none.
    for (const pod of await runningPods('admin-on', 2)) expect(pod.spec.affinity).toBeUndefined();
  });

  it('lets a user on managers once enable_user_ucp_scheduling is set, without a restart', async () => {
    await scheduling(true, true);
    await deploy('bob', 'user-on', 6);
    expect(await templateAffinity('user-on')).toBeUndefined();
    // The worker already runs user-off's six pods: the scheduler spreads these onto the manager.
    const nodes = (await runningPods('user-on', 6)).map((p) => p.spec.nodeName);
    expect(nodes).toContain(MANAGER_NODE);
  });

  it("follows enable_admin_ucp_scheduling for an admin's workloads", async () => {
    await scheduling(false, true);
    await deploy('admin', 'admin-off', 4);
    expect(await templateAffinity('admin-off')).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [OFF_MANAGERS] }],
        },
      },
    });
    const nodes = (await runningPods('admin-off', 4)).map((p) => p.spec.nodeName);
    expect(new Set(nodes)).toEqual(new Set([WORKER_NODE]));
  });

  it('changes pods created directly, adds the requirement to every term of a user affinity, leaves kube-system alone', async () => {
    await scheduling(false, false);
    const run = await ctl('bob', ['run', 'lone', '--image=busybox', '-n', 'apps']);
    expect([run.code, run.stderr]).toEqual([0, '']);
    const lone = await get<PodView>('/api/v1/namespaces/apps/pods/lone');
    expect(lone.spec.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [OFF_MANAGERS] }],
        },
      },
    });

    // A user's own term naming the manager cannot get around it (terms are ORed: each gets it).
    const manifest = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'pinned', namespace: 'apps' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'pinned' } },
        template: {
          metadata: { labels: { app: 'pinned' } },
          spec: {
            containers: [{ name: 'c', image: 'busybox' }],
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [
                        { key: 'kubernetes.io/hostname', operator: 'In', values: [MANAGER_NODE] },
                      ],
                    },
                    { matchFields: [{ key: 'metadata.name', operator: 'In', values: [MANAGER_NODE] }] },
                  ],
                },
              },
            },
          },
        },
      },
    };
    const applied = await ctl('bob', ['apply', '-f', '-'], JSON.stringify(manifest));
    expect([applied.code, applied.stderr]).toEqual([0, '']);
    expect(await templateAffinity('pinned')).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'kubernetes.io/hostname', operator: 'In', values: [MANAGER_NODE] },
                OFF_MANAGERS,
              ],
            },
            {
              matchFields: [{ key: 'metadata.name', operator: 'In', values: [MANAGER_NODE] }],
              matchExpressions: [OFF_MANAGERS],
            },
          ],
        },
      },
    });
    // An update (a new template) keeps exactly one requirement per term.
    const updated = await ctl('bob', ['set', 'env', 'deployment/pinned', 'X=1', '-n', 'apps']);
    expect([updated.code, updated.stderr]).toEqual([0, '']);
    const terms = (
      (await templateAffinity('pinned')) as {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: { matchExpressions: unknown[] }[];
          };
        };
      }
    ).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    expect(terms.map((t) => t.matchExpressions.length)).toEqual([2, 1]);

    // kube-system: an admin's pod there is not changed, whatever the settings.
    const system = await ctl('admin', ['run', 'sys', '--image=busybox', '-n', 'kube-system']);
    expect([system.code, system.stderr]).toEqual([0, '']);
    expect((await get<PodView>('/api/v1/namespaces/kube-system/pods/sys')).spec.affinity).toBeUndefined();
  });

  it('answers the apiserver with a JSONPatch, malformed AdmissionReviews with 400 Status, strangers with 401', async () => {
    const post = (body: unknown, withCert = true) =>
      httpsCall(controller!.url, '/kube/webhooks/mutate', {
        method: 'POST',
        ca: clusterCaPem,
        ...(withCert ? webhookClient : {}),
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-1',
        namespace: 'apps',
        operation: 'CREATE',
        userInfo: { username: 'bob', groups: ['system:authenticated'] },
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'p' },
          spec: { containers: [{ name: 'c' }] },
        },
      },
    };
    const reply = await post(review);
    expect(reply.status).toBe(200);
    const response = reply.json<{
      response: { uid: string; allowed: boolean; patchType: string; patch: string };
    }>().response;
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toEqual([
      {
        op: 'add',
        path: '/spec/affinity',
        value: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [OFF_MANAGERS] }],
            },
          },
        },
      },
    ]);
    for (const body of [
      'not json',
      '[]',
      '{}',
      'null',
      '{"apiVersion":"x"}',
      { ...review, request: { object: {} } },
    ]) {
      const bad = await post(body);
      expect([body, bad.status]).toEqual([body, 400]);
      expect(bad.json()).toMatchObject({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'BadRequest',
        code: 400,
      });
    }
    expect((await post(review, false)).status).toBe(401);
  });
  it('refuses a pod or pod template whose spec.nodeName names a manager, for users kept off managers', async () => {
    await scheduling(true, false);
    const pinnedPod = (name: string, node: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'apps' },
        spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
      });
    const refused = await ctl('bob', ['apply', '-f', '-'], pinnedPod('on-manager', MANAGER_NODE));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `user "bob" may not run Pod on-manager on manager node "${MANAGER_NODE}" (spec.nodeName)`,
    );
    expect((await kube().request('GET', '/api/v1/namespaces/apps/pods/on-manager')).status).toBe(404);
    // A template naming the manager: its pods would be made by the (exempt) replicaset controller.
    const template = await ctl(
      'bob',
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'pinned-manager', namespace: 'apps' },
        spec: {
          selector: { matchLabels: { app: 'pinned-manager' } },
          template: {
            metadata: { labels: { app: 'pinned-manager' } },
            spec: { nodeName: MANAGER_NODE, containers: [{ name: 'c', image: 'busybox' }] },
          },
        },
      }),
    );
    expect(template.code).not.toBe(0);
    expect(template.stderr).toContain(`on manager node "${MANAGER_NODE}"`);
    // The worker may be named; an admin allowed on managers may name the manager.
    const onWorker = await ctl('bob', ['apply', '-f', '-'], pinnedPod('on-worker', WORKER_NODE));
    expect([onWorker.code, onWorker.stderr]).toEqual([0, '']);
    const admin = await ctl('admin', ['apply', '-f', '-'], pinnedPod('admin-on-manager', MANAGER_NODE));
    expect([admin.code, admin.stderr]).toEqual([0, '']);
    // Once users may run on managers, bob may name it too.
    await scheduling(true, true);
    const allowed = await ctl('bob', ['apply', '-f', '-'], pinnedPod('on-manager', MANAGER_NODE));
    expect([allowed.code, allowed.stderr]).toEqual([0, '']);
    const pod = await get<PodView>('/api/v1/namespaces/apps/pods/on-manager');
    expect(pod.spec.nodeName).toBe(MANAGER_NODE);
  });

  it('refuses a pods/binding of a pending pod to a manager, for users kept off managers', async () => {
    await scheduling(true, false);
    // A scheduler nobody runs: the pod stays pending until someone binds it.
    const pending = (name: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'apps' },
        spec: { schedulerName: 'by-hand', containers: [{ name: 'c', image: 'busybox' }] },
      });
    const binding = (name: string, node: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name },
        target: { kind: 'Node', name: node },
      });
    const bind = (who: string, name: string, node: string) =>
      ctl(
        who,
        ['create', '--raw', `/api/v1/namespaces/apps/pods/${name}/binding`, '-f', '-'],
        binding(name, node),
      );
    for (const name of ['bind-manager', 'bind-worker'])
      expect((await ctl('bob', ['apply', '-f', '-'], pending(name))).code).toBe(0);
    const refused = await bind('bob', 'bind-manager', MANAGER_NODE);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `user "bob" may not bind Pod bind-manager to manager node "${MANAGER_NODE}" (pods/binding)`,
    );
    expect((await get<PodView>('/api/v1/namespaces/apps/pods/bind-manager')).spec.nodeName).toBeUndefined();
    const toWorker = await bind('bob', 'bind-worker', WORKER_NODE);
    expect([toWorker.code, toWorker.stderr]).toEqual([0, expect.any(String)]);
    expect((await get<PodView>('/api/v1/namespaces/apps/pods/bind-worker')).spec.nodeName).toBe(WORKER_NODE);
    // An administrator allowed on managers may bind there.
    const admin = await bind('admin', 'bind-manager', MANAGER_NODE);
    expect(admin.code).toBe(0);
    expect((await get<PodView>('/api/v1/namespaces/apps/pods/bind-manager')).spec.nodeName).toBe(
      MANAGER_NODE,
    );
  });

  describe("the internal endpoints UCP's admission plugins call", () => {
    let managerCert: { cert: string; key: string };
    let workerCert: { cert: string; key: string };
    const internal = (
      method: string,
      path: string,
      who: { cert: string; key: string } | 'admin' | 'bob' | 'none',
      body?: unknown,
    ) =>
      httpsCall(controller!.url, path, {
        method,
        ca: clusterCaPem,
        body,
        ...(who === 'admin'
          ? { auth: ADMIN }
          : who === 'bob'
            ? { auth: basicAuth('bob', 'bob-password') }
            : who === 'none'
              ? {}
              : who),
      });

    beforeAll(async () => {
      const authority = await controller!.cas.clusterAuthority();
      const { clusterId } = (await controller!.cas.bootstrap(3_600_000)).cluster;
      const nodeCert = async (nodeId: string, role: typeof MANAGER_ROLE | typeof WORKER_ROLE) => {
        const keyPair = await generateKeyPair();
        const issued = await authority.issueNodeCertificate({
          csrPem: await createCsr(keyPair),
          nodeId,
          role,
          clusterId,
        });
        return { cert: issued.certPem, key: keyPair.privateKeyPem };
      };
      managerCert = await nodeCert('managernode1', MANAGER_ROLE);
      workerCert = await nodeCert('workernode01', WORKER_ROLE);
    });

    it('answer a manager node certificate or an administrator; nobody else', async () => {
      for (const who of [managerCert, 'admin'] as const) {
        const reply = await internal('GET', '/api/authz/isadmin?user=admin', who);
        expect([reply.status, reply.text]).toEqual([200, 'true']);
      }
      for (const [who, code] of [
        [workerCert, 403],
        [orca!.webhookClient, 401],
        ['bob', 403],
        ['none', 401],
      ] as const) {
        for (const [method, path] of [
          ['GET', '/api/authz/isadmin?user=admin'],
          ['DELETE', '/api/agent/system:serviceaccount:apps:robot'],
        ]) {
          const reply = await internal(method, path, who);
          expect([method, path, code, reply.status]).toEqual([method, path, code, code]);
          expect(reply.json()).toEqual({
            errors: [{ code: expect.any(String), message: expect.any(String) }],
          });
        }
      }
    });

    it('isadmin, isfullcontrol and managerscheduling answer true/false from accounts, grants and config-toml', async () => {
      const text = async (path: string) => {
        const reply = await internal('GET', path, managerCert);
        expect([path, reply.status]).toEqual([path, 200]);
        return reply.text;
      };
      expect(await text('/api/authz/isadmin?user=bob')).toBe('false');
      expect(await text('/api/authz/isadmin?user=nobody')).toBe('false');
      // bob has Full Control on apps (beforeAll), nothing on default.
      expect(await text('/api/authz/isfullcontrol?user=bob&namespace=apps')).toBe('true');
      expect(await text('/api/authz/isfullcontrol?user=bob&namespace=default')).toBe('false');
      await scheduling(true, false);
      expect(await text('/api/authz/managerscheduling?user=bob')).toBe('false');
      expect(await text('/api/authz/managerscheduling?user=admin')).toBe('true');
      await scheduling(false, true);
      expect(await text('/api/authz/managerscheduling?user=bob')).toBe('true');
      expect(await text('/api/authz/managerscheduling?user=admin')).toBe('false');
    });

    it('volumeaccess answers per volume (no engine here has any)', async () => {
      const reply = await internal('POST', '/api/authz/volumeaccess?user=bob', managerCert, {
        volumes: ['data'],
      });
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({
        volumes: { data: { allowed: false, reason: 'volume data does not exist' } },
      });
    });

    it("DELETE /api/agent/<service account> removes the service account's grants, 204 even when there are none", async () => {
      const robot = 'system:serviceaccount:apps:robot';
      const granted = await api(
        'PUT',
        `/collectionGrants/${encodeURIComponent(robot)}/apps/viewonly?type=namespace`,
      );
      expect(granted.status).toBe(201);
      const grantsOfRobot = async () =>
        (await api('GET', '/collectionGrants?subjectID=' + encodeURIComponent(robot)))
          .json<{ grants: { subjectID: string }[] }>()
          .grants.filter((g) => g.subjectID === robot);
      expect(await grantsOfRobot()).toHaveLength(1);
      const deleted = await internal('DELETE', `/api/agent/${robot}`, managerCert);
      expect([deleted.status, deleted.text]).toEqual([204, '']);
      expect(await grantsOfRobot()).toEqual([]);
      expect((await internal('DELETE', `/api/agent/${robot}`, managerCert)).status).toBe(204);
    });

    it('answers bad input with 400 in UCP error JSON', async () => {
      for (const [method, path, body] of [
        ['GET', '/api/authz/isadmin', undefined],
        ['GET', '/api/authz/isadmin?user=', undefined],
        ['GET', '/api/authz/isadmin?user=a&user=b', undefined],
        ['GET', '/api/authz/isfullcontrol?user=bob', undefined],
        ['GET', '/api/authz/isfullcontrol?user=bob&namespace=Not_A_Namespace', undefined],
        ['GET', '/api/authz/managerscheduling', undefined],
        ['POST', '/api/authz/volumeaccess?user=bob', { volumes: 'data' }],
        ['POST', '/api/authz/volumeaccess?user=bob', 'not json'],
        ['POST', '/api/authz/volumeaccess', { volumes: [] }],
        ['DELETE', '/api/agent/bob', undefined],
        ['DELETE', '/api/agent/system:serviceaccount:apps', undefined],
      ] as const) {
        const reply = await internal(method, path, managerCert, body);
        expect([method, path, reply.status]).toEqual([method, path, 400]);
        expect(reply.json()).toEqual({
          errors: [{ code: 'INVALID_REQUEST', message: expect.any(String) }],
        });
      }
    });
  });
});

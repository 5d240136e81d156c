// UCPNodeSelector as orca's mutating admission webhook, with a real kube-apiserver (calling an
// in-process controller), the real scheduler, kwok and the installed kubectl through the 6443 front
// door: a worker fake node (the harness's) and a manager fake node made by the leader's FakeNodeLoop
// with UCP's manager labels. User workloads stay off the manager unless config-toml's
// `[scheduling_configuration]` lets them there, read live (no restart between the cases).
import { keys, type NodeSpec } from '@orca/cluster';
import { loadControllerConfig } from '@orca/config';
import { Directory } from '@orca/identity';
import { generateKeyPair } from '@orca/pki';
import {
  basicAuth,
  freePort,
  httpsCall,
  startKubeCluster,
  type KubeCluster,
  type KubectlResult,
} from '@orca/testing';
import JSZip from 'jszip';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';
import { FakeNodeLoop } from './managed.js';

const MANAGER_NODE = 'orca-manager-1';
const WORKER_NODE = 'kwok-node-0';
const OFF_MANAGERS = { key: 'com.docker.ucp.collection.system', operator: 'NotIn', values: ['true'] };
const ADMIN = basicAuth('admin', 'orca-admin-pass');

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await delay(300);
  }
}

interface PodView {
  metadata: { name: string };
  spec: { nodeName?: string; affinity?: unknown };
  status?: { phase?: string };
}

describe('UCPNodeSelector: user workloads stay off manager nodes unless the scheduling settings allow them', () => {
  let dir: string;
  let controller: RunningController | undefined;
  let cluster: KubeCluster | undefined;
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
    const reply = await httpsCall(controller!.url, '/api/clientbundle', {
      method: 'POST',
      ca: clusterCaPem,
      auth: basicAuth(name, password),
    });
    expect(reply.status).toBe(200);
    const zip = await JSZip.loadAsync(reply.body);
    const path = join(dir, `${name}-kube.yml`);
    writeFileSync(path, await zip.file('kube.yml')!.async('string'));
    kubeconfigs[name] = path;
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
    const kubePort = await freePort();
    const apiPort = await freePort();
    const file = (name: string, content?: string) => {
      const path = join(dir, name);
      if (content !== undefined) writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    const upstream = {
      ca: file('apiserver-ca.pem'),
      proxyCert: file('front-proxy.crt'),
      proxyKey: file('front-proxy.key'),
      adminCert: file('kube-admin.crt'),
      adminKey: file('kube-admin.key'),
    };
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
        ORCA_KUBE_PORT: String(kubePort),
        ORCA_KUBE_APISERVER: `https://127.0.0.1:${apiPort}`,
        ORCA_KUBE_CA_FILE: upstream.ca,
        ORCA_KUBE_PROXY_CERT_FILE: upstream.proxyCert,
        ORCA_KUBE_PROXY_KEY_FILE: upstream.proxyKey,
        ORCA_KUBE_ADMIN_CERT_FILE: upstream.adminCert,
        ORCA_KUBE_ADMIN_KEY_FILE: upstream.adminKey,
      }),
    );
    clusterCaPem = await controller.cas.clusterBundle();
    const clusterCaPath = file('cluster-ca.pem', clusterCaPem);
    const keyPair = await generateKeyPair();
    const issued = await (
      await controller.cas.clusterAuthority()
    ).issueServerCertificate({ publicKeyPem: keyPair.publicKeyPem, commonName: 'kube-apiserver', hosts: [] });
    webhookClient = { cert: issued.certPem, key: keyPair.privateKeyPem };
    const webhookKubeconfig = (name: string, server: string, user: string) =>
      file(
        name,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'orca', cluster: { server, 'certificate-authority': clusterCaPath } }],
          users: [
            {
              name: user,
              user: {
                'client-certificate': file('webhook-client.crt', issued.certPem),
                'client-key': file('webhook-client.key', keyPair.privateKeyPem),
              },
            },
          ],
          contexts: [{ name: 'orca', context: { cluster: 'orca', user } }],
          'current-context': 'orca',
        }),
      );
    const authzKubeconfig = webhookKubeconfig(
      'authz-webhook.kubeconfig',
      `${controller.url}/kube/webhooks/authorize`,
      'kube-apiserver',
    );
    // Both admission webhook plugins present the cluster-CA client certificate to orca.
    const admissionKubeconfig = webhookKubeconfig('admission.kubeconfig', controller.url, '*');
    const admissionConfig = file(
      'admission.json',
      JSON.stringify({
        apiVersion: 'apiserver.config.k8s.io/v1',
        kind: 'AdmissionConfiguration',
        plugins: ['ValidatingAdmissionWebhook', 'MutatingAdmissionWebhook'].map((name) => ({
          name,
          configuration: {
            apiVersion: 'apiserver.config.k8s.io/v1',
            kind: 'WebhookAdmissionConfiguration',
            kubeConfigFile: admissionKubeconfig,
          },
        })),
      }),
    );
    cluster = await startKubeCluster({
      apiserverPort: apiPort,
      nodeName: WORKER_NODE,
      extraApiserverArgs: [
        '--authorization-mode=Node,RBAC,Webhook',
        `--authorization-webhook-config-file=${authzKubeconfig}`,
        '--authorization-webhook-version=v1',
        '--authorization-webhook-cache-authorized-ttl=0s',
        '--authorization-webhook-cache-unauthorized-ttl=0s',
        `--admission-control-config-file=${admissionConfig}`,
      ],
    });
    writeFileSync(upstream.ca, cluster.ca.certPem);
    writeFileSync(upstream.proxyCert, cluster.frontProxy.certPem);
    writeFileSync(upstream.proxyKey, cluster.frontProxy.keyPem);
    writeFileSync(upstream.adminCert, cluster.admin.certPem);
    writeFileSync(upstream.adminKey, cluster.admin.keyPem);

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
    await controller.store.put(keys.nodeSpec(manager.id), JSON.stringify(manager));
    fakeNodes = new FakeNodeLoop(controller.store, controller.kube!, () => true, {
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
    await until('the mutating webhook registration', 30_000, async () =>
      (
        await kube().request(
          'GET',
          '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/orca-ucp-node-selector',
        )
      ).status === 200
        ? true
        : undefined,
    );

    const bob = await new Directory(controller.store).create({ name: 'bob', password: 'bob-password' });
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
    await cluster?.stop();
    await controller?.close();
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
});

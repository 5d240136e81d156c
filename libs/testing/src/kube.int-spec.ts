// The real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler built
// from Go modules, kwok for the node) driven by the installed kubectl.
import { existsSync } from 'node:fs';
import { request } from 'node:https';
import { startKubeCluster, until, type KubeCluster } from './kube.js';

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    spec: { nodeName?: string };
    status: { phase?: string; podIP?: string };
  }[];
}

/** POST a SelfSubjectReview with the given client certificate and headers: who the apiserver says we are. */
function whoAmI(
  cluster: KubeCluster,
  cert: string,
  key: string,
  headers: Record<string, string>,
): Promise<{ status: number; username?: string; groups?: string[] }> {
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.server}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
      {
        method: 'POST',
        ca: cluster.ca.certPem,
        cert,
        key,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          const review = JSON.parse(text) as {
            status?: { userInfo?: { username?: string; groups?: string[] } };
          };
          resolve({ status: res.statusCode ?? 0, ...review.status?.userInfo });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('Kubernetes test harness (real kube-apiserver, controller-manager, scheduler, kwok)', () => {
  let cluster: KubeCluster | undefined;

  beforeAll(async () => {
    cluster = await startKubeCluster();
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const kube = (): KubeCluster => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };

  it('serves the built version to kubectl, within its skew', async () => {
    const result = await kube().kubectl(['version', '-o', 'json']);
    expect(result.code).toBe(0);
    const versions = JSON.parse(result.stdout) as {
      clientVersion: { minor: string };
      serverVersion: { gitVersion: string; minor: string };
    };
    expect(versions.serverVersion.gitVersion).toBe(kube().version);
    expect(
      Math.abs(Number(versions.serverVersion.minor) - Number(versions.clientVersion.minor)),
    ).toBeLessThanOrEqual(1);
    expect(result.stderr).not.toMatch(/exceeds the supported minor version skew/);
  });

  it('shows the kwok node Ready in kubectl get nodes', async () => {
    const result = await kube().kubectl(['get', 'nodes', '--no-headers']);
    expect(result.code).toBe(0);
    const row = result.stdout.split('\n').find((line) => line.startsWith(`${kube().nodeName} `));
    expect(row).toBeDefined();
    expect(row?.split(/\s+/)[1]).toBe('Ready');
  });

  it('runs a deployment of 2 replicas to 2 Running pods on the kwok node, and deletes it', async () => {
    const created = await kube().kubectl([
      'create',
      'deployment',
      'web',
      '--image=registry.invalid/nginx:1',
      '--replicas=2',
    ]);
    expect(created.stderr).toBe('');
    expect(created.stdout).toMatch(/deployment.apps\/web created/);

    const pods = await until('2 Running pods', 60_000, async () => {
      const listed = await kube().kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json']);
      const list = JSON.parse(listed.stdout) as PodList;
      const runningPods = list.items.filter((p) => p.status.phase === 'Running');
      return runningPods.length === 2 ? runningPods : undefined;
    });
    for (const pod of pods) {
      expect(pod.spec.nodeName).toBe(kube().nodeName);
      expect(pod.status.podIP).toMatch(/^10\.244\.0\.\d+$/);
    }
    const rollout = await kube().kubectl(['rollout', 'status', 'deployment/web', '--timeout=30s'], {
      timeoutMs: 40_000,
    });
    expect(rollout.code).toBe(0);

    const deleted = await kube().kubectl(['delete', 'deployment', 'web', '--wait=true'], {
      timeoutMs: 40_000,
    });
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/deployment.apps "web" deleted/);
    const gone = await kube().kubectl(['get', 'deployment', 'web']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/NotFound/);
    // The garbage collector removes the ReplicaSet, and kwok (the "kubelet") finishes the pods.
    await until('pods deleted', 60_000, async () => {
      const listed = await kube().kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json']);
      return (JSON.parse(listed.stdout) as PodList).items.length === 0 ? true : undefined;
    });
  }, 150_000);

  it('authenticates client certificates against its CA: a plain user is refused, then allowed by RBAC', async () => {
    const user = await kube().userKubeconfig('jane', 'devs');
    const refused = await kube().kubectl(['get', 'pods', '-n', 'default'], { kubeconfig: user });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/User "jane" cannot list resource "pods"/);

    const bound = await kube().kubectl([
      'create',
      'rolebinding',
      'devs-view',
      '--clusterrole=view',
      '--group=devs',
      '-n',
      'default',
    ]);
    expect(bound.code).toBe(0);
    const allowed = await until('RBAC binding in effect', 10_000, async () => {
      const r = await kube().kubectl(['get', 'pods', '-n', 'default'], { kubeconfig: user });
      return r.code === 0 ? r : undefined;
    });
    expect(allowed.code).toBe(0);
  });

  it('takes X-Remote-User/X-Remote-Group only from the front-proxy client certificate', async () => {
    const headers = { 'X-Remote-User': 'jane', 'X-Remote-Group': 'devs' };
    const proxied = await whoAmI(kube(), kube().frontProxy.certPem, kube().frontProxy.keyPem, headers);
    expect(proxied.status).toBe(201);
    expect(proxied.username).toBe('jane');
    expect(proxied.groups).toContain('devs');

    // A client certificate from the other CA cannot assert identities by header.
    const direct = await whoAmI(kube(), kube().admin.certPem, kube().admin.keyPem, headers);
    expect(direct.status).toBe(201);
    expect(direct.username).toBe('orca-test-admin');
    expect(direct.groups).toContain('system:masters');
  });

  it('stop() ends every component and removes its temp dir', async () => {
    const pids = Object.values(kube().pids());
    expect(pids).toHaveLength(4);
    expect(pids.every((p) => typeof p === 'number')).toBe(true);
    const dir = kube().dir;
    await kube().stop();
    for (const pid of pids) {
      expect(() => process.kill(pid as number, 0)).toThrow();
    }
    expect(existsSync(dir)).toBe(false);
    expect(Object.values(kube().pids()).every((p) => p === undefined)).toBe(true);
  });
});

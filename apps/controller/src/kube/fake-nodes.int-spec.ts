// The leader's kwok fake Nodes against a real kube-apiserver: one per manager in the store, deleted
// when the node is removed or demoted, and nothing else touched (the harness's own kwok node, a
// Node orca did not make).
import { CertificateAuthorityService, KubePki, keys, kwokNode, type NodeSpec } from '@orca/cluster';
import { KubeUpstream } from '@orca/kube';
import { EmbeddedStore } from '@orca/store';
import { startKubeCluster, type KubeCluster } from '@orca/testing';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeNodeLoop, writeKubeClientFiles } from './managed.js';

const manager = (id: string, hostname: string, address: string): NodeSpec => ({
  id,
  role: 'swarm-manager',
  hostname,
  address,
  runtime: 'process',
  facts: {},
  createdAt: new Date().toISOString(),
});

describe('kwok fake nodes of managers', () => {
  let dir: string;
  let store: EmbeddedStore | undefined;
  let cluster: KubeCluster | undefined;
  let upstream: KubeUpstream | undefined;
  const warnings: string[] = [];

  const nodeNames = async (): Promise<string[]> => {
    const reply = await cluster!.request('GET', '/api/v1/nodes');
    expect(reply.status).toBe(200);
    return (JSON.parse(reply.body) as { items: { metadata: { name: string } }[] }).items
      .map((n) => n.metadata.name)
      .sort();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-fake-nodes-'));
    store = new EmbeddedStore({ dir: join(dir, 'store') });
    cluster = await startKubeCluster();
    upstream = new KubeUpstream({
      apiserverUrl: cluster.server,
      caFile: join(cluster.dir, 'ca.crt'),
      proxyCertFile: cluster.frontProxy.certPath,
      proxyKeyFile: cluster.frontProxy.keyPath,
      adminCertFile: join(cluster.dir, 'admin.crt'),
      adminKeyFile: join(cluster.dir, 'admin.key'),
    });
  }, 120_000);

  afterAll(async () => {
    upstream?.close();
    await cluster?.stop();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('makes one per manager and deletes those of removed or demoted managers, nothing else', async () => {
    const loop = new FakeNodeLoop(store!, { upstream: upstream! }, () => true, {
      warn: (m) => warnings.push(m),
    });
    const m1 = manager('m1node', 'manager-one', '127.0.0.1');
    const m2 = manager('m2node', 'manager-two', '127.0.0.2');
    const worker = { ...manager('w1node', 'worker-one', '127.0.0.3'), role: 'swarm-worker' as const };
    for (const node of [m1, m2, worker]) await store!.put(keys.nodeSpec(node.id), JSON.stringify(node));
    // A Node that carries orca's label but is no kwok fake node (a real kubelet's): never deleted.
    const foreign = kwokNode(manager('gone', 'real-kubelet', '127.0.0.4')) as {
      metadata: { annotations: Record<string, string> };
    };
    foreign.metadata.annotations = {};
    expect((await cluster!.request('POST', '/api/v1/nodes', foreign)).status).toBe(201);

    await loop.once();
    expect(await nodeNames()).toEqual(['kwok-node-0', 'manager-one', 'manager-two', 'real-kubelet']);
    await loop.once(); // a second pass changes nothing
    expect(await nodeNames()).toEqual(['kwok-node-0', 'manager-one', 'manager-two', 'real-kubelet']);

    // Removed (no spec any more) and demoted managers lose their fake node.
    await store!.delete(keys.nodeSpec(m2.id));
    await loop.once();
    expect(await nodeNames()).toEqual(['kwok-node-0', 'manager-one', 'real-kubelet']);
    await store!.put(keys.nodeSpec(m1.id), JSON.stringify({ ...m1, role: 'swarm-worker' }));
    await loop.once();
    expect(await nodeNames()).toEqual(['kwok-node-0', 'real-kubelet']);
    expect(warnings.filter((w) => w.includes('deleted'))).toHaveLength(2);
  });

  it('makes no fake node on a controller that is not the leader, but keeps its client files', async () => {
    await store!.put(
      keys.nodeSpec('m3node'),
      JSON.stringify(manager('m3node', 'manager-three', '127.0.0.5')),
    );
    const kek = Buffer.alloc(32, 3).toString('base64');
    const cas = new CertificateAuthorityService(store!, kek);
    await cas.bootstrap(3_600_000);
    const pki = new KubePki(store!, cas, kek);
    const dataDir = join(dir, 'follower');
    const follower = new FakeNodeLoop(
      store!,
      { upstream: upstream! },
      () => false,
      { warn: () => undefined },
      100,
      () => writeKubeClientFiles(dataDir, pki),
    );
    const proxyCert = join(dataDir, 'kube-client', 'front-proxy.pem');
    follower.start();
    // The first pass issues the client certificates (key generation takes a while on a busy machine).
    for (let i = 0; i < 100 && !existsSync(proxyCert); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    follower.stop();
    expect(await nodeNames()).not.toContain('manager-three');
    expect(existsSync(proxyCert)).toBe(true);
    expect(readFileSync(proxyCert, 'utf8')).toBe((await pki.controllerMaterial()).frontProxy.certPem);
  });
});

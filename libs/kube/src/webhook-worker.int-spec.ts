// The webhooks on their worker thread, on a real embedded store and real TLS on loopback (the
// worker runs the build in dist/): reviews decided from grants, a grant written on this thread
// applying to the very next review, callers from another CA refused, malformed reviews answered
// 400, other paths 404, and a port already taken reported at start.
import { Directory } from '@orca/identity';
import { CertificateAuthority, createRootCa } from '@orca/pki';
import { putGrant } from '@orca/rbac';
import { EmbeddedStore } from '@orca/store';
import { httpsCall, issueTestIdentity, signedBy } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTHORIZATION_WEBHOOK_PATH, MUTATING_ADMISSION_WEBHOOK_PATH } from './webhooks.js';
import { WebhookWorker } from './webhook-worker.js';

const HOST = '127.0.0.1';

describe('WebhookWorker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orca-webhook-worker-'));
  let store: EmbeddedStore;
  let worker: WebhookWorker;
  let apiserver: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  let userId: string;
  let serving: { key: string; cert: string; ca: string[] };

  beforeAll(async () => {
    store = new EmbeddedStore({ dir: join(dir, 'store') });
    const cluster = new CertificateAuthority(await createRootCa({ commonName: 'test-cluster' }));
    const other = new CertificateAuthority(await createRootCa({ commonName: 'someone-else' }));
    const server = await issueTestIdentity(cluster, HOST, [HOST]);
    serving = { ...server, ca: [cluster.bundlePem] };
    apiserver = await issueTestIdentity(cluster, 'kube-apiserver');
    stranger = await issueTestIdentity(other, 'kube-apiserver');
    const directory = new Directory(store);
    userId = (await directory.create({ name: 'webhook-user', password: 'webhook-user-password' })).id;
    worker = await WebhookWorker.start({
      store,
      host: HOST,
      port: 0,
      tls: serving,
      authorization: 'webhook',
      trustedCaller: signedBy(cluster.bundlePem),
    });
  });

  afterAll(async () => {
    await worker?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const review = (namespace: string, verb = 'get') => ({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: 'webhook-user',
      groups: ['system:authenticated'],
      resourceAttributes: { namespace, verb, resource: 'pods', version: 'v1' },
    },
  });
  const ask = (body: unknown, who = apiserver, path = AUTHORIZATION_WEBHOOK_PATH) =>
    httpsCall(worker.url, path, { method: 'POST', body, ...who });

  it('decides from grants, and a grant written here applies to the next review', async () => {
    const before = await ask(review('team-a'));
    expect(before.status).toBe(200);
    expect(before.json().status.allowed).toBe(false);
    await putGrant(store, userId, 'team-a', 'viewonly', 'namespace');
    // No waiting: the worker's copy is told of the write before it answers.
    const after = await ask(review('team-a'));
    expect(after.json()).toMatchObject({ kind: 'SubjectAccessReview', status: { allowed: true } });
    expect((await ask(review('team-a', 'delete'))).json().status.allowed).toBe(false);
    expect((await ask(review('team-b'))).json().status.allowed).toBe(false);
  });

  it('refuses callers without a cluster-CA certificate', async () => {
    const foreign = await ask(review('team-a'), stranger);
    expect(foreign.status).toBe(401);
    expect(foreign.json()).toMatchObject({ kind: 'Status', code: 401 });
    const anonymous = await httpsCall(worker.url, AUTHORIZATION_WEBHOOK_PATH, {
      method: 'POST',
      body: review('team-a'),
    });
    expect(anonymous.status).toBe(401);
  });

  it('answers malformed reviews 400 and other paths 404, and keeps working', async () => {
    const bad = await httpsCall(worker.url, AUTHORIZATION_WEBHOOK_PATH, {
      method: 'POST',
      body: '{"kind": "SubjectAccessReview",',
      ...apiserver,
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ kind: 'Status', code: 400 });
    const wrongKind = await ask(
      { apiVersion: 'v1', kind: 'Pod' },
      apiserver,
      MUTATING_ADMISSION_WEBHOOK_PATH,
    );
    expect(wrongKind.status).toBe(400);
    expect((await httpsCall(worker.url, '/api/v1/pods', { ...apiserver })).status).toBe(404);
    expect((await ask(review('team-a'))).json().status.allowed).toBe(true);
  });

  it('says so when its port is taken', async () => {
    await expect(
      WebhookWorker.start({
        store,
        host: HOST,
        port: worker.port,
        tls: serving,
        authorization: 'webhook',
        trustedCaller: async () => true,
      }),
    ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

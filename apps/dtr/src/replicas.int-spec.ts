// Two DTR replicas on one real etcd (as they would share ucp-kv) and one blob directory: a token
// from one works on the other, an upload started on one finishes on the other (the running hash
// is rebuilt from storage), content pushed through one is pulled through the other, and the OCI
// conformance suite passes against a replica whose metadata lives in etcd; a job whose replica
// dies (its etcd connection cut, so its worker lease expires) is taken over by another replica.
import { CertificateAuthorityService } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { FsBlobStore, JobRunner, JobStore } from '@orca/registry';
import { EtcdStore, type Store } from '@orca/store';
import { freePort, startEtcd, type EtcdCluster } from '@orca/testing';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { startDtr, type RunningDtr } from './dtr.js';
import {
  conformanceBinary,
  dtrRequest,
  pushImage,
  registryToken,
  runConformance,
  sha256,
} from './test-dtr.js';

describe('DTR replicas on etcd', () => {
  let etcd: EtcdCluster;
  let stores: Store[] = [];
  let replicas: { dtr: RunningDtr }[] = [];
  let dir: string;
  const alice: [string, string] = ['alice', 'alice-password'];

  beforeAll(async () => {
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), 'orca-dtr-replicas-'));
    const kek = randomBytes(32).toString('base64');
    stores = [0, 1].map(() => new EtcdStore({ endpoints: etcd.endpoints, prefix: 'dtr-replicas/' }));
    const cas = new CertificateAuthorityService(stores[0]!, kek);
    await cas.bootstrap(24 * 3600 * 1000);
    await new Directory(stores[0]!).create({ name: 'alice', password: alice[1] });
    // Replicas behind one address share the token service name; here the first one's address.
    const ports = [await freePort(), await freePort()];
    for (const [i, store] of stores.entries()) {
      const dtr = await startDtr(
        {
          host: '127.0.0.1',
          port: ports[i]!,
          dataDir: join(dir, 'shared'),
          externalHost: `127.0.0.1:${ports[0]}`,
        },
        { store, kek },
      );
      replicas.push({ dtr });
    }
    for (const repo of ['images', 'conf1', 'conf2']) {
      const res = await dtrRequest(replicas[0]!, 'POST', '/api/v0/repositories/alice', {
        basic: alice,
        body: JSON.stringify({ name: repo }),
      });
      expect(res.status).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) await r.dtr.close();
    for (const s of stores) await s.close();
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    replicas = [];
    stores = [];
  });

  it('serves one registry from either replica', async () => {
    const [a, b] = replicas as [{ dtr: RunningDtr }, { dtr: RunningDtr }];
    const token = await registryToken(a, ['repository:alice/images:pull,push'], alice);
    const digest = await pushImage(b, 'alice/images', ['v1'], token);
    const pulled = await dtrRequest(a, 'GET', '/v2/alice/images/manifests/v1', { bearer: token });
    expect(pulled.status).toBe(200);
    expect(pulled.headers['docker-content-digest']).toBe(digest);

    // A chunked upload: begun on a, continued and finished on b.
    const content = randomBytes(300_000);
    const start = await dtrRequest(a, 'POST', '/v2/alice/images/blobs/uploads/', { bearer: token });
    const first = await dtrRequest(a, 'PATCH', start.headers.location as string, {
      bearer: token,
      body: content.subarray(0, 100_000),
      headers: { 'Content-Range': '0-99999' },
    });
    expect(first.status).toBe(202);
    const second = await dtrRequest(b, 'PATCH', first.headers.location as string, {
      bearer: token,
      body: content.subarray(100_000),
      headers: { 'Content-Range': `100000-${content.length - 1}` },
    });
    expect(second.status).toBe(202);
    expect(second.headers.range).toBe(`0-${content.length - 1}`);
    const done = await dtrRequest(
      b,
      'PUT',
      `${second.headers.location as string}?digest=${sha256(content)}`,
      {
        bearer: token,
      },
    );
    expect(done.status).toBe(201);
    const blob = await dtrRequest(a, 'GET', `/v2/alice/images/blobs/${sha256(content)}`, { bearer: token });
    expect(blob.body.equals(content)).toBe(true);
  });

  it('hands a job whose replica died to another replica once its worker lease expires', async () => {
    // Replica "a" reaches etcd through a proxy this test can cut: a dead replica, as etcd sees it
    // (no more keepalives, no revoke).
    const etcdUrl = new URL(etcd.endpoints[0]!);
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = connect(Number(etcdUrl.port), etcdUrl.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyPort = (proxy.address() as { port: number }).port;
    const prefix = 'dtr-jobs/';
    const storeA = new EtcdStore({ endpoints: [`http://127.0.0.1:${proxyPort}`], prefix });
    const storeB = new EtcdStore({ endpoints: etcd.endpoints, prefix });
    const blobs = await new FsBlobStore(join(dir, 'jobs-blobs')).init();
    const runner = (store: Store, workerId: string) =>
      new JobRunner({ store, jobs: new JobStore(store), blobs, workerId, pollMs: 200, leaseSeconds: 3 });
    const a = runner(storeA, 'worker-a');
    const b = runner(storeB, 'worker-b');
    const jobs = new JobStore(storeB);
    try {
      const job = await jobs.create({
        action: 'sleep',
        parameters: { duration: 6 },
        retries: 0,
        capacityMap: {},
        deadline: '',
        stopTimeout: '',
      });
      a.start();
      const waitFor = async (what: string, probe: () => Promise<boolean>, ms = 20_000) => {
        const deadline = Date.now() + ms;
        while (!(await probe())) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await waitFor('a to claim the job', async () => (await jobs.get(job.id))?.workerID === 'worker-a');
      // b runs from here on, and must leave the job alone while a's lease is alive.
      b.start();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await jobs.get(job.id)).toMatchObject({ status: 'running', workerID: 'worker-a' });

      proxy.close();
      for (const socket of sockets) socket.destroy();
      const cutAt = Date.now();
      await waitFor('b to take the job over', async () => (await jobs.get(job.id))?.workerID === 'worker-b');
      // Not before a's lease (3 s) could have expired.
      expect(Date.now() - cutAt).toBeGreaterThanOrEqual(2_000);
      await waitFor(
        'the job to finish on b',
        async () => (await jobs.get(job.id))?.status === 'done',
        30_000,
      );
      expect(await jobs.get(job.id)).toMatchObject({ status: 'done', workerID: 'worker-b' });
      const lines = (await jobs.logs(job.id)).map((l) => l.data);
      expect(lines).toContain('worker worker-b took the job over from worker-a, whose lease expired');
    } finally {
      await b.stop();
      await a.stop();
      await storeA.close().catch(() => undefined);
      await storeB.close();
      proxy.close();
    }
  }, 90_000);

  it('passes the OCI conformance suite on etcd', async () => {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, replicas[1]!.dtr.caPem);
    const resultsDir = mkdtempSync(join(dir, 'results-'));
    const run = await runConformance({
      binary: conformanceBinary(),
      registryHost: replicas[1]!.dtr.url.replace('https://', ''),
      caFile,
      username: alice[0],
      password: alice[1],
      repos: ['alice/conf1', 'alice/conf2'],
      resultsDir,
    });
    if (run.status !== 0) console.log(run.output.slice(-20000));
    expect(run.count('FAIL')).toBe(0);
    expect(run.count('Error')).toBe(0);
    expect(run.count('Pass')).toBeGreaterThan(800);
    expect(run.status).toBe(0);
  }, 300_000);
});

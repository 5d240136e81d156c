// Two DTR replicas on one real etcd (as they would share ucp-kv) and one blob directory: a token
// from one works on the other, an upload started on one finishes on the other (the running hash
// is rebuilt from storage), content pushed through one is pulled through the other, and the OCI
// conformance suite passes against a replica whose metadata lives in etcd.
import { CertificateAuthorityService } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { EtcdStore, type Store } from '@orca/store';
import { freePort, startEtcd, type EtcdCluster } from '@orca/testing';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

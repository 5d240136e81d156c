// Garbage collection through DTR 2.5's jobs API: exactly the unreferenced blobs go, every image
// still pulls, and pushes running during several GCs all complete and pull afterwards.
import { checkResponse } from '@orca/api';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dtrRequest, pushBlob, registryToken, sha256, startTestDtr, type TestDtr } from './test-dtr.js';

const IMAGE = 'application/vnd.oci.image.manifest.v1+json';

describe('DTR garbage collection jobs', () => {
  let dtr: TestDtr;
  let token: string;
  const root: [string, string] = ['root', 'root-password'];
  const bob: [string, string] = ['bob', 'bob-password'];
  const repo = 'root/app';

  const blobFile = (digest: string) =>
    join(dtr.dir, 'data', 'registry', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));

  /** Pushes config + layers (shared layer content dedupes) under `tag`; returns all digests. */
  let blobUnknownRetries = 0;

  /** A client's retry: a GC that swept a blob between its upload and the manifest PUT answers
   *  MANIFEST_BLOB_UNKNOWN, and the client uploads the blobs again. */
  async function pushRetrying(tag: string, layers: string[]) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await push(tag, layers);
      } catch (error) {
        if (attempt >= 3 || !/MANIFEST_BLOB_UNKNOWN|: 429/.test((error as Error).message)) throw error;
        blobUnknownRetries++;
      }
    }
  }

  async function push(tag: string, layers: string[]) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
    const blobs = [config, ...layers.map((l) => Buffer.from(l))];
    for (const blob of blobs) {
      const status = await pushBlob(dtr, repo, blob, token);
      if (status !== 201) throw new Error(`blob push ${tag}: ${status}`);
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: IMAGE,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: blobs.slice(1).map((b) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha256(b),
        size: b.length,
      })),
    });
    const res = await dtrRequest(dtr, 'PUT', `/v2/${repo}/manifests/${tag}`, {
      bearer: token,
      body: manifest,
      headers: { 'Content-Type': IMAGE },
    });
    if (res.status !== 201) throw new Error(`manifest push ${tag}: ${res.status} ${res.text}`);
    return { manifest: sha256(manifest), blobs: blobs.map((b) => sha256(b)) };
  }

  /** Pulls by tag: the manifest and every blob, each checked against its digest. */
  async function pull(tag: string) {
    const res = await dtrRequest(dtr, 'GET', `/v2/${repo}/manifests/${tag}`, {
      bearer: token,
      headers: { Accept: IMAGE },
    });
    expect(res.status).toBe(200);
    const m = res.json<{ config: { digest: string }; layers: { digest: string }[] }>();
    for (const digest of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
      const blob = await dtrRequest(dtr, 'GET', `/v2/${repo}/blobs/${digest}`, { bearer: token });
      expect(blob.status).toBe(200);
      expect(sha256(blob.body)).toBe(digest);
    }
  }

  async function runGc(gracePeriodSeconds: number) {
    const created = await dtrRequest(dtr, 'POST', '/api/v0/jobs', {
      basic: root,
      body: JSON.stringify({ action: 'onlinegc', parameters: { gracePeriodSeconds } }),
    });
    expect(created.status).toBe(202);
    expect(checkResponse('dtr-2.5', 'post', '/api/v0/jobs', 202, created.json())).toEqual([]);
    const { id } = created.json<{ id: string }>();
    for (let i = 0; i < 300; i++) {
      const job = await dtrRequest(dtr, 'GET', `/api/v0/jobs/${id}`, { basic: root });
      expect(checkResponse('dtr-2.5', 'get', '/api/v0/jobs/{jobID}', 200, job.json())).toEqual([]);
      const status = job.json<{ status: string }>().status;
      if (status === 'done') return id;
      expect(['waiting', 'running']).toContain(status);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`gc job ${id} did not finish`);
  }

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser(...root, true);
    await dtr.createUser(...bob);
    expect(
      (await dtrRequest(dtr, 'POST', '/api/v0/repositories/root', { basic: root, body: '{"name":"app"}' }))
        .status,
    ).toBe(201);
    token = await registryToken(dtr, [`repository:${repo}:pull,push,delete`], root);
  }, 60_000);

  afterAll(async () => {
    await dtr?.close();
  });

  it('frees exactly the blobs no manifest references', async () => {
    const keep = await push('keep', ['shared layer', 'keep layer']);
    const drop = await push('drop', ['shared layer', 'drop layer']);
    const orphan = Buffer.from('never referenced');
    expect(await pushBlob(dtr, repo, orphan, token)).toBe(201);
    const del = await dtrRequest(dtr, 'DELETE', `/v2/${repo}/manifests/${drop.manifest}`, { bearer: token });
    expect(del.status).toBe(202);

    const id = await runGc(0);
    const gone = [drop.manifest, drop.blobs[0]!, drop.blobs[2]!, sha256(orphan)];
    for (const digest of gone) expect(existsSync(blobFile(digest))).toBe(false);
    for (const digest of [keep.manifest, ...keep.blobs]) expect(existsSync(blobFile(digest))).toBe(true);
    await pull('keep');
    const head = await dtrRequest(dtr, 'HEAD', `/v2/${repo}/blobs/${sha256(orphan)}`, { bearer: token });
    expect(head.status).toBe(404);

    const logs = await dtrRequest(dtr, 'GET', `/api/v0/jobs/${id}/logs`, { basic: root });
    expect(logs.status).toBe(200);
    expect(checkResponse('dtr-2.5', 'get', '/api/v0/jobs/{jobID}/logs', 200, logs.json())).toEqual([]);
    const lines = logs.json<{ data: string }[]>().map((l) => l.data);
    for (const digest of gone) expect(lines).toContain(`gc: swept ${digest}`);

    const listed = await dtrRequest(dtr, 'GET', '/api/v0/jobs?action=onlinegc&limit=5', { basic: root });
    expect(checkResponse('dtr-2.5', 'get', '/api/v0/jobs', 200, listed.json())).toEqual([]);
    expect(listed.json<{ jobs: { id: string; status: string }[] }>().jobs).toEqual([
      expect.objectContaining({ id, status: 'done' }),
    ]);
    // The re-pushed orphan comes back: a swept digest can be uploaded again.
    expect(await pushBlob(dtr, repo, orphan, token)).toBe(201);
  }, 60_000);

  it('keeps every push that runs while several GCs run', async () => {
    const pushed: string[] = [];
    let stop = false;
    const pusher = (async () => {
      for (let i = 0; !stop || i < 5; i++) {
        await pushRetrying(`stream-${i}`, ['shared layer', `unique layer ${i}`]);
        pushed.push(`stream-${i}`);
      }
    })();
    for (let round = 0; round < 4; round++) await runGc(0);
    stop = true;
    await pusher;
    expect(pushed.length).toBeGreaterThanOrEqual(5);
    // Grace 0 makes the race as likely as possible; retries are allowed, dangling manifests are not.
    expect(blobUnknownRetries).toBeLessThan(pushed.length);
    await runGc(0);
    for (const tag of [...pushed, 'keep']) await pull(tag);
  }, 120_000);

  it('refuses non-admins and bad input with DTR errors', async () => {
    const asBob = await dtrRequest(dtr, 'POST', '/api/v0/jobs', { basic: bob, body: '{"action":"gc"}' });
    expect(asBob.status).toBe(403);
    expect(asBob.json()).toEqual({ errors: [expect.objectContaining({ code: 'NOT_AUTHORIZED' })] });
    expect((await dtrRequest(dtr, 'GET', '/api/v0/jobs', {})).status).toBe(401);
    for (const body of [
      '{',
      '[]',
      '{"action":"rm -rf"}',
      '{"action":"gc","parameters":[]}',
      '{"action":"gc","retries":-1}',
    ]) {
      const res = await dtrRequest(dtr, 'POST', '/api/v0/jobs', { basic: root, body });
      expect(res.status).toBe(400);
      expect(res.json<{ errors: { code: string }[] }>().errors[0]!.code).toMatch(
        /^INVALID_(JSON|PARAMETERS)$/,
      );
    }
    expect((await dtrRequest(dtr, 'GET', '/api/v0/jobs?limit=0', { basic: root })).status).toBe(400);
    const missing = await dtrRequest(dtr, 'GET', '/api/v0/jobs/nope', { basic: root });
    expect(missing.status).toBe(404);
    expect((await dtrRequest(dtr, 'GET', '/api/v0/jobs/nope/logs', { basic: root })).status).toBe(404);
    // A job scheduled for later can be canceled, then deleted.
    const later = await dtrRequest(dtr, 'POST', '/api/v0/jobs', {
      basic: root,
      body: JSON.stringify({ action: 'gc', scheduledAt: '2099-01-01T00:00:00Z' }),
    });
    const { id } = later.json<{ id: string }>();
    expect((await dtrRequest(dtr, 'POST', `/api/v0/jobs/${id}/cancel`, { basic: root })).status).toBe(204);
    expect((await dtrRequest(dtr, 'GET', `/api/v0/jobs/${id}`, { basic: root })).json()).toMatchObject({
      status: 'canceled',
    });
    expect((await dtrRequest(dtr, 'DELETE', `/api/v0/jobs/${id}`, { basic: root })).status).toBe(204);
    expect((await dtrRequest(dtr, 'GET', `/api/v0/jobs/${id}`, { basic: root })).status).toBe(404);
  }, 30_000);
});

// orca's DTR registry against Debian's docker-registry (distribution 2.8) on this machine, with
// the same Node client (keep-alive agent): blob push 1 MiB (POST + PUT), blob pull 10 MiB, manifest
// PUT and GET by tag, at 1 and 4 clients; orca with token auth on and off. Reference baseline:
// ../shared/reference/dtr-registry.md §4.1. Prints figures and ratios, asserts nothing.
// orca serves HTTPS only; docker-registry runs plain HTTP as in the baseline (TLS costs orca).
import { CertificateAuthorityService } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { EmbeddedStore } from '@orca/store';
import { freePort } from '@orca/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDtr, type RunningDtr } from '../apps/dtr/src/dtr.js';

const MiB = 1024 * 1024;
const REPO = 'benchadmin/app';
const ADMIN: [string, string] = ['benchadmin', 'bench-admin-password'];

interface Target {
  name: string;
  /** Sends one request; resolves with status, headers and the body length read. */
  send(
    method: string,
    path: string,
    body?: Buffer,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: IncomingMessage['headers']; bytes: number; text: string }>;
  close(): Promise<void>;
}

function client(base: string, ca: string | undefined, bearer: () => string | undefined): Target['send'] {
  const url = new URL(base);
  const https = url.protocol === 'https:';
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: 8, ca })
    : new HttpAgent({ keepAlive: true, maxSockets: 8 });
  return (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const token = bearer();
      const all: Record<string, string> = { ...headers };
      if (token) all.Authorization = `Bearer ${token}`;
      if (body) all['Content-Length'] = String(body.length);
      const options = { hostname: url.hostname, port: url.port, path, method, headers: all, agent };
      const req = (https ? httpsRequest : httpRequest)(options, (res) => {
        let bytes = 0;
        const small: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes < 64 * 1024) small.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            bytes,
            text: Buffer.concat(small).toString('utf8'),
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function pushBlob(send: Target['send'], blob: Buffer): Promise<void> {
  const started = await send('POST', `/v2/${REPO}/blobs/uploads/`);
  if (started.status !== 202) throw new Error(`upload start: ${started.status} ${started.text}`);
  const location = new URL(String(started.headers.location), 'http://x');
  location.searchParams.set('digest', digestOf(blob));
  const done = await send('PUT', `${location.pathname}${location.search}`, blob, {
    'Content-Type': 'application/octet-stream',
  });
  if (done.status !== 201) throw new Error(`upload finish: ${done.status} ${done.text}`);
}

function manifestFor(config: Buffer, layer: Buffer, n: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: digestOf(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length },
      ],
      annotations: { n: String(n) },
    }),
  );
}

/** Runs `total` operations over `clients` workers; returns operations per second. */
async function measure(clients: number, total: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < total; i = next++) await op(i);
    }),
  );
  return total / (Number(process.hrtime.bigint() - started) / 1e9);
}

interface Row {
  name: string;
  clients: number;
  unit: string;
  value: number;
}

async function runSuite(target: Target): Promise<Row[]> {
  const { send } = target;
  const rows: Row[] = [];
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(1024);
  const big = randomBytes(10 * MiB);
  for (const b of [config, layer, big]) await pushBlob(send, b);
  const bigDigest = digestOf(big);
  const manifest = manifestFor(config, layer, 0);
  const put = await send('PUT', `/v2/${REPO}/manifests/latest`, manifest, {
    'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
  });
  if (put.status !== 201) throw new Error(`manifest put: ${put.status} ${put.text}`);
  for (const clients of [1, 4]) {
    const pushes = clients === 1 ? 40 : 80;
    const blobs = Array.from({ length: pushes }, () => randomBytes(MiB));
    rows.push({
      name: 'blob push 1 MiB',
      clients,
      unit: 'push/s',
      value: await measure(clients, pushes, (i) => pushBlob(send, blobs[i]!)),
    });
    const pulls = clients === 1 ? 30 : 60;
    const pullRate = await measure(clients, pulls, async () => {
      const res = await send('GET', `/v2/${REPO}/blobs/${bigDigest}`);
      if (res.status !== 200 || res.bytes !== big.length) throw new Error(`blob pull: ${res.status}`);
    });
    rows.push({ name: 'blob pull 10 MiB', clients, unit: 'MiB/s', value: pullRate * 10 });
    const puts = clients === 1 ? 200 : 400;
    rows.push({
      name: 'manifest PUT',
      clients,
      unit: 'req/s',
      value: await measure(clients, puts, async (i) => {
        const res = await send(
          'PUT',
          `/v2/${REPO}/manifests/t${clients}-${i}`,
          manifestFor(config, layer, i),
          {
            'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
          },
        );
        if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${res.text}`);
      }),
    });
    const gets = clients === 1 ? 300 : 600;
    rows.push({
      name: 'manifest GET',
      clients,
      unit: 'req/s',
      value: await measure(clients, gets, async () => {
        const res = await send('GET', `/v2/${REPO}/manifests/latest`, undefined, {
          Accept: 'application/vnd.oci.image.manifest.v1+json',
        });
        if (res.status !== 200) throw new Error(`manifest get: ${res.status}`);
      }),
    });
  }
  return rows;
}

async function startOrca(authDisabled: boolean): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-dtr-'));
  const store = new EmbeddedStore({ dir: join(dir, 'store') });
  const kek = randomBytes(32).toString('base64');
  const cas = new CertificateAuthorityService(store, kek);
  await cas.bootstrap(24 * 3600 * 1000);
  await new Directory(store).create({ name: ADMIN[0], password: ADMIN[1], isAdmin: true });
  const dtr: RunningDtr = await startDtr(
    {
      host: '127.0.0.1',
      port: await freePort(),
      dataDir: join(dir, 'data'),
      registryAuthDisabled: authDisabled,
    },
    { store, kek, cas, log: { error: () => undefined } },
  );
  const basic = `Basic ${Buffer.from(ADMIN.join(':')).toString('base64')}`;
  const plain = client(dtr.url, dtr.caPem, () => undefined);
  const created = await plain('POST', '/api/v0/repositories/benchadmin', Buffer.from('{"name":"app"}'), {
    Authorization: basic,
    'Content-Type': 'application/json',
  });
  if (created.status !== 201) throw new Error(`create repository: ${created.status} ${created.text}`);
  let token: string | undefined;
  if (!authDisabled) {
    const query = new URLSearchParams({ service: dtr.registryHost, scope: `repository:${REPO}:pull,push` });
    const res = await plain('GET', `/auth/token?${query}`, undefined, { Authorization: basic });
    token = (JSON.parse(res.text) as { token: string }).token;
  }
  return {
    name: authDisabled ? 'orca (auth off)' : 'orca (token auth)',
    send: client(dtr.url, dtr.caPem, () => token),
    async close() {
      await dtr.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startDockerRegistry(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-registry-'));
  const address = `127.0.0.1:${await freePort()}`;
  const configFile = join(dir, 'config.yml');
  writeFileSync(
    configFile,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${address}\n`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', configFile], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${address}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (i > 100) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: 'docker-registry',
    send: client(`http://${address}`, undefined, () => undefined),
    async close() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function suiteOf(start: () => Promise<Target>): Promise<{ name: string; rows: Row[] }> {
  const target = await start();
  try {
    return { name: target.name, rows: await runSuite(target) };
  } finally {
    await target.close();
  }
}

export async function benchRegistry(): Promise<void> {
  console.log('\nregistry: orca DTR vs Debian docker-registry, same Node client (keep-alive)');
  let reference: { name: string; rows: Row[] };
  try {
    reference = await suiteOf(startDockerRegistry);
  } catch (error) {
    console.log(`  docker-registry unavailable: ${(error as Error).message}`);
    return;
  }
  const orca = [await suiteOf(() => startOrca(true)), await suiteOf(() => startOrca(false))];
  for (const [i, row] of reference.rows.entries()) {
    const label = `${row.name} c=${row.clients}`.padEnd(24);
    const figures = orca
      .map((o) => {
        const value = o.rows[i]!.value;
        return `${o.name} ${value.toFixed(1)} (${(value / row.value).toFixed(2)}x)`;
      })
      .join('   ');
    console.log(`  ${label} docker-registry ${row.value.toFixed(1)} ${row.unit}   ${figures}`);
  }
}

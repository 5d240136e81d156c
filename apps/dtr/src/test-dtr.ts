// A DTR for tests: an embedded store in a temporary directory, orca's CAs, eNZi accounts, and DTR
// serving on a free loopback port. Used by the DTR integration tests only.
import { CertificateAuthorityService } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { EmbeddedStore } from '@orca/store';
import { freePort } from '@orca/testing';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDtr, type RunningDtr } from './dtr.js';

export interface TestDtr {
  dtr: RunningDtr;
  store: EmbeddedStore;
  directory: Directory;
  dir: string;
  /** The cluster CA bundle, written to a file (for SSL_CERT_FILE, certs.d, skopeo). */
  caFile: string;
  /** The key-encryption key sealing DTR's signing keys (to mint tokens the way another replica would). */
  kek: string;
  createUser(name: string, password: string, isAdmin?: boolean): Promise<void>;
  createOrg(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTestDtr(options: { tokenTtlSeconds?: number } = {}): Promise<TestDtr> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-dtr-'));
  const store = new EmbeddedStore({ dir: join(dir, 'store') });
  const kek = randomBytes(32).toString('base64');
  const cas = new CertificateAuthorityService(store, kek);
  await cas.bootstrap(24 * 3600 * 1000);
  const directory = new Directory(store);
  const dtr = await startDtr(
    {
      host: '127.0.0.1',
      port: await freePort(),
      dataDir: join(dir, 'data'),
      tokenTtlSeconds: options.tokenTtlSeconds,
    },
    { store, kek, cas },
  );
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, dtr.caPem);
  return {
    dtr,
    store,
    directory,
    dir,
    caFile,
    kek,
    async createUser(name, password, isAdmin = false) {
      await directory.create({ name, password, isAdmin });
    },
    async createOrg(name) {
      await directory.create({ name, isOrg: true });
    },
    async close() {
      await dtr.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Anything that names a running DTR (a TestDtr, or one more replica). */
export interface DtrEndpoint {
  dtr: Pick<RunningDtr, 'url' | 'caPem' | 'registryHost'>;
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

/** One HTTPS request to DTR, trusting its CA. */
export function dtrRequest(
  dtr: DtrEndpoint,
  method: string,
  path: string,
  options: {
    headers?: Record<string, string>;
    body?: Buffer | string;
    basic?: [string, string];
    bearer?: string;
  } = {},
): Promise<HttpsResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.basic)
    headers.Authorization = `Basic ${Buffer.from(options.basic.join(':')).toString('base64')}`;
  if (options.bearer) headers.Authorization = `Bearer ${options.bearer}`;
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  if (body) headers['Content-Length'] = String(body.length);
  // The path goes out exactly as given (no URL normalization), so path tricks reach the server.
  const { hostname, port } = new URL(dtr.dtr.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers, ca: dtr.dtr.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const data = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: data,
          text: data.toString('utf8'),
          json: <T>() => JSON.parse(data.toString('utf8')) as T,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A registry token for `scope` from /auth/token (anonymous without credentials). */
export async function registryToken(
  dtr: DtrEndpoint,
  scopes: string[],
  basic?: [string, string],
): Promise<string> {
  const query = new URLSearchParams({ service: dtr.dtr.registryHost });
  for (const s of scopes) query.append('scope', s);
  const res = await dtrRequest(dtr, 'GET', `/auth/token?${query}`, { basic });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`);
  return res.json<{ token: string }>().token;
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Builds (once, cached outside the repository) the OCI conformance suite and returns the binary. */
export function conformanceBinary(): string {
  return execFileSync(join(repoRoot, 'scripts', 'build-oci-conformance.sh'), { encoding: 'utf8' }).trim();
}

export const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Pushes one blob in a single POST; returns the status. */
export async function pushBlob(
  dtr: DtrEndpoint,
  repo: string,
  content: Buffer | string,
  token?: string,
): Promise<number> {
  const res = await dtrRequest(dtr, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(content)}`, {
    bearer: token,
    body: content,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  return res.status;
}

/** Pushes a small OCI image (config + one layer) under `tags`; returns the manifest digest. */
export async function pushImage(
  dtr: DtrEndpoint,
  repo: string,
  tags: string[],
  token: string,
  seed = repo,
): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  for (const blob of [config, layer]) {
    const status = await pushBlob(dtr, repo, blob, token);
    if (status !== 201) throw new Error(`blob push to ${repo}: ${status}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length,
    },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length },
    ],
  });
  for (const tag of tags) {
    const res = await dtrRequest(dtr, 'PUT', `/v2/${repo}/manifests/${tag}`, {
      bearer: token,
      body: manifest,
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (res.status !== 201) throw new Error(`manifest push to ${repo}:${tag}: ${res.status} ${res.text}`);
  }
  return sha256(manifest);
}

export interface ConformanceRun {
  status: number | null;
  output: string;
  /** A count from the suite's summary ("Pass", "FAIL", "Error", "Skip"); -1 when absent. */
  count(label: string): number;
}

/**
 * Runs the OCI conformance suite against `registryHost` over HTTPS (verifying `caFile`), with every
 * API and data set on. Asynchronous: the registry under test runs in this same process.
 */
export async function runConformance(options: {
  binary: string;
  registryHost: string;
  caFile: string;
  username: string;
  password: string;
  repos: [string, string];
  resultsDir: string;
}): Promise<ConformanceRun> {
  const child = spawn(options.binary, [], {
    cwd: options.resultsDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SSL_CERT_FILE: options.caFile,
      OCI_REGISTRY: options.registryHost,
      OCI_TLS: 'enabled',
      OCI_REPO1: options.repos[0],
      OCI_REPO2: options.repos[1],
      OCI_USERNAME: options.username,
      OCI_PASSWORD: options.password,
      OCI_VERSION: '1.1',
      OCI_RESULTS_DIR: options.resultsDir,
      OCI_API_PULL: 'true',
      OCI_API_PUSH: 'true',
      OCI_API_BLOBS_DELETE: 'true',
      OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
      OCI_API_BLOBS_DIGEST_HEADER: 'true',
      OCI_API_MANIFESTS_DELETE: 'true',
      OCI_API_MANIFESTS_DIGEST_HEADER: 'true',
      OCI_API_TAGS_DELETE: 'true',
      OCI_API_TAGS_LIST: 'true',
      OCI_API_REFERRER: 'true',
      OCI_DATA_SHA512: 'true',
    },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  clearTimeout(timer);
  return {
    status,
    output,
    count: (label) => Number(new RegExp(`${label}\\.+:\\s+(\\d+)`).exec(output)?.[1] ?? -1),
  };
}

// orca's DTR registry against Debian's docker-registry (distribution 2.8) on this machine, with
// the same Node client (keep-alive agent): blob push 1 MiB (POST + PUT), blob pull 10 MiB, manifest
// PUT and GET by tag, at 1 and 4 clients; token auth off and on for both. With auth on, each side
// verifies a bearer JWT on every request: docker-registry with its own `auth: token` (an ES256
// token signed by a key in its rootcertbundle), orca with its token service. Auth-off rows compare
// with docker-registry without auth, auth-on rows with docker-registry with token auth.
// Reference baseline: ../shared/reference/dtr-registry.md §4.1. Prints figures and ratios, asserts nothing.
// Like with like: both servers run in their own process (the client's work never shares orca's
// event loop) and both serve HTTPS with a P-256 certificate from the same kind of CA, keep-alive,
// no access log. (The §4.1 baseline is docker-registry over plain HTTP, so its figures are higher.)
import 'reflect-metadata';
import { CertificateAuthorityService } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { generateKeyPair } from '@orca/pki';
import { libtrustKeyId, signJwt } from '@orca/registry';
import { EmbeddedStore } from '@orca/store';
import { freePort } from '@orca/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startDtr } from '../apps/dtr/src/dtr.js';

/** Set in the child process that serves orca's DTR: "on" or "off" (token auth). */
const CHILD_ENV = 'ORCA_BENCH_DTR_CHILD';

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
  /** The server process, whose CPU time is read from /proc. */
  pid: number | undefined;
  close(): Promise<void>;
}

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc is missing. */
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS_PER_SECOND = 100;

function client(base: string, ca: string, bearer: () => string | undefined): Target['send'] {
  const url = new URL(base);
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 8, ca });
  return (method, path, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const token = bearer();
      const all: Record<string, string> = { ...headers };
      if (token) all.Authorization = `Bearer ${token}`;
      if (body) all['Content-Length'] = String(body.length);
      const options = { hostname: url.hostname, port: url.port, path, method, headers: all, agent };
      const req = httpsRequest(options, (res) => {
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

interface Scenario {
  name: string;
  clients: number;
  unit: string;
  /** Operations per measurement (for the server's CPU time per operation). */
  ops: number;
  /** Measures once against one target; the result is in `unit`. */
  run(send: Target['send']): Promise<number>;
}

const IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Seeds a target (config, layer, a 10 MiB blob and a tagged manifest); returns the scenarios. */
function scenarios(): { seed(send: Target['send']): Promise<void>; list: Scenario[] } {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(1024);
  const big = randomBytes(10 * MiB);
  const bigDigest = digestOf(big);
  let round = 0;
  const list: Scenario[] = [];
  for (const clients of [1, 4]) {
    const pushes = clients === 1 ? 40 : 80;
    list.push({
      name: 'blob push 1 MiB',
      clients,
      unit: 'push/s',
      ops: pushes,
      run: (send) => {
        // Fresh content every time: a blob the registry already has would not be written again.
        const blobs = Array.from({ length: pushes }, () => randomBytes(MiB));
        return measure(clients, pushes, (i) => pushBlob(send, blobs[i]!));
      },
    });
    const pulls = clients === 1 ? 30 : 60;
    list.push({
      name: 'blob pull 10 MiB',
      clients,
      unit: 'MiB/s',
      ops: pulls,
      run: async (send) =>
        10 *
        (await measure(clients, pulls, async () => {
          const res = await send('GET', `/v2/${REPO}/blobs/${bigDigest}`);
          if (res.status !== 200 || res.bytes !== big.length) throw new Error(`blob pull: ${res.status}`);
        })),
    });
    const puts = clients === 1 ? 200 : 400;
    list.push({
      name: 'manifest PUT',
      clients,
      unit: 'req/s',
      ops: puts,
      run: (send) => {
        const r = round++;
        return measure(clients, puts, async (i) => {
          const res = await send(
            'PUT',
            `/v2/${REPO}/manifests/t${clients}-${r}-${i}`,
            manifestFor(config, layer, i),
            {
              'Content-Type': IMAGE_MANIFEST,
            },
          );
          if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${res.text}`);
        });
      },
    });
    const gets = clients === 1 ? 300 : 600;
    list.push({
      name: 'manifest GET',
      clients,
      unit: 'req/s',
      ops: gets,
      run: (send) =>
        measure(clients, gets, async () => {
          const res = await send('GET', `/v2/${REPO}/manifests/latest`, undefined, {
            Accept: IMAGE_MANIFEST,
          });
          if (res.status !== 200) throw new Error(`manifest get: ${res.status}`);
        }),
    });
  }
  return {
    async seed(send) {
      for (const b of [config, layer, big]) await pushBlob(send, b);
      const put = await send('PUT', `/v2/${REPO}/manifests/latest`, manifestFor(config, layer, 0), {
        'Content-Type': IMAGE_MANIFEST,
      });
      if (put.status !== 201) throw new Error(`manifest put: ${put.status} ${put.text}`);
    },
    list,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** In the child process: serves orca's DTR on a fresh store, prints where, runs until stdin closes. */
async function serveOrca(authDisabled: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-dtr-'));
  const store = new EmbeddedStore({ dir: join(dir, 'store') });
  const kek = randomBytes(32).toString('base64');
  const cas = new CertificateAuthorityService(store, kek);
  await cas.bootstrap(24 * 3600 * 1000);
  await new Directory(store).create({ name: ADMIN[0], password: ADMIN[1], isAdmin: true });
  const dtr = await startDtr(
    {
      host: '127.0.0.1',
      port: await freePort(),
      dataDir: join(dir, 'data'),
      registryAuthDisabled: authDisabled,
    },
    { store, kek, cas, log: { error: (m) => console.error(m) } },
  );
  const stop = async () => {
    await dtr.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.stdin.on('end', () => void stop());
  process.stdin.resume();
  console.log(JSON.stringify({ url: dtr.url, caPem: dtr.caPem, registryHost: dtr.registryHost }));
}

/** Node's flags minus `-e`/`-p` code: a bench started with --eval must not re-run it in the child. */
function withoutEval(execArgv: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const flag = execArgv[i]!;
    if (['-e', '--eval', '-p', '--print'].includes(flag)) i++;
    else if (!/^--(eval|print)=/.test(flag)) kept.push(flag);
  }
  return kept;
}

/** Starts a child process and reads the one JSON line it prints when it serves. */
async function spawnServing(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`orca DTR exited with ${code}`)));
  });
  return { child, line };
}

async function startOrca(authDisabled: boolean): Promise<Target> {
  const { child, line } = await spawnServing(
    process.execPath,
    [...withoutEval(process.execArgv), fileURLToPath(import.meta.url)],
    { ...process.env, [CHILD_ENV]: authDisabled ? 'off' : 'on' },
  );
  const dtr = JSON.parse(line) as { url: string; caPem: string; registryHost: string };
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
    pid: child.pid,
    async close() {
      const exited = new Promise((resolve) =>
        child.exitCode === null ? child.once('exit', resolve) : resolve(0),
      );
      child.stdin!.end();
      await exited;
    },
  };
}

/** docker-registry over HTTPS too, with a P-256 certificate from a CA made like orca's; with
 *  `tokenAuth`, its own token auth (distribution's `auth: token`) and a token it verifies per request. */
async function startDockerRegistry(tokenAuth: boolean): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-registry-'));
  const address = `127.0.0.1:${await freePort()}`;
  const store = new EmbeddedStore({ dir: join(dir, 'store') });
  const cas = new CertificateAuthorityService(store, randomBytes(32).toString('base64'));
  await cas.bootstrap(24 * 3600 * 1000);
  const key = await generateKeyPair();
  const issued = await (
    await cas.clusterAuthority()
  ).issueServerCertificate({ publicKeyPem: key.publicKeyPem, commonName: 'registry', hosts: ['127.0.0.1'] });
  const caPem = await cas.clusterBundle();
  // The token signing key: distribution trusts the keys of the certificates in rootcertbundle and
  // finds the one a token names by its libtrust key id (the JWT's kid), as orca's tokens carry.
  const signing = await generateKeyPair();
  const signingCert = await (
    await cas.clusterAuthority()
  ).issueServerCertificate({
    publicKeyPem: signing.publicKeyPem,
    commonName: 'token-signer',
    hosts: ['127.0.0.1'],
  });
  await store.close();
  writeFileSync(join(dir, 'token-signer.pem'), signingCert.certPem);
  writeFileSync(join(dir, 'cert.pem'), issued.certPem);
  writeFileSync(join(dir, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, 'config.yml');
  writeFileSync(
    configFile,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      ...(tokenAuth
        ? [
            'auth:',
            '  token:',
            `    realm: https://${address}/auth/token`,
            '    service: bench-registry',
            '    issuer: bench-issuer',
            `    rootcertbundle: ${dir}/token-signer.pem`,
          ]
        : []),
      'http:',
      `  addr: ${address}`,
      '  tls:',
      `    certificate: ${dir}/cert.pem`,
      `    key: ${dir}/key.pem`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', configFile], { stdio: 'ignore' });
  let token: string | undefined;
  if (tokenAuth) {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'bench-issuer',
      sub: ADMIN[0],
      aud: 'bench-registry',
      exp: now + 3600,
      nbf: now - 30,
      iat: now,
      jti: randomBytes(16).toString('hex'),
      access: [{ type: 'repository', name: REPO, actions: ['pull', 'push'] }],
    };
    const kid = libtrustKeyId(createPublicKey(signing.publicKeyPem));
    token = signJwt(claims, kid, createPrivateKey(signing.privateKeyPem));
  }
  const send = client(`https://${address}`, caPem, () => token);
  for (let i = 0; ; i++) {
    const up = await send('GET', '/v2/').then(
      (r) => {
        if (r.status === 401) throw new Error(`docker-registry refused the bench token: ${r.text}`);
        return r.status === 200;
      },
      () => false,
    );
    if (up) break;
    if (i > 100) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: tokenAuth ? 'docker-registry (token auth)' : 'docker-registry',
    send,
    pid: child.pid,
    async close() {
      const exited = new Promise((resolve) =>
        child.exitCode === null ? child.once('exit', resolve) : resolve(0),
      );
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rounds per scenario (the median is printed); targets take turns so machine noise hits all. */
const ROUNDS = Math.max(1, Number(process.env.ORCA_BENCH_REGISTRY_ROUNDS ?? 3));

/** Scenarios to run (a regex on "<name> c=<clients>"), for profiling one row. */
const ONLY = new RegExp(process.env.ORCA_BENCH_REGISTRY_ONLY ?? '');

export async function benchRegistry(): Promise<void> {
  console.log(
    '\nregistry: orca DTR vs Debian docker-registry, each in its own process, both HTTPS, same Node client (keep-alive);',
  );
  console.log(
    `  median of ${ROUNDS} interleaved rounds; server CPU time per operation from /proc; auth on = token auth on both sides`,
  );
  // Pairs compared row by row: [reference, orca] with auth off, then with auth on.
  const targets: Target[] = [];
  try {
    try {
      targets.push(await startDockerRegistry(false), await startDockerRegistry(true));
    } catch (error) {
      console.log(`  docker-registry unavailable: ${(error as Error).message}`);
      return;
    }
    targets.push(await startOrca(true), await startOrca(false));
    const pairs: [number, number][] = [
      [0, 2],
      [1, 3],
    ];
    const { seed, list } = scenarios();
    for (const target of targets) await seed(target.send);
    for (const scenario of list.filter((s) => ONLY.test(`${s.name} c=${s.clients}`))) {
      const samples: number[][] = targets.map(() => []);
      const cpu: number[][] = targets.map(() => []);
      for (let round = 0; round < ROUNDS; round++)
        for (const [i, target] of targets.entries()) {
          const before = cpuMs(target.pid);
          samples[i]!.push(await scenario.run(target.send));
          const after = cpuMs(target.pid);
          if (before !== undefined && after !== undefined) cpu[i]!.push((after - before) / scenario.ops);
        }
      const values = samples.map(median);
      const cpuPerOp = cpu.map((c) => (c.length > 0 ? `${median(c).toFixed(2)} ms CPU/op` : 'CPU n/a'));
      for (const [auth, [reference, orca]] of pairs.entries()) {
        const label = `${scenario.name} c=${scenario.clients} auth ${auth === 0 ? 'off' : 'on '}`.padEnd(32);
        console.log(
          `  ${label} docker-registry ${values[reference]!.toFixed(1)} ${scenario.unit} (${cpuPerOp[reference]})` +
            `   orca ${values[orca]!.toFixed(1)} (${(values[orca]! / values[reference]!).toFixed(2)}x, ${cpuPerOp[orca]})`,
        );
      }
    }
  } finally {
    for (const target of targets) await target.close();
  }
}

const childMode = process.env[CHILD_ENV];
if (childMode !== undefined) await serveOrca(childMode === 'off');

// The Kubernetes front door's cost: a real kube-apiserver (libs/testing) behind orca's front door
// (mutual TLS, UCP authentication, then front-proxy headers to the apiserver), against the same
// calls straight to the apiserver with its own admin client certificate.
//  - `kubectl get pods -o json`-sized list calls over a few hundred pods, at 1 and 16 clients, as
//    plain JSON and gzip-encoded as kubectl asks for them (goal: the front door within 1.3x of
//    direct); clients run in a worker thread (kubectl is its own process), and direct and
//    front-door rounds alternate so that load drifting on the shared machine hits both;
//  - a watch at 1 and 16 watchers: time from a create (made straight to the apiserver either way) to
//    its ADDED event at every watcher, watching directly or through the front door (goal: within
//    1.3x); and a create's own round trip each way;
//  - the authorization webhook's decision latency at a steady 500 decisions a second from a Go
//    net/http client in its own process with kept-alive connections, as the apiserver's webhook
//    client (bench/webhook-client; goal: p99 under 2 ms), on the webhooks' own thread and port as
//    managers run them, on the controller's port, and the same load on a bare HTTPS server in this
//    process: the floor this machine allows right now.
// Prints figures and ratios only; the machine is shared, so they are indications, not limits.
// ORCA_BENCH_SECONDS (per round), ORCA_BENCH_KUBE_ROUNDS, ORCA_BENCH_KUBE_PARTS=list,watch,webhook.
import 'reflect-metadata';
import { Directory } from '@orca/identity';
import { putGrant } from '@orca/rbac';
import { generateKeyPair } from '@orca/pki';
import { freePort, type OrcaKube } from '@orca/testing';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type RequestOptions } from 'node:https';
import { availableParallelism, homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { RunningController } from '../apps/controller/src/controller.js';
import { startControllerWithKube } from '../apps/controller/src/kube/test-kube.js';

const DURATION_MS = Number(process.env.ORCA_BENCH_SECONDS ?? 4) * 1000;
const WARMUP_MS = 1000;
const PODS = Number(process.env.ORCA_BENCH_KUBE_PODS ?? 300);
/** Alternating direct / front-door rounds per list measurement. */
const ROUNDS = Number(process.env.ORCA_BENCH_KUBE_ROUNDS ?? 2);
const WATCH_EVENTS = 100;
const DECISIONS_PER_SECOND = 500;
const ADMIN_PASSWORD = 'bench-admin-pass';
/** Which parts to run (comma-separated: list, watch, webhook); all by default. */
const PARTS = new Set((process.env.ORCA_BENCH_KUBE_PARTS ?? 'list,watch,webhook').split(','));

interface Endpoint {
  name: string;
  base: string;
  tls: Pick<RequestOptions, 'ca' | 'cert' | 'key'>;
  /** Sent with every request (the front proxy's X-Remote-* when a client plays the front door). */
  headers?: Record<string, string>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Closed-loop list calls from `clients` keep-alive connections, in a worker thread: kubectl is its
 * own process, so the client's TLS and parsing must not share the event loop with the front door
 * (the controller runs in this process). Plain CommonJS so the worker needs no module hooks.
 */
const LIST_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { Agent, request } = require('node:https');
const { gunzipSync } = require('node:zlib');
const { url, tls, clients, warmupMs, durationMs, gzip } = workerData;
// As kubectl's Go transport: kept-alive connections, Nagle off.
const agent = new Agent({ keepAlive: true, maxSockets: clients, noDelay: true });
const headers = gzip ? { 'accept-encoding': 'gzip' } : {};
const get = () => new Promise((resolve, reject) => {
  const req = request(url, { ...tls, agent, headers, checkServerIdentity: () => undefined }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      resolve({ status: res.statusCode, body, wire: raw.length });
    });
    res.on('error', reject);
  });
  req.on('error', reject);
  req.end();
});
let bytes = 0;
const run = (until, samples) => Promise.all(Array.from({ length: clients }, async () => {
  while (Date.now() < until) {
    const started = performance.now();
    const reply = await get();
    if (reply.status !== 200) throw new Error('list: ' + reply.status + ' ' + reply.body.toString());
    JSON.parse(reply.body.toString('utf8'));
    bytes = reply.wire;
    samples?.push(performance.now() - started);
  }
}));
(async () => {
  await run(Date.now() + warmupMs);
  const samples = [];
  const started = Date.now();
  await run(started + durationMs, samples);
  const seconds = (Date.now() - started) / 1000;
  agent.destroy();
  parentPort.postMessage({ samples, seconds, bytes });
})().catch((error) => parentPort.postMessage({ error: String(error) }));
`;

async function measureList(
  endpoint: Endpoint,
  path: string,
  clients: number,
  gzip: boolean,
): Promise<{ samples: number[]; seconds: number; bytes: number; cpuMs: number; calls: number }> {
  const cpuBefore = mainThreadCpuMs();
  const started = performance.now();
  const worker = new Worker(LIST_WORKER, {
    eval: true,
    workerData: {
      url: `${endpoint.base}${path}`,
      tls: endpoint.tls,
      clients,
      warmupMs: WARMUP_MS,
      durationMs: DURATION_MS,
      gzip,
    },
  });
  try {
    const result = await new Promise<{
      samples?: number[];
      seconds?: number;
      bytes?: number;
      error?: string;
    }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (result.error || !result.samples) throw new Error(`${endpoint.name}: ${result.error ?? 'no samples'}`);
    return {
      samples: result.samples,
      seconds: result.seconds ?? 1,
      bytes: result.bytes ?? 0,
      // This thread runs the front door (the clients are the worker); warm-up calls included.
      cpuMs: mainThreadCpuMs() - cpuBefore - (idleCpuMsPerSecond * (performance.now() - started)) / 1000,
      calls: (result.samples.length * (WARMUP_MS + DURATION_MS)) / DURATION_MS,
    };
  } finally {
    await worker.terminate();
  }
}

/**
 * Direct and front-door rounds alternate (the machine is shared: load drifts), and each side's
 * samples are pooled over its rounds.
 */
async function compareLists(
  endpoints: readonly Endpoint[],
  path: string,
  clients: number,
  gzip: boolean,
): Promise<{ p50: number; p99: number; rps: number; bytes: number; cpuMsPerCall: number }[]> {
  const pooled = endpoints.map(() => ({ samples: [] as number[], seconds: 0, bytes: 0, cpuMs: 0, calls: 0 }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, endpoint] of endpoints.entries()) {
      const m = await measureList(endpoint, path, clients, gzip);
      pooled[i].samples.push(...m.samples);
      pooled[i].seconds += m.seconds;
      pooled[i].bytes = m.bytes;
      pooled[i].cpuMs += m.cpuMs;
      pooled[i].calls += m.calls;
    }
  }
  return pooled.map(({ samples, seconds, bytes, cpuMs, calls }) => {
    const sorted = samples.sort((a, b) => a - b);
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      rps: sorted.length / seconds,
      bytes,
      cpuMsPerCall: cpuMs / calls,
    };
  });
}

/**
 * `watchers` watches on config maps labelled `run` through one endpoint, and a writer that creates
 * `events` of them one at a time through another: for each create, the time from its start until
 * each watcher has its ADDED event, and the create's own round trip. In a worker thread, as the
 * list clients: the client's TLS and parsing must not queue behind the front door on the
 * controller's event loop (kubectl is its own process). Plain CommonJS so the worker needs no
 * module hooks. With no watchers, only the creates are timed.
 */
const WATCH_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { Agent, request } = require('node:https');
const { watch, writer, run, events, watchers } = workerData;
const namespace = '/api/v1/namespaces/default/configmaps';
const pending = new Map();
const open = () => new Promise((opened, failed) => {
  let buffer = '';
  const req = request(watch.base + namespace + '?watch=true&labelSelector=run%3D' + run,
    { ...watch.tls, headers: watch.headers ?? {}, checkServerIdentity: () => undefined }, (res) => {
      if (res.statusCode !== 200) return failed(new Error('watch: ' + res.statusCode));
      opened(req);
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        buffer += chunk;
        for (let nl = buffer.indexOf('\\n'); nl >= 0; nl = buffer.indexOf('\\n')) {
          const event = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          const create = event.type === 'ADDED' && pending.get(event.object.metadata.name);
          if (!create) continue;
          create.delays.push(now - create.started);
          if (create.delays.length === watchers) create.seen();
        }
      });
    });
  req.on('error', failed);
  req.end();
});
(async () => {
  const opened = await Promise.all(Array.from({ length: watchers }, open));
  // The apiserver's watch cache has registered the watches once their headers are back; a moment more.
  await new Promise((r) => setTimeout(r, 300));
  const agent = new Agent({ keepAlive: true, maxSockets: 1, noDelay: true });
  const create = (name) => new Promise((resolve, reject) => {
    const req = request(writer.base + namespace, { ...writer.tls, agent, method: 'POST', checkServerIdentity: () => undefined,
      headers: { ...(writer.headers ?? {}), 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error('create: ' + res.statusCode + ' ' + body))));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { run } } }));
  });
  const delays = [];
  const creates = [];
  for (let i = 0; i < events; i++) {
    const name = run + '-' + i;
    const entry = { delays: [], started: 0 };
    const seen = watchers === 0 ? undefined : new Promise((resolve) => (entry.seen = resolve));
    pending.set(name, entry);
    entry.started = performance.now();
    await create(name);
    creates.push(performance.now() - entry.started);
    await seen;
    pending.delete(name);
    delays.push(...entry.delays);
  }
  for (const req of opened) req.destroy();
  agent.destroy();
  parentPort.postMessage({ delays, creates });
})().catch((error) => parentPort.postMessage({ error: String(error) }));
`;

interface WatchSamples {
  delays: number[];
  creates: number[];
}

async function measureWatch(
  watch: Endpoint,
  writer: Endpoint,
  watchers: number,
  run: string,
): Promise<WatchSamples> {
  const worker = new Worker(WATCH_WORKER, {
    eval: true,
    workerData: { watch, writer, run, events: WATCH_EVENTS, watchers },
  });
  try {
    const result = await new Promise<Partial<WatchSamples> & { error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (result.error || !result.delays || !result.creates)
      throw new Error(`${watch.name}: ${result.error ?? 'no samples'}`);
    return { delays: result.delays, creates: result.creates };
  } finally {
    await worker.terminate();
  }
}

/**
 * Rounds alternate between the endpoints (load drifts on the shared machine) after a warm-up
 * round each (connections, the front door's paths compiled); samples pooled per endpoint.
 */
async function compareWatches(
  pairs: readonly { watch: Endpoint; writer: Endpoint }[],
  watchers: number,
  tag: string,
): Promise<WatchSamples[]> {
  const pooled = pairs.map((): WatchSamples => ({ delays: [], creates: [] }));
  for (let round = -1; round < ROUNDS; round++) {
    for (const [i, { watch, writer }] of pairs.entries()) {
      const m = await measureWatch(watch, writer, watchers, `${tag}-${i}-${round < 0 ? 'warmup' : round}`);
      if (round < 0) continue;
      pooled[i].delays.push(...m.delays);
      pooled[i].creates.push(...m.creates);
    }
  }
  for (const p of pooled) {
    p.delays.sort((a, b) => a - b);
    p.creates.sort((a, b) => a - b);
  }
  return pooled;
}

/**
 * Open-loop SubjectAccessReviews at a fixed rate from bench/webhook-client (Go's net/http, as the
 * apiserver's webhook client is; its own process, as the apiserver is): the latency of each
 * decision. Built once into the cache beside the Kubernetes binaries, keyed by its source.
 */
function webhookClient(): string {
  const source = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'webhook-client');
  const files = ['go.mod', 'main.go'].map((name) => readFileSync(join(source, name)));
  const hash = createHash('sha256');
  for (const file of files) hash.update(file);
  const binary = join(
    process.env.XDG_CACHE_HOME || join(homedir(), '.cache'),
    'orca',
    'bench',
    `webhook-client-${hash.digest('hex').slice(0, 16)}`,
  );
  if (!existsSync(binary)) {
    mkdirSync(dirname(binary), { recursive: true });
    const temp = `${binary}.tmp-${process.pid}`;
    execFileSync('go', ['build', '-trimpath', '-o', temp, '.'], {
      cwd: source,
      env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    renameSync(temp, binary);
  }
  return binary;
}

function runWebhookClient(
  settings: Record<string, unknown>,
): Promise<{ samples: number[]; allowed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(webhookClient(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`webhook client: ${err.trim() || `exit ${code}`}`));
      try {
        resolve(JSON.parse(out) as { samples: number[]; allowed: number });
      } catch (error) {
        reject(error as Error);
      }
    });
    child.stdin.end(JSON.stringify(settings));
  });
}

/** CPU time of this process's main thread (Linux: /proc; NaN elsewhere), in ms. */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name: state is field 3, utime 14, stime 15 (clock ticks of 10 ms).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * The main thread's CPU when nothing is asked of it (the controller's own loops), in ms per second:
 * subtracted from the per-call figures.
 */
let idleCpuMsPerSecond = 0;
async function measureIdleCpu(): Promise<void> {
  const before = mainThreadCpuMs();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, 3000));
  idleCpuMsPerSecond = ((mainThreadCpuMs() - before) * 1000) / (performance.now() - started);
}

async function measureDecisions(
  url: string,
  tls: Endpoint['tls'],
  users: string[],
): Promise<{
  p50: number;
  p99: number;
  max: number;
  sent: number;
  allowed: number;
  busyUs: number;
  /** Decisions that took longer than the 2 ms goal. */
  over2ms: number;
  /** The server thread's event-loop delay p99 (ms): how long it was kept from answering at all. */
  loopDelayP99: number;
}> {
  const verbs = ['get', 'list', 'create', 'delete', 'watch'];
  const resources = ['pods', 'deployments', 'services', 'secrets'];
  const reviews = Array.from({ length: 997 }, (_, i) =>
    JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: users[i % users.length],
        groups: ['system:authenticated'],
        resourceAttributes: {
          namespace: i % 3 === 0 ? 'default' : `ns-${i % 7}`,
          verb: verbs[i % verbs.length],
          resource: resources[i % resources.length],
          group: i % 4 === 1 ? 'apps' : '',
          version: 'v1',
        },
      },
    }),
  );
  const total = Math.round((DECISIONS_PER_SECOND * DURATION_MS) / 1000);
  // This thread's CPU time (the server side; the client is its own process): a figure that the shared
  // machine's load disturbs far less than latency.
  const cpuBefore = mainThreadCpuMs();
  const started = performance.now();
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  try {
    const result = await runWebhookClient({
      url,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      reviews,
      rate: DECISIONS_PER_SECOND,
      // Warm-up at the same rate first (3 s: connections opened, and V8 done compiling the hot
      // paths on 2 shared cores; measured from 1 s, the first runs' tails were the compiler's).
      warmup: 3 * DECISIONS_PER_SECOND,
      total,
    });
    const cpuMs = mainThreadCpuMs() - cpuBefore - (idleCpuMsPerSecond * (performance.now() - started)) / 1000;
    const sorted = result.samples.sort((a, b) => a - b);
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? NaN,
      sent: total,
      allowed: result.allowed,
      busyUs: (cpuMs * 1000) / (total + 3 * DECISIONS_PER_SECOND),
      over2ms: sorted.filter((ms) => ms > 2).length,
      loopDelayP99: loopDelay.percentile(99) / 1e6,
    };
  } finally {
    loopDelay.disable();
  }
}

async function bundleTls(orca: OrcaKube<RunningController>, ca: string): Promise<Endpoint['tls']> {
  const files = await orca.clientBundle('admin', ADMIN_PASSWORD);
  const text = (name: string) => {
    const file = files[name];
    if (file === undefined) throw new Error(`client bundle has no ${name}`);
    return file;
  };
  return { ca, cert: text('cert.pem'), key: text('key.pem') };
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

export async function benchKube(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-kube-'));
  let orca: OrcaKube<RunningController> | undefined;
  try {
    // The apiserver as a manager runs it: the controller's authorization and admission webhooks.
    orca = await startControllerWithKube(dir, {
      ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
      // The webhooks' own thread, as managers run it (any free port here).
      ORCA_KUBE_WEBHOOK_PORT: '0',
    });
    const { controller, cluster } = orca;
    const clusterCa = orca.clusterCaPem;
    // The webhook's caller: the cluster-CA client certificate the apiserver is given.
    const webhookTls = { ca: clusterCa, ...orca.webhookClient };

    const direct: Endpoint = {
      name: 'apiserver direct',
      base: cluster.server,
      tls: { ca: cluster.ca.certPem, cert: cluster.admin.certPem, key: cluster.admin.keyPem },
    };
    const frontDoor: Endpoint = {
      name: 'orca front door',
      base: orca.frontDoor,
      tls: await bundleTls(orca, clusterCa),
    };

    // A few hundred pods (the scheduler binds them to the kwok node, kwok runs them).
    for (let i = 0; i < PODS; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, PODS - i) }, async (_, j) => {
          const reply = await cluster.request('POST', '/api/v1/namespaces/default/pods', {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: `bench-${i + j}`, labels: { app: 'bench' } },
            spec: { containers: [{ name: 'c', image: 'nginx:alpine' }] },
          });
          if (reply.status !== 201) throw new Error(`create pod: ${reply.status} ${reply.body}`);
        }),
      );
    }
    // Let the scheduler and kwok settle so both sides list the same objects.
    await new Promise((r) => setTimeout(r, 5000));

    const listPath = '/api/v1/namespaces/default/pods?limit=500';
    await measureIdleCpu();
    console.log(`controller main thread at rest: ${idleCpuMsPerSecond.toFixed(0)} ms CPU per second`);
    if (PARTS.has('list'))
      console.log(
        `kube list (GET ${listPath}, ${PODS} pods, ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s each side):`,
      );
    // Plain JSON, and gzip as kubectl asks for it (client-go's transport sends Accept-Encoding: gzip;
    // the apiserver compresses large lists): the front door passes either through untouched.
    for (const gzip of PARTS.has('list') ? [false, true] : []) {
      for (const clients of [1, 16]) {
        const [viaDirect, viaFrontDoor] = await compareLists([direct, frontDoor], listPath, clients, gzip);
        const label = `${String(clients).padStart(2)} clients ${gzip ? 'gzip' : 'json'}`;
        for (const [name, m] of [
          [direct.name, viaDirect],
          [frontDoor.name, viaFrontDoor],
        ] as const)
          console.log(
            `  ${label}  ${name.padEnd(18)} p50 ${fmt(m.p50)}  p99 ${fmt(m.p99)}  ${m.rps.toFixed(0)} req/s  ${(m.bytes / 1024).toFixed(0)} KiB`,
          );
        console.log(
          `  ${label}  ratio front door / direct: p50 ${(viaFrontDoor.p50 / viaDirect.p50).toFixed(2)}x  p99 ${(viaFrontDoor.p99 / viaDirect.p99).toFixed(2)}x  (goal within 1.3x); front door CPU ${viaFrontDoor.cpuMsPerCall.toFixed(2)} ms per call`,
        );
      }
    }
    if (PARTS.has('watch')) {
      // A watch's own latency: the same writer (straight to the apiserver) makes every change, and
      // the watchers are reached directly or through the front door.
      console.log(
        `kube watch (create → ADDED at every watcher, ${WATCH_EVENTS} config maps per round, ${ROUNDS} alternating rounds; the creates go straight to the apiserver both ways):`,
      );
      for (const watchers of [1, 16]) {
        const [viaDirect, viaFrontDoor] = await compareWatches(
          [
            { watch: direct, writer: direct },
            { watch: frontDoor, writer: direct },
          ],
          watchers,
          `watch${watchers}`,
        );
        const label = `${String(watchers).padStart(2)} watchers`;
        for (const [name, m] of [
          [direct.name, viaDirect],
          [frontDoor.name, viaFrontDoor],
        ] as const)
          console.log(
            `  ${label}  ${name.padEnd(18)} p50 ${fmt(percentile(m.delays, 50))}  p99 ${fmt(percentile(m.delays, 99))}`,
          );
        console.log(
          `  ${label}  ratio front door / direct: p50 ${(percentile(viaFrontDoor.delays, 50) / percentile(viaDirect.delays, 50)).toFixed(2)}x  p99 ${(percentile(viaFrontDoor.delays, 99) / percentile(viaDirect.delays, 99)).toFixed(2)}x (goal within 1.3x)`,
        );
      }
      // And a write's round trip (what the create itself costs through each way; no goal set): the
      // apiserver reached as the front door reaches it (front-proxy certificate, X-Remote-* headers)
      // without orca in between shows what the apiserver's handling of proxied requests costs.
      const proxied: Endpoint = {
        name: 'apiserver proxied',
        base: cluster.server,
        tls: { ca: cluster.ca.certPem, cert: cluster.frontProxy.certPem, key: cluster.frontProxy.keyPem },
        headers: { 'X-Remote-User': 'admin', 'X-Remote-Group': 'system:masters' },
      };
      const writes = await compareWatches(
        [direct, proxied, frontDoor].map((writer) => ({ watch: direct, writer })),
        0,
        'create',
      );
      console.log(`kube create (a config map's POST round trip, ${ROUNDS} alternating rounds):`);
      for (const [endpoint, m] of [
        [direct, writes[0]],
        [proxied, writes[1]],
        [frontDoor, writes[2]],
      ] as const)
        console.log(
          `  ${endpoint.name.padEnd(18)} p50 ${fmt(percentile(m.creates, 50))}  p99 ${fmt(percentile(m.creates, 99))}`,
        );
      console.log(
        `  ratio front door / direct: p50 ${(percentile(writes[2].creates, 50) / percentile(writes[0].creates, 50)).toFixed(2)}x (a write request; the goal is set for lists and watches)`,
      );
    }
    if (!PARTS.has('webhook')) return;

    // Users for the webhook to decide on, some in a team; grants on a few namespaces to them and
    // to the team (so decisions walk grants, and some are allowed).
    const directory = new Directory(controller.store);
    const users: string[] = ['admin'];
    const org = await directory.create({ name: 'bench-org', isOrg: true });
    const team = await directory.createTeam(org.name, { name: 'bench-team' });
    await putGrant(controller.store, team.id, 'ns-1', 'restrictedcontrol', 'namespace');
    for (let i = 0; i < 20; i++) {
      const user = await directory.create({ name: `bench-user-${i}`, password: `bench-user-${i}-password` });
      if (i % 2 === 0) await directory.setTeamMember(org.name, team.name, user.name, {});
      await putGrant(
        controller.store,
        user.id,
        `ns-${(i + 1) % 7}`,
        i % 3 ? 'viewonly' : 'fullcontrol',
        'namespace',
      );
      users.push(user.name);
    }
    // Latency on 2 shared cores follows the machine's load: print it with the figures.
    const load = () => `load average ${loadavg()[0].toFixed(2)} (1 min, ${availableParallelism()} cores)`;
    // Where a manager's apiserver calls them: the webhooks' own thread and port.
    const webhookUrl = controller.kube?.webhookUrl;
    if (!webhookUrl || webhookUrl === controller.url) throw new Error('the webhook worker is not running');
    const decisions = await measureDecisions(`${webhookUrl}/kube/webhooks/authorize`, webhookTls, users);
    console.log(
      `kube authorization webhook at ${DECISIONS_PER_SECOND}/s (its own thread): ${decisions.sent} decisions (${decisions.allowed} allowed)  p50 ${fmt(decisions.p50)}  p99 ${fmt(decisions.p99)}  max ${fmt(decisions.max)}, ${decisions.over2ms} over 2 ms (goal p99 under 2 ms: ${decisions.p99 < 2 ? 'met' : 'not met'}); ${load()}`,
    );
    // The same handler on the controller's own port, in its main thread (apiservers configured
    // before the worker existed): what the thread of their own buys.
    const onMain = await measureDecisions(`${controller.url}/kube/webhooks/authorize`, webhookTls, users);
    console.log(
      `  on the controller's port (main thread): p50 ${fmt(onMain.p50)}  p99 ${fmt(onMain.p99)}  max ${fmt(onMain.max)}, ${onMain.over2ms} over 2 ms; main thread CPU ${onMain.busyUs.toFixed(0)} µs per decision, its event-loop delay p99 ${fmt(onMain.loopDelayP99)}; ${load()}`,
    );
    // The floor on this machine now: a bare HTTPS server in this process answering every review
    // with a fixed reply, through the same client at the same rate.
    const floorKeys = await generateKeyPair();
    const floorCert = await (
      await controller.cas.clusterAuthority()
    ).issueServerCertificate({ publicKeyPem: floorKeys.publicKeyPem, commonName: '127.0.0.1', hosts: [] });
    const floorReply = JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      status: { allowed: false, reason: 'floor' },
    });
    const floor = createServer(
      { key: floorKeys.privateKeyPem, cert: floorCert.certPem, ca: clusterCa, requestCert: true },
      (req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': floorReply.length });
          res.end(floorReply);
        });
      },
    );
    const floorPort = await freePort();
    await new Promise<void>((resolve) => floor.listen(floorPort, '127.0.0.1', resolve));
    try {
      const bare = await measureDecisions(`https://127.0.0.1:${floorPort}/`, webhookTls, users);
      console.log(
        `  floor: bare HTTPS server, same client and rate: p50 ${fmt(bare.p50)}  p99 ${fmt(bare.p99)}  max ${fmt(bare.max)}, ${bare.over2ms} over 2 ms; CPU ${bare.busyUs.toFixed(0)} µs per request, event-loop delay p99 ${fmt(bare.loopDelayP99)}; ${load()}`,
      );
    } finally {
      floor.closeAllConnections();
      floor.close();
    }
  } finally {
    await orca?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run alone: `node --import ./scripts/register.mjs dist/bench/kube.js`.
if (process.argv[1]?.endsWith('/kube.js')) await benchKube();

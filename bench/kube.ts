// The Kubernetes front door's cost: a real kube-apiserver (libs/testing) behind orca's front door
// (mutual TLS, UCP authentication, then front-proxy headers to the apiserver), against the same
// calls straight to the apiserver with its own admin client certificate.
//  - `kubectl get pods -o json`-sized list calls over a few hundred pods, at 1 and 16 clients, as
//    plain JSON and gzip-encoded as kubectl asks for them (goal: the front door within 1.3x of
//    direct); clients run in a worker thread (kubectl is its own process), and direct and
//    front-door rounds alternate so that load drifting on the shared machine hits both;
//  - a watch: time from a create to its ADDED event on an open watch, both ways;
//  - the authorization webhook's decision latency at a steady 500 decisions a second from a worker
//    with kept-alive connections, as the apiserver's client (goal: p99 under 2 ms), and the same
//    load on a bare HTTPS server in this process: the floor this machine allows right now.
// Prints figures and ratios only; the machine is shared, so they are indications, not limits.
// ORCA_BENCH_SECONDS (per round), ORCA_BENCH_KUBE_ROUNDS, ORCA_BENCH_KUBE_PARTS=list,watch,webhook.
import 'reflect-metadata';
import { loadControllerConfig } from '@orca/config';
import { Directory } from '@orca/identity';
import { putGrant } from '@orca/rbac';
import { generateKeyPair } from '@orca/pki';
import { freePort, startKubeCluster, type KubeCluster } from '@orca/testing';
import JSZip from 'jszip';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type RequestOptions } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startController, type RunningController } from '../apps/controller/src/controller.js';

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
}

interface Reply {
  status: number;
  body: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function send(url: string, options: RequestOptions & { body?: string; agent?: Agent }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { checkServerIdentity: () => undefined, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
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

/** Opens a watch on config maps labelled `run`, creates WATCH_EVENTS of them one at a time, and
 *  measures each create-to-ADDED delay. */
async function measureWatch(endpoint: Endpoint, run: string): Promise<{ p50: number; p99: number }> {
  const namespace = '/api/v1/namespaces/default/configmaps';
  const waiting = new Map<string, () => void>();
  let buffer = '';
  const watch = request(
    `${endpoint.base}${namespace}?watch=true&labelSelector=run%3D${run}`,
    { ...endpoint.tls, checkServerIdentity: () => undefined },
    (res) => {
      if (res.statusCode !== 200) throw new Error(`${endpoint.name} watch: ${res.statusCode}`);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          const event = JSON.parse(line) as { type: string; object: { metadata: { name: string } } };
          if (event.type === 'ADDED') waiting.get(event.object.metadata.name)?.();
        }
      });
    },
  );
  watch.on('error', () => undefined);
  watch.end();
  await new Promise((r) => setTimeout(r, 500));
  const agent = new Agent({ keepAlive: true, maxSockets: 1, noDelay: true });
  const samples: number[] = [];
  try {
    for (let i = 0; i < WATCH_EVENTS; i++) {
      const name = `${run}-${i}`;
      const seen = new Promise<void>((resolve) => waiting.set(name, resolve));
      const started = performance.now();
      const reply = await send(`${endpoint.base}${namespace}`, {
        ...endpoint.tls,
        agent,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { run } } }),
      });
      if (reply.status !== 201) throw new Error(`${endpoint.name} create: ${reply.status} ${reply.body}`);
      await seen;
      samples.push(performance.now() - started);
    }
  } finally {
    watch.destroy();
    agent.destroy();
  }
  const sorted = samples.sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/**
 * Open-loop SubjectAccessReviews at a fixed rate from a worker thread (its own event loop, as the
 * apiserver is its own process): the latency of each decision. Plain CommonJS so the worker needs
 * no module hooks.
 */
const DECISION_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { Agent, request } = require('node:https');
const { url, tls, reviews, rate, warmup, total } = workerData;
// As Go's clients (the apiserver's webhook client, kubectl): kept-alive connections, Nagle off.
const agent = new Agent({ keepAlive: true, maxSockets: 64, noDelay: true });
const decide = (i) => new Promise((resolve, reject) => {
  const req = request(url, { ...tls, agent, method: 'POST', checkServerIdentity: () => undefined,
    headers: { 'content-type': 'application/json' } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => resolve({ status: res.statusCode, body }));
    res.on('error', reject);
  });
  req.on('error', reject);
  req.end(reviews[i % reviews.length]);
});
const atRate = async (count, samples) => {
  const interval = 1000 / rate;
  const started = performance.now();
  const pending = [];
  let allowed = 0;
  for (let i = 0; i < count; i++) {
    const wait = started + i * interval - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentAt = performance.now();
    pending.push(decide(i).then((reply) => {
      if (reply.status !== 200) throw new Error('authorize: ' + reply.status + ' ' + reply.body);
      samples?.push(performance.now() - sentAt);
      if (JSON.parse(reply.body).status?.allowed) allowed++;
    }));
  }
  await Promise.all(pending);
  return allowed;
};
(async () => {
  await atRate(warmup);
  const samples = [];
  const allowed = await atRate(total, samples);
  agent.destroy();
  parentPort.postMessage({ samples, allowed });
})().catch((error) => parentPort.postMessage({ error: String(error) }));
`;

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
  // This thread's CPU time (the server side; the client is the worker): a figure that the shared
  // machine's load disturbs far less than latency.
  const cpuBefore = mainThreadCpuMs();
  const started = performance.now();
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const worker = new Worker(DECISION_WORKER, {
    eval: true,
    // Warm-up at the same rate first: connections opened, code paths compiled.
    workerData: { url, tls, reviews, rate: DECISIONS_PER_SECOND, warmup: DECISIONS_PER_SECOND, total },
  });
  try {
    const result = await new Promise<{ samples?: number[]; allowed?: number; error?: string }>(
      (resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      },
    );
    if (result.error || !result.samples) throw new Error(result.error ?? 'no samples');
    const cpuMs = mainThreadCpuMs() - cpuBefore - (idleCpuMsPerSecond * (performance.now() - started)) / 1000;
    const sorted = result.samples.sort((a, b) => a - b);
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? NaN,
      sent: total,
      allowed: result.allowed ?? 0,
      busyUs: (cpuMs * 1000) / (total + DECISIONS_PER_SECOND),
      over2ms: sorted.filter((ms) => ms > 2).length,
      loopDelayP99: loopDelay.percentile(99) / 1e6,
    };
  } finally {
    loopDelay.disable();
    await worker.terminate();
  }
}

async function bundleTls(controller: RunningController, ca: string): Promise<Endpoint['tls']> {
  const auth = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
  const zipped = await new Promise<Buffer>((resolve, reject) => {
    const req = request(
      `${controller.url}/api/clientbundle`,
      { method: 'POST', ca, headers: { authorization: auth }, checkServerIdentity: () => undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      },
    );
    req.on('error', reject);
    req.end();
  });
  const zip = await JSZip.loadAsync(zipped);
  const text = async (name: string) => {
    const file = zip.file(name);
    if (!file) throw new Error(`client bundle has no ${name}`);
    return file.async('string');
  };
  return { ca, cert: await text('cert.pem'), key: await text('key.pem') };
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

export async function benchKube(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-kube-'));
  let controller: RunningController | undefined;
  let cluster: KubeCluster | undefined;
  try {
    const apiPort = await freePort();
    const kubePort = await freePort();
    const path = (name: string) => join(dir, name);
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
        ORCA_KUBE_PORT: String(kubePort),
        ORCA_KUBE_APISERVER: `https://127.0.0.1:${apiPort}`,
        ORCA_KUBE_CA_FILE: path('apiserver-ca.pem'),
        ORCA_KUBE_PROXY_CERT_FILE: path('front-proxy.crt'),
        ORCA_KUBE_PROXY_KEY_FILE: path('front-proxy.key'),
        ORCA_KUBE_ADMIN_CERT_FILE: path('kube-admin.crt'),
        ORCA_KUBE_ADMIN_KEY_FILE: path('kube-admin.key'),
      }),
    );
    const clusterCa = await controller.cas.clusterBundle();
    // The webhook's caller: a cluster-CA client certificate, as the apiserver is given.
    const keys = await generateKeyPair();
    const issued = await (
      await controller.cas.clusterAuthority()
    ).issueServerCertificate({ publicKeyPem: keys.publicKeyPem, commonName: 'kube-apiserver', hosts: [] });
    const webhookTls = { ca: clusterCa, cert: issued.certPem, key: keys.privateKeyPem };

    // The apiserver as orca runs it: the controller's authorization and admission webhooks.
    const clusterCaPath = path('cluster-ca.pem');
    writeFileSync(clusterCaPath, clusterCa);
    writeFileSync(path('webhook-client.crt'), issued.certPem);
    writeFileSync(path('webhook-client.key'), keys.privateKeyPem, { mode: 0o600 });
    const webhookKubeconfig = (name: string, server: string, userName: string) => {
      writeFileSync(
        path(name),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'orca', cluster: { server, 'certificate-authority': clusterCaPath } }],
          users: [
            {
              name: userName,
              user: {
                'client-certificate': path('webhook-client.crt'),
                'client-key': path('webhook-client.key'),
              },
            },
          ],
          contexts: [{ name: 'orca', context: { cluster: 'orca', user: userName } }],
          'current-context': 'orca',
        }),
      );
      return path(name);
    };
    const authzKubeconfig = webhookKubeconfig(
      'authz-webhook.kubeconfig',
      `${controller.url}/kube/webhooks/authorize`,
      'kube-apiserver',
    );
    // Admission webhooks find their client credentials by the webhook's host; '*' matches all.
    const admissionKubeconfig = webhookKubeconfig('admission.kubeconfig', controller.url, '*');
    writeFileSync(
      path('admission.json'),
      JSON.stringify({
        apiVersion: 'apiserver.config.k8s.io/v1',
        kind: 'AdmissionConfiguration',
        plugins: [
          {
            name: 'ValidatingAdmissionWebhook',
            configuration: {
              apiVersion: 'apiserver.config.k8s.io/v1',
              kind: 'WebhookAdmissionConfiguration',
              kubeConfigFile: admissionKubeconfig,
            },
          },
          {
            name: 'MutatingAdmissionWebhook',
            configuration: {
              apiVersion: 'apiserver.config.k8s.io/v1',
              kind: 'WebhookAdmissionConfiguration',
              kubeConfigFile: admissionKubeconfig,
            },
          },
        ],
      }),
    );
    cluster = await startKubeCluster({
      apiserverPort: apiPort,
      extraApiserverArgs: [
        '--authorization-mode=Node,RBAC,Webhook',
        `--authorization-webhook-config-file=${authzKubeconfig}`,
        '--authorization-webhook-version=v1',
        '--authorization-webhook-cache-authorized-ttl=0s',
        '--authorization-webhook-cache-unauthorized-ttl=0s',
        `--admission-control-config-file=${path('admission.json')}`,
      ],
    });
    writeFileSync(path('apiserver-ca.pem'), cluster.ca.certPem);
    writeFileSync(path('front-proxy.crt'), cluster.frontProxy.certPem);
    writeFileSync(path('front-proxy.key'), cluster.frontProxy.keyPem, { mode: 0o600 });
    writeFileSync(path('kube-admin.crt'), cluster.admin.certPem);
    writeFileSync(path('kube-admin.key'), cluster.admin.keyPem, { mode: 0o600 });

    const direct: Endpoint = {
      name: 'apiserver direct',
      base: cluster.server,
      tls: { ca: cluster.ca.certPem, cert: cluster.admin.certPem, key: cluster.admin.keyPem },
    };
    const frontDoor: Endpoint = {
      name: 'orca front door',
      base: `https://127.0.0.1:${kubePort}`,
      tls: await bundleTls(controller, clusterCa),
    };

    // A few hundred pods (the scheduler binds them to the kwok node, kwok runs them).
    for (let i = 0; i < PODS; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, PODS - i) }, async (_, j) => {
          const reply = await cluster!.request('POST', '/api/v1/namespaces/default/pods', {
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
      console.log(`kube watch (create → ADDED, ${WATCH_EVENTS} config maps):`);
      const watchDirect = await measureWatch(direct, 'direct');
      const watchFrontDoor = await measureWatch(frontDoor, 'frontdoor');
      console.log(`  ${direct.name.padEnd(18)} p50 ${fmt(watchDirect.p50)}  p99 ${fmt(watchDirect.p99)}`);
      console.log(
        `  ${frontDoor.name.padEnd(18)} p50 ${fmt(watchFrontDoor.p50)}  p99 ${fmt(watchFrontDoor.p99)}`,
      );
      console.log(
        `  ratio front door / direct: p50 ${(watchFrontDoor.p50 / watchDirect.p50).toFixed(2)}x  p99 ${(watchFrontDoor.p99 / watchDirect.p99).toFixed(2)}x`,
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
    const decisions = await measureDecisions(`${controller.url}/kube/webhooks/authorize`, webhookTls, users);
    console.log(
      `kube authorization webhook at ${DECISIONS_PER_SECOND}/s: ${decisions.sent} decisions (${decisions.allowed} allowed)  p50 ${fmt(decisions.p50)}  p99 ${fmt(decisions.p99)}  max ${fmt(decisions.max)}, ${decisions.over2ms} over 2 ms (goal p99 under 2 ms: ${decisions.p99 < 2 ? 'met' : 'not met'}); server thread CPU ${decisions.busyUs.toFixed(0)} µs per decision, its event-loop delay p99 ${fmt(decisions.loopDelayP99)}; ${load()}`,
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
    await cluster?.stop();
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run alone: `node --import ./scripts/register.mjs dist/bench/kube.js`.
if (process.argv[1]?.endsWith('/kube.js')) await benchKube();

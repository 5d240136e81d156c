// The Docker front door's cost: GET /containers/json and GET /services through orca's controller
// (mutual TLS, authentication, RBAC, filtering, then ucp-proxy's mutual TLS to the engine) against
// the same calls straight to the engine's socket and through Debian's nginx terminating mutual TLS
// in front of that socket (the plain-proxy reference, the goal's), and, for the like-for-like figure,
// through the same nginx reaching the engine via the node's ucp-proxy as the front door does.
// 1 and 32 concurrent keep-alive clients.
// Prints figures and ratios only; the machine is shared, so they are indications, not limits (the
// targets of a case take turns, so load from elsewhere falls on all of them alike).
import { PROXY_PORT } from '@orca/cluster';
import { startOrcaCluster, type OrcaCluster } from '@orca/testing';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer } from 'node:net';

const DURATION_MS = Number(process.env.ORCA_BENCH_SECONDS ?? 4) * 1000;
const WARMUP_MS = 1000;
// Turns of at most a second: an idle keep-alive connection must outlive the others' turns.
const ROUNDS = Math.max(4, Math.round(DURATION_MS / 1000));
const PASSWORD = 'bench-viewer-pw';

interface Target {
  name: string;
  /** The processes serving it (besides the engine), whose CPU time is charged to its requests. */
  servers: number[];
  /** One request; resolves with the status when the body has been read. */
  get(path: string): Promise<number>;
  close(): void;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** CPU time (user + system) the processes have used so far, in ms (Linux /proc; NaN elsewhere). */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return ticks * 10;
}

/** The processes listening on address:port (from ss), e.g. nginx's worker or ucp-proxy. */
function listeners(address: string, port: number): number[] {
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const pids = new Set<number>();
    for (const line of out.split('\n')) {
      if (!line.includes(`${address}:${port}`)) continue;
      for (const m of line.matchAll(/pid=(\d+)/g)) pids.add(Number(m[1]));
    }
    return [...pids];
  } catch {
    return [];
  }
}

function target(
  name: string,
  servers: number[],
  clients: number,
  options: (path: string) => RequestOptions,
  tls: boolean,
): Target {
  const agent = tls
    ? new HttpsAgent({ keepAlive: true, maxSockets: clients })
    : new HttpAgent({ keepAlive: true, maxSockets: clients });
  const send = tls ? httpsRequest : httpRequest;
  return {
    name,
    servers,
    get: (path) =>
      new Promise((resolve, reject) => {
        const req = send({ ...options(path), agent, method: 'GET' }, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

interface Figures {
  p50: number;
  p95: number;
  rps: number;
  /** CPU time of the target's own server processes per request, in ms. */
  cpuPerRequest: number;
}

/**
 * Every target of one case, measured in turns (ROUNDS slices of the case's time each), so a burst
 * of load from elsewhere on the machine falls on all of them alike rather than on one.
 */
async function measureInTurns(
  targets: Target[],
  path: string,
  clients: number,
): Promise<Map<string, Figures>> {
  const run = async (t: Target, until: number, samples?: number[]) => {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < until) {
          const started = performance.now();
          const status = await t.get(path);
          if (status !== 200) throw new Error(`${t.name} ${path}: status ${status}`);
          samples?.push(performance.now() - started);
        }
      }),
    );
  };
  for (const t of targets) await run(t, Date.now() + WARMUP_MS);
  const samples = new Map(targets.map((t) => [t.name, [] as number[]]));
  const elapsed = new Map(targets.map((t) => [t.name, 0]));
  const cpu = new Map(targets.map((t) => [t.name, 0]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of targets) {
      const started = Date.now();
      const cpuBefore = cpuMs(t.servers);
      await run(t, started + DURATION_MS / ROUNDS, samples.get(t.name));
      cpu.set(t.name, cpu.get(t.name)! + cpuMs(t.servers) - cpuBefore);
      elapsed.set(t.name, elapsed.get(t.name)! + (Date.now() - started) / 1000);
    }
  }
  const figures = new Map<string, Figures>();
  for (const t of targets) {
    const sorted = samples.get(t.name)!.sort((a, b) => a - b);
    figures.set(t.name, {
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      rps: sorted.length / elapsed.get(t.name)!,
      cpuPerRequest: cpu.get(t.name)! / sorted.length,
    });
  }
  return figures;
}

/** Where nginx reaches the node's ucp-proxy for the second, like-for-like reference. */
interface ProxyUpstream {
  address: string;
  port: number;
  /** ca.pem, cert.pem, key.pem of a swarm-manager node certificate (ucp-proxy admits it). */
  certsDir: string;
}

async function startNginx(
  dir: string,
  socketPath: string,
  clientCaPem: string,
  proxy: ProxyUpstream,
): Promise<{ port: number; viaProxyPort: number; child: ChildProcess }> {
  const port = await freePort();
  const viaProxyPort = await freePort();
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir, 'server-key.pem'),
      '-out',
      join(dir, 'server.pem'),
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(join(dir, 'client-ca.pem'), clientCaPem);
  // One worker, as the controller is one Node process; TLS terminated, keep-alive to the socket;
  // root, as the test engines' sockets are in private directories.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream engine { server unix:${socketPath}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server-key.pem;
    ssl_client_certificate ${dir}/client-ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host docker;
      proxy_buffering off;
    }
  }
  # The same, but to the engine through the node's ucp-proxy (mutual TLS, kept alive), as the front
  # door goes: what the second hop costs a C proxy.
  upstream ucpproxy { server ${proxy.address}:${proxy.port}; keepalive 64; }
  server {
    listen 127.0.0.1:${viaProxyPort} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server-key.pem;
    ssl_client_certificate ${dir}/client-ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / {
      proxy_pass https://ucpproxy;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host docker;
      proxy_buffering off;
      proxy_ssl_certificate ${proxy.certsDir}/cert.pem;
      proxy_ssl_certificate_key ${proxy.certsDir}/key.pem;
      # Node certificates name node ids, not addresses: nginx cannot check the name (it checks the
      # chain with the name or not at all); only handshakes would pay for it on kept-alive connections.
      proxy_ssl_verify off;
      proxy_ssl_session_reuse on;
    }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = createServer();
      socket.once('error', () => resolve(true));
      socket.listen(port, '127.0.0.1', () => socket.close(() => resolve(false)));
    });
    if (up) return { port, viaProxyPort, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
}

/** Containers and services to list: created directly on the engine, so every target sees the same. */
async function populate(cluster: OrcaCluster, busybox: string): Promise<void> {
  const socketPath = cluster.swarm.manager.socketPath;
  const post = (path: string, body: unknown) =>
    new Promise<void>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = httpRequest(
        {
          socketPath,
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const labels = (i: number) => ({
    'com.docker.ucp.access.label': i % 2 ? '/Shared' : '/Shared/Private/admin',
  });
  for (let i = 0; i < 20; i++) {
    await post(`/containers/create?name=bench-${i}`, {
      Image: busybox,
      Cmd: ['true'],
      Labels: labels(i),
      HostConfig: { NetworkMode: 'none' },
    });
  }
  for (let i = 0; i < 10; i++) {
    await post('/services/create', {
      Name: `bench-svc-${i}`,
      Labels: labels(i),
      TaskTemplate: { ContainerSpec: { Image: busybox, Command: ['sleep', '600'] } },
      Mode: { Replicated: { Replicas: 0 } },
    });
  }
}

export async function benchFrontDoor(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-frontdoor-'));
  const cluster = await startOrcaCluster({ engines: 1, firstIndex: 30, adminPassword: 'bench-admin-pw' });
  let nginx: ChildProcess | undefined;
  const targets: Target[] = [];
  try {
    await populate(cluster, cluster.images.busybox);
    // A non-admin who sees half of it: View Only on /Shared (lists are filtered per item).
    await cluster.api('POST', '/accounts', { body: { name: 'viewer', password: PASSWORD } });
    const viewer = JSON.parse((await cluster.api('GET', '/accounts/viewer')).text) as { id: string };
    await cluster.api('PUT', `/collectionGrants/${viewer.id}/shared/viewonly`);
    const adminBundle = await cluster.bundle('admin', cluster.adminPassword);
    const viewerBundle = await cluster.bundle('viewer', PASSWORD);
    const tlsOf = (bundle: string) => ({
      ca: readFileSync(join(bundle, 'ca.pem')),
      cert: readFileSync(join(bundle, 'cert.pem')),
      key: readFileSync(join(bundle, 'key.pem')),
    });
    // The harness keeps node 0's agent state (its swarm-manager certificate) next to the engines.
    const agentCerts = join(dirname(dirname(cluster.swarm.manager.socketPath)), 'agent-0');
    const started = await startNginx(
      dir,
      cluster.swarm.manager.socketPath,
      readFileSync(join(adminBundle, 'ca.pem'), 'utf8'),
      { address: cluster.swarm.manager.address, port: PROXY_PORT, certsDir: agentCerts },
    );
    nginx = started.child;
    const nginxPort = started.port;
    // Whose CPU each target costs: nginx's processes; the controller; the node's ucp-proxy.
    const nginxPids = listeners('127.0.0.1', nginxPort);
    const controllerPids = listeners(cluster.host, cluster.port);
    const proxyPids = listeners(cluster.swarm.manager.address, PROXY_PORT);

    console.log(
      `frontdoor: ${cpus().length} cores, ${DURATION_MS / 1000} s per case; engine ${cluster.swarm.manager.address}, ` +
        `20 containers, 10 services (the viewer sees half); load average ${loadavg()[0]!.toFixed(2)} (1 min); ` +
        `server CPU: nginx pids ${nginxPids.join(',')}, controller ${controllerPids.join(',')}, ucp-proxy ${proxyPids.join(',')}`,
    );
    for (const path of ['/v1.41/containers/json?all=1', '/v1.41/services']) {
      for (const clients of [1, 32]) {
        const cases = [
          target(
            'engine socket',
            [],
            clients,
            (p) => ({ socketPath: cluster.swarm.manager.socketPath, path: p }),
            false,
          ),
          target(
            'nginx TLS proxy',
            nginxPids,
            clients,
            (p) => ({
              host: '127.0.0.1',
              port: nginxPort,
              path: p,
              ...tlsOf(adminBundle),
              rejectUnauthorized: false,
            }),
            true,
          ),
          target(
            'nginx via ucp-proxy',
            [...nginxPids, ...proxyPids],
            clients,
            (p) => ({
              host: '127.0.0.1',
              port: started.viaProxyPort,
              path: p,
              ...tlsOf(adminBundle),
              rejectUnauthorized: false,
            }),
            true,
          ),
          target(
            'front door, admin',
            [...controllerPids, ...proxyPids],
            clients,
            (p) => ({
              host: cluster.host,
              port: cluster.port,
              path: p,
              ...tlsOf(adminBundle),
              checkServerIdentity: () => undefined,
            }),
            true,
          ),
          target(
            'front door, viewer',
            [...controllerPids, ...proxyPids],
            clients,
            (p) => ({
              host: cluster.host,
              port: cluster.port,
              path: p,
              ...tlsOf(viewerBundle),
              checkServerIdentity: () => undefined,
            }),
            true,
          ),
        ];
        targets.push(...cases);
        const results = await measureInTurns(cases, path, clients);
        for (const t of cases) {
          const r = results.get(t.name)!;
          console.log(
            `frontdoor: GET ${path.replace('/v1.41', '')}, ${String(clients).padStart(2)} client(s), ${t.name.padEnd(19)}: ` +
              `p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms, ${r.rps.toFixed(0)} req/s` +
              (t.servers.length ? `, server CPU ${r.cpuPerRequest.toFixed(3)} ms/req` : ''),
          );
          t.close();
        }
        console.log(`frontdoor: load average ${loadavg()[0]!.toFixed(2)} (1 min)`);
        const ref = results.get('nginx TLS proxy')!;
        const viaProxy = results.get('nginx via ucp-proxy')!;
        for (const name of ['front door, admin', 'front door, viewer']) {
          const r = results.get(name)!;
          console.log(
            `frontdoor: GET ${path.replace('/v1.41', '')}, ${String(clients).padStart(2)} client(s), ${name} vs nginx: ` +
              `median latency ${(r.p50 / ref.p50).toFixed(2)}x (goal <= 1.3x), throughput ${((100 * r.rps) / ref.rps).toFixed(0)}% (goal >= 70%); ` +
              `vs nginx via ucp-proxy: ${(r.p50 / viaProxy.p50).toFixed(2)}x, ${((100 * r.rps) / viaProxy.rps).toFixed(0)}%`,
          );
        }
      }
    }
  } finally {
    for (const t of targets) t.close();
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGQUIT');
      await new Promise((r) => setTimeout(r, 500));
      if (nginx.exitCode === null) nginx.kill('SIGKILL');
    }
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

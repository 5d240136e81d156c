// Runs a real Kubernetes control plane for tests: kube-apiserver (storage in etcd under its own
// prefix), kube-controller-manager, kube-scheduler and kwok with one fake Node, all bound to
// 127.0.0.1 on free ports, with certificates made for the run; and startOrcaKube, the same control
// plane configured as orca's reconciler configures a manager's, in front of an orca controller. The
// binaries are built from Go modules by scripts/kube-binaries.mjs into a cache outside the
// repository (`npm test` builds them).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_COMPONENT_SETTINGS,
  KubePki,
  httpsUrl,
  kubeComponents,
  kubeNodeFiles,
  managerControllerUrl,
  type CertificateAuthorityService,
  type ComponentSettings,
  type NodeSpec,
} from '@orca/cluster';
import { CertificateAuthority, createRootCa, generateKeyPair } from '@orca/pki';
import type { Store } from '@orca/store';
import JSZip from 'jszip';
import * as oidcClient from 'openid-client';
import { startEtcd } from './etcd.js';
import { basicAuth, httpsCall as httpsExchange } from './https.js';
import { freePort } from './net.js';

/** UCP's Kubernetes service range (a range given to the apiserver, not a destination). */
const SERVICE_CIDR = '10.96.0.0/16';

/** Paths printed by `node scripts/kube-binaries.mjs --paths`. */
export interface KubeBinaryPaths {
  kubernetesVersion: string;
  kwokVersion: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kwok: string;
}

export interface KubeClusterOptions {
  /** An etcd to store in (under a fresh prefix); default: the harness starts and stops its own. */
  etcd?: { endpoints: string[] };
  /** Name of the fake Node kwok manages; default `kwok-node-0`. */
  nodeName?: string;
  /** Extra kube-apiserver flags (webhooks, OIDC...): `--name=value` replaces the harness's `--name`. */
  extraApiserverArgs?: string[];
  /** The apiserver's port, when the caller must know it before the start; default a free port. */
  apiserverPort?: number;
  /**
   * kwok serves the kubelet API (logs, exec, attach, port-forward) on a free port with a test-CA
   * certificate, as the node's kubelet endpoint; `kwokConfig` adds YAML documents to its --config
   * (ClusterLogs, ClusterExec, ClusterPortForward...). Pair with the apiserver flag
   * `--kubelet-preferred-address-types=InternalIP` (the node's Hostname does not resolve).
   */
  kwokServer?: boolean;
  kwokConfig?: string;
  /** How long to wait for the whole control plane (apiserver ready, node Ready); default 90 s. */
  startTimeoutMs?: number;
  /**
   * Sign every certificate with this CA (orca's cluster CA) instead of fresh test CAs: the
   * apiserver trusts it for clients and for the front proxy, as a manager's apiserver does.
   */
  ca?: CertificateAuthority;
  /** The front proxy's identity, a certificate from `ca`; default one issued as `front-proxy-client`. */
  frontProxy?: { certPem: string; keyPem: string };
  /** The service-account key pair (apiserver and controller-manager); default a fresh one. */
  serviceAccount?: { publicKeyPem: string; privateKeyPem: string };
  /**
   * The apiserver's flags in place of the harness's own (startOrcaKube passes orca's reconciler's).
   * The harness still sets its etcd: plain HTTP on loopback under a fresh prefix, so etcd TLS flags
   * are dropped. `extraApiserverArgs` apply on top.
   */
  apiserverArgs?: string[];
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeResponse {
  status: number;
  body: string;
}

export interface KubeCluster {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly version: string;
  /** The fake node's name. */
  readonly nodeName: string;
  /** etcd key prefix the apiserver stores under. */
  readonly etcdPrefix: string;
  /** Temp dir with certificates, kubeconfigs and `logs/<component>.log`; removed by stop(). */
  readonly dir: string;
  /** Admin kubeconfig (client certificate in group system:masters). */
  readonly kubeconfig: string;
  /** The admin's client certificate and key (PEM), for plain HTTPS clients. */
  readonly admin: { certPem: string; keyPem: string };
  /** The test CA that signed the serving and client certificates (also the apiserver's client CA). */
  readonly ca: CertificateAuthority;
  /**
   * Front-proxy (request-header) authentication: a separate CA, and a client certificate with CN
   * `front-proxy-client` that may assert X-Remote-User / X-Remote-Group / X-Remote-Extra-*.
   */
  readonly frontProxy: {
    ca: CertificateAuthority;
    certPem: string;
    keyPem: string;
    certPath: string;
    keyPath: string;
  };
  /** Runs the installed kubectl with the admin kubeconfig (or `kubeconfig`) and a private cache dir. */
  kubectl(
    args: string[],
    options?: { input?: string; kubeconfig?: string; timeoutMs?: number },
  ): Promise<KubectlResult>;
  /** Plain HTTPS to the apiserver as the admin. */
  request(method: string, path: string, body?: unknown): Promise<KubeResponse>;
  /** A kubeconfig whose client certificate says CN=user, O=group. */
  userKubeconfig(user: string, group?: string): Promise<string>;
  /** The end of a component's log (kube-apiserver, kube-controller-manager, kube-scheduler, kwok). */
  logTail(component: string, bytes?: number): string;
  /** Process ids of the running components. */
  pids(): Record<string, number | undefined>;
  /** Stops every component (and the etcd it started), then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs the installed kubectl with only this kubeconfig (KUBECONFIG cleared): exit code and output,
 * killed after `timeoutMs` (default 30 s).
 */
export function runKubectl(
  kubeconfig: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; cacheDir?: string } = {},
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'kubectl',
      [
        `--kubeconfig=${kubeconfig}`,
        ...(options.cacheDir ? [`--cache-dir=${options.cacheDir}`] : []),
        ...args,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Polls `probe` every `intervalMs` (default 300) until it gives a value other than undefined; a
 * throw counts as not yet. Fails after `timeoutMs` with the last error, if any.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} not within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await delay(intervalMs);
  }
}

/** The repository root: the nearest parent with package.json (works from src/ and from dist/). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Where scripts/kube-binaries.mjs puts the binaries; throws a clear error when they are not built. */
export function kubeBinaryPaths(): KubeBinaryPaths {
  const script = join(findRepoRoot(), 'scripts', 'kube-binaries.mjs');
  const result = spawnSync(process.execPath, [script, '--paths'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${script} --paths failed: ${result.stderr}`);
  const paths = JSON.parse(result.stdout) as KubeBinaryPaths;
  const missing = [paths.kubeApiserver, paths.kubeControllerManager, paths.kubeScheduler, paths.kwok].filter(
    (p) => !existsSync(p),
  );
  if (missing.length > 0) {
    throw new Error(
      `Kubernetes binaries are not built (${missing.join(', ')}): run \`node scripts/kube-binaries.mjs\` ` +
        '(npm test does it through scripts/prepare.mjs)',
    );
  }
  return paths;
}

// Children still running, so a test process that dies without stop() leaves nothing behind.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

interface Component {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tail(path: string, bytes: number): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

interface TlsMaterial {
  ca: string;
  cert?: string;
  key?: string;
}

function httpsCall(
  url: string,
  tls: TlsMaterial | 'insecure',
  method = 'GET',
  body?: string,
  timeoutMs = 10_000,
): Promise<KubeResponse> {
  return new Promise((resolve, reject) => {
    const options =
      tls === 'insecure'
        ? // Only for the controller-manager's and scheduler's self-signed /healthz on loopback.
          { rejectUnauthorized: false }
        : { ca: tls.ca, cert: tls.cert, key: tls.key };
    const req = httpsRequest(
      url,
      {
        method,
        ...options,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

function kubeconfigJson(
  server: string,
  caPath: string,
  certPath: string,
  keyPath: string,
  user: string,
): string {
  // JSON is YAML: kubectl and the Go components read it as a kubeconfig.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'orca-test', cluster: { server, 'certificate-authority': caPath } }],
      users: [{ name: user, user: { 'client-certificate': certPath, 'client-key': keyPath } }],
      contexts: [{ name: 'orca-test', context: { cluster: 'orca-test', user } }],
      'current-context': 'orca-test',
    },
    null,
    2,
  );
}

function fakeNode(name: string): unknown {
  // kwok's documented fake node (docs/user/kwok-manage-nodes-and-pods.md), without its taint so that
  // plain `kubectl create deployment` pods schedule onto it.
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
      },
    },
    // Without a provider ID, cloud node controllers delete fake nodes (kwok known issue).
    spec: { providerID: `kwok://${name}` },
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        kubeletVersion: 'fake',
        kubeProxyVersion: 'fake',
        operatingSystem: 'linux',
      },
      phase: 'Running',
    },
  };
}

const flagName = (arg: string): string => arg.split('=')[0] ?? arg;

/** `args` with `overrides` appended, each replacing the flag of the same name. */
function withFlags(args: readonly string[], overrides: readonly string[]): string[] {
  const replaced = new Set(overrides.map(flagName));
  return [...args.filter((arg) => !replaced.has(flagName(arg))), ...overrides];
}

/** The test etcd speaks plain HTTP: a manager's ucp-kv client certificate flags do not apply. */
const ETCD_TLS_FLAGS = new Set(['--etcd-cafile', '--etcd-certfile', '--etcd-keyfile']);

async function issueWith(
  ca: CertificateAuthority,
  commonName: string,
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const { certPem } = await ca.issueServerCertificate({
    publicKeyPem: keys.publicKeyPem,
    commonName,
    hosts: [],
  });
  return { certPem, keyPem: keys.privateKeyPem };
}

interface NodeStatusView {
  status?: { conditions?: { type: string; status: string }[] };
}

export async function startKubeCluster(options: KubeClusterOptions = {}): Promise<KubeCluster> {
  installExitHook();
  const binaries = kubeBinaryPaths();
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const deadline = Date.now() + startTimeoutMs;
  const nodeName = options.nodeName ?? 'kwok-node-0';
  const dir = await mkdtemp(join(tmpdir(), 'orca-kube-'));
  const logDir = join(dir, 'logs');
  const components: Component[] = [];
  let ownEtcd: { stop(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;

  // Every caller of stop() waits for the same, single shutdown.
  const stopAll = (): Promise<void> => (stopping ??= shutdown());
  const shutdown = async (): Promise<void> => {
    // Reverse start order: the apiserver goes last so the others do not spin on a dead server.
    for (const component of [...components].reverse()) {
      const { child } = component;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // SIGKILL after 5 s; the timer is cleared so it does not hold the test process open.
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await component.exited;
        clearTimeout(timer);
      }
    }
    await ownEtcd?.stop();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await mkdir(logDir);

    const etcd = options.etcd ?? (ownEtcd = await startEtcd());
    const etcdPrefix = `/orca-kube-test-${randomBytes(6).toString('hex')}`;

    const [apiPort, controllerManagerPort, schedulerPort] = [
      options.apiserverPort ?? (await freePort()),
      await freePort(),
      await freePort(),
    ];
    const server = `https://127.0.0.1:${apiPort}`;

    // Certificates: one CA signs the serving cert and every client cert (user = CN, group = O).
    const ca =
      options.ca ?? new CertificateAuthority(await createRootCa({ commonName: 'orca-kube-test-ca' }));
    const file = async (name: string, content: string, secret = false): Promise<string> => {
      const path = join(dir, name);
      await writeFile(path, content);
      if (secret) await chmod(path, 0o600);
      return path;
    };
    const caPath = await file('ca.crt', ca.certPem);
    const issue = async (
      name: string,
      commonName: string,
      organization: string | undefined,
      hosts: string[],
    ): Promise<{ certPath: string; keyPath: string; certPem: string; keyPem: string }> => {
      const keys = await generateKeyPair();
      const { certPem } = await ca.issueServerCertificate({
        publicKeyPem: keys.publicKeyPem,
        commonName,
        organization,
        hosts,
      });
      return {
        certPath: await file(`${name}.crt`, certPem),
        keyPath: await file(`${name}.key`, keys.privateKeyPem, true),
        certPem,
        keyPem: keys.privateKeyPem,
      };
    };
    const serving = await issue('apiserver', 'kube-apiserver', undefined, [
      '127.0.0.1',
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      // The `kubernetes` Service's cluster IP (first of SERVICE_CIDR): a name in the certificate,
      // never an address anything here connects to.
      SERVICE_CIDR.replace(/0\/16$/, '1'),
    ]);
    const admin = await issue('admin', 'orca-test-admin', 'system:masters', []);
    const controllerManager = await issue(
      'controller-manager',
      'system:kube-controller-manager',
      undefined,
      [],
    );
    const scheduler = await issue('scheduler', 'system:kube-scheduler', undefined, []);
    // kwok plays every kubelet: it needs nodes, pods, leases and events across namespaces.
    const kwok = await issue('kwok', 'kwok-controller', 'system:masters', []);
    // Its own CA, as the apiserver docs ask: a request-header CA must not also be the client CA
    // (orca's apiserver uses the cluster CA for both, and only admits its front proxy's name).
    const frontProxyCa =
      options.ca ??
      new CertificateAuthority(await createRootCa({ commonName: 'orca-kube-test-front-proxy-ca' }));
    const frontProxyCaPath = await file('front-proxy-ca.crt', frontProxyCa.certPem);
    const frontProxyIdentity = options.frontProxy ?? (await issueWith(frontProxyCa, 'front-proxy-client'));
    const frontProxy = {
      ca: frontProxyCa,
      certPem: frontProxyIdentity.certPem,
      keyPem: frontProxyIdentity.keyPem,
      certPath: await file('front-proxy-client.crt', frontProxyIdentity.certPem),
      keyPath: await file('front-proxy-client.key', frontProxyIdentity.keyPem, true),
    };
    const serviceAccountKeys = options.serviceAccount ?? (await generateKeyPair());
    const saKeyPath = await file('sa.key', serviceAccountKeys.privateKeyPem, true);
    const saPubPath = await file('sa.pub', serviceAccountKeys.publicKeyPem);

    const kubeconfigFor = (name: string, material: { certPath: string; keyPath: string }, user: string) =>
      file(`${name}.kubeconfig`, kubeconfigJson(server, caPath, material.certPath, material.keyPath, user));
    const adminKubeconfig = await kubeconfigFor('admin', admin, 'orca-test-admin');
    const controllerManagerKubeconfig = await kubeconfigFor(
      'controller-manager',
      controllerManager,
      'system:kube-controller-manager',
    );
    const schedulerKubeconfig = await kubeconfigFor('scheduler', scheduler, 'system:kube-scheduler');
    const kwokKubeconfig = await kubeconfigFor('kwok', kwok, 'kwok-controller');
    // An explicit (empty) kwok config keeps ~/.kwok/kwok.yaml out of the test.
    const kwokConfig = await file(
      'kwok.yaml',
      'apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n' +
        (options.kwokConfig ? `---\n${options.kwokConfig}\n` : ''),
    );

    const adminTls: TlsMaterial = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
    const request = async (method: string, path: string, body?: unknown): Promise<KubeResponse> =>
      httpsCall(`${server}${path}`, adminTls, method, body === undefined ? undefined : JSON.stringify(body));

    const kwokServerArgs = async (): Promise<string[]> => {
      const port = await freePort();
      const tls = await issue('kwok-server', nodeName, undefined, ['127.0.0.1', nodeName]);
      return [
        `--server-address=127.0.0.1:${port}`,
        `--node-port=${port}`,
        `--tls-cert-file=${tls.certPath}`,
        `--tls-private-key-file=${tls.keyPath}`,
      ];
    };

    const launch = (name: string, binary: string, args: string[]): Component => {
      const logPath = join(logDir, `${name}.log`);
      const fd = openSync(logPath, 'a');
      const child = spawn(binary, args, { stdio: ['ignore', fd, fd], cwd: dir });
      closeSync(fd);
      running.add(child);
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          running.delete(child);
          resolve();
        });
        child.once('error', () => {
          running.delete(child);
          resolve();
        });
      });
      const component = { name, child, logPath, exited };
      components.push(component);
      return component;
    };

    const failIfExited = (): void => {
      for (const c of components) {
        if (c.child.exitCode !== null || c.child.signalCode !== null) {
          throw new Error(
            `${c.name} exited (${c.child.exitCode ?? c.child.signalCode}):\n${tail(c.logPath, 4000)}`,
          );
        }
      }
    };
    const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      for (;;) {
        failIfExited();
        let ok = false;
        try {
          ok = await check();
        } catch {
          ok = false;
        }
        if (ok) return;
        if (Date.now() > deadline) {
          const logs = components.map((c) => `--- ${c.name}\n${tail(c.logPath, 2000)}`).join('\n');
          throw new Error(`Kubernetes test cluster: ${what} not within ${startTimeoutMs} ms\n${logs}`);
        }
        await delay(250);
      }
    };

    const harnessArgs = [
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${serving.certPath}`,
      `--tls-private-key-file=${serving.keyPath}`,
      `--client-ca-file=${caPath}`,
      '--anonymous-auth=false',
      `--etcd-servers=${etcd.endpoints.join(',')}`,
      `--etcd-prefix=${etcdPrefix}`,
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${saPubPath}`,
      `--service-account-signing-key-file=${saKeyPath}`,
      // UCP's service range; nothing routes to it (no kube-proxy), it only numbers ClusterIPs.
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // A loopback advertise address may not go into the `kubernetes` Endpoints; kwokctl does the same.
      '--endpoint-reconciler-type=none',
      // Also what the controller-manager's and scheduler's delegated authentication look up.
      `--requestheader-client-ca-file=${frontProxyCaPath}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${frontProxy.certPath}`,
      `--proxy-client-key-file=${frontProxy.keyPath}`,
      '--profiling=false',
    ];
    const etcdArgs = [`--etcd-servers=${etcd.endpoints.join(',')}`, `--etcd-prefix=${etcdPrefix}`];
    const apiserverArgs = options.apiserverArgs
      ? withFlags(
          options.apiserverArgs.filter((arg) => !ETCD_TLS_FLAGS.has(flagName(arg))),
          etcdArgs,
        )
      : harnessArgs;
    launch(
      'kube-apiserver',
      binaries.kubeApiserver,
      withFlags(apiserverArgs, options.extraApiserverArgs ?? []),
    );
    await waitFor('kube-apiserver /readyz', async () => (await request('GET', '/readyz')).status === 200);

    const created = await request('POST', '/api/v1/nodes', fakeNode(nodeName));
    if (created.status !== 201)
      throw new Error(`creating node ${nodeName}: ${created.status} ${created.body}`);

    launch('kube-controller-manager', binaries.kubeControllerManager, [
      `--kubeconfig=${controllerManagerKubeconfig}`,
      `--authentication-kubeconfig=${controllerManagerKubeconfig}`,
      `--authorization-kubeconfig=${controllerManagerKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${controllerManagerPort}`,
      `--cert-dir=${join(dir, 'controller-manager-certs')}`,
      '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
      // One instance per test: no lease to wait for.
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${saKeyPath}`,
      `--root-ca-file=${caPath}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // Above kwok's 40 s node lease, as kwokctl pairs them, so the fake node never goes NotReady.
      '--node-monitor-grace-period=3m20s',
      '--profiling=false',
    ]);
    launch('kube-scheduler', binaries.kubeScheduler, [
      `--kubeconfig=${schedulerKubeconfig}`,
      `--authentication-kubeconfig=${schedulerKubeconfig}`,
      `--authorization-kubeconfig=${schedulerKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
      '--leader-elect=false',
      '--profiling=false',
    ]);
    launch('kwok', binaries.kwok, [
      `--config=${kwokConfig}`,
      `--kubeconfig=${kwokKubeconfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      // Fake addresses: nothing connects to them (kwok serves no kubelet port here).
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.0/24',
      '--node-lease-duration-seconds=40',
      ...(options.kwokServer ? await kwokServerArgs() : []),
    ]);

    const healthy = (port: number) => async () =>
      (await httpsCall(`https://127.0.0.1:${port}/healthz`, 'insecure')).status === 200;
    await waitFor('kube-controller-manager /healthz', healthy(controllerManagerPort));
    await waitFor('kube-scheduler /healthz', healthy(schedulerPort));
    await waitFor(`node ${nodeName} Ready`, async () => {
      const res = await request('GET', `/api/v1/nodes/${nodeName}`);
      if (res.status !== 200) return false;
      const node = JSON.parse(res.body) as NodeStatusView;
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });
    // Pods are refused until the controller-manager has made the namespace's default service account.
    await waitFor(
      'default service account',
      async () => (await request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
    );

    const kubectlCacheDir = join(dir, 'kubectl-cache');
    const cluster: KubeCluster = {
      server,
      version: binaries.kubernetesVersion,
      nodeName,
      etcdPrefix,
      dir,
      kubeconfig: adminKubeconfig,
      admin: { certPem: admin.certPem, keyPem: admin.keyPem },
      ca,
      frontProxy,
      kubectl(args, opts = {}) {
        return runKubectl(opts.kubeconfig ?? adminKubeconfig, args, { ...opts, cacheDir: kubectlCacheDir });
      },
      request,
      async userKubeconfig(user, group) {
        const safe = user.replace(/[^A-Za-z0-9_.-]/g, '_');
        const material = await issue(`user-${safe}`, user, group, []);
        return kubeconfigFor(`user-${safe}`, material, user);
      },
      logTail(component, bytes = 4000) {
        const c = components.find((x) => x.name === component);
        return c ? tail(c.logPath, bytes) : '';
      },
      pids() {
        return Object.fromEntries(
          components.map((c) => [
            c.name,
            c.child.exitCode === null && c.child.signalCode === null ? c.child.pid : undefined,
          ]),
        );
      },
      stop: stopAll,
    };
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** What startOrcaKube needs of orca's controller (apps/controller's RunningController has it). */
export interface OrcaKubeController {
  /** `https://127.0.0.1:<port>` */
  url: string;
  store: Store;
  cas: CertificateAuthorityService;
  close(): Promise<void>;
}

export interface OrcaKubeOptions<C extends OrcaKubeController> extends Pick<
  KubeClusterOptions,
  'nodeName' | 'kwokServer' | 'kwokConfig' | 'startTimeoutMs'
> {
  /** The test's directory: the manager's Kubernetes files and the controller's client files go here. */
  dir: string;
  /**
   * Starts orca's controller with `env` added to the caller's settings: ORCA_KUBE_PORT,
   * ORCA_KUBE_APISERVER and its files, and ORCA_KEK (the fixture issues material as the controller does).
   */
  startController(env: Record<string, string>): Promise<C>;
  /** Flags on top of what orca's reconciler gives the apiserver (`--name=value` replaces). */
  extraApiserverArgs?: string[];
}

export interface OrcaKube<C extends OrcaKubeController> {
  controller: C;
  cluster: KubeCluster;
  /** orca's 6443 front door, `https://127.0.0.1:<port>`. */
  frontDoor: string;
  /** orca's cluster CA bundle: what the controller, the front door and the apiserver serve with. */
  clusterCaPem: string;
  /** The apiserver's client certificate for orca's webhooks, as orca issues it to managers. */
  webhookClient: { cert: string; key: string };
  /** A client bundle made through UCP's POST /api/clientbundle, unzipped: file name → text. */
  clientBundle(user: string, password: string): Promise<Record<string, string>>;
  /** The bundle's kube.yml exactly as downloaded, written to `<dir>/<user>-kube.yml`; its path. */
  bundleKubeconfig(user: string, password: string): Promise<string>;
  /** Stops the Kubernetes components, then the controller. Idempotent. */
  stop(): Promise<void>;
}

/**
 * orca's controller in front of a real Kubernetes control plane, set up as a manager runs it: the
 * apiserver's flags come from the reconciler's builder (libs/cluster kubeComponents), its files
 * (certificates, webhook kubeconfigs, admission configuration) from kubeNodeFiles with material
 * from KubePki, and the controller reaches it with KubePki's controller material. Differences from
 * a manager: the test's etcd (plain HTTP, own prefix), and the harness's kwok node and health ports.
 * Waits until the leader has registered orca's admission webhooks.
 */
export async function startOrcaKube<C extends OrcaKubeController>(
  options: OrcaKubeOptions<C>,
): Promise<OrcaKube<C>> {
  const { dir } = options;
  const kek = randomBytes(32).toString('base64');
  const [apiserverPort, frontDoorPort] = [await freePort(), await freePort()];
  const apiserverUrl = httpsUrl('127.0.0.1', apiserverPort);
  const clientDir = join(dir, 'kube-client');
  const upstream = {
    ca: join(clientDir, 'ca.pem'),
    proxyCert: join(clientDir, 'front-proxy.pem'),
    proxyKey: join(clientDir, 'front-proxy-key.pem'),
    adminCert: join(clientDir, 'admin.pem'),
    adminKey: join(clientDir, 'admin-key.pem'),
  };
  const controller = await options.startController({
    ORCA_KEK: kek,
    ORCA_KUBE_PORT: String(frontDoorPort),
    ORCA_KUBE_APISERVER: apiserverUrl,
    ORCA_KUBE_CA_FILE: upstream.ca,
    ORCA_KUBE_PROXY_CERT_FILE: upstream.proxyCert,
    ORCA_KUBE_PROXY_KEY_FILE: upstream.proxyKey,
    ORCA_KUBE_ADMIN_CERT_FILE: upstream.adminCert,
    ORCA_KUBE_ADMIN_KEY_FILE: upstream.adminKey,
  });
  let cluster: KubeCluster | undefined;
  const stop = async (): Promise<void> => {
    await cluster?.stop();
    await controller.close();
  };
  try {
    const binaries = kubeBinaryPaths();
    const certsDir = join(dir, 'node');
    const node: NodeSpec = {
      id: 'orcakubetestmanager0000',
      role: 'swarm-manager',
      hostname: 'orca-kube-test-manager',
      address: '127.0.0.1',
      runtime: 'process',
      facts: { certsDir },
      createdAt: new Date().toISOString(),
    };
    const settings: ComponentSettings = {
      ...DEFAULT_COMPONENT_SETTINGS,
      controllerPort: Number(new URL(controller.url).port),
      kubernetes: {
        enabled: true,
        apiserverPort,
        // etcd is not run (the harness's is used); the name only completes the settings.
        binaries: { ...binaries, etcd: 'etcd' },
      },
    };
    const apiserver = kubeComponents(node, settings).find((c) => c.name === 'ucp-kube-apiserver');
    if (!apiserver) throw new Error('the reconciler plans no ucp-kube-apiserver for a manager');

    // The material as the controller hands it to a manager's agent and keeps for itself.
    const pki = new KubePki(controller.store, controller.cas, kek);
    const material = await pki.nodeMaterial(node);
    const clientMaterial = await pki.controllerMaterial();
    for (const file of kubeNodeFiles(
      { material, apiserverUrl, controllerUrl: managerControllerUrl(node, settings) },
      join(certsDir, 'kube'),
    )) {
      await mkdir(dirname(file.path), { recursive: true });
      await writeFile(file.path, file.content, { mode: file.mode });
    }
    // The controller reads these lazily: written before the apiserver is there is soon enough.
    await mkdir(clientDir, { recursive: true });
    await writeFile(upstream.ca, clientMaterial.caPem);
    await writeFile(upstream.proxyKey, clientMaterial.frontProxy.keyPem, { mode: 0o600 });
    await writeFile(upstream.proxyCert, clientMaterial.frontProxy.certPem);
    await writeFile(upstream.adminKey, clientMaterial.admin.keyPem, { mode: 0o600 });
    await writeFile(upstream.adminCert, clientMaterial.admin.certPem);

    cluster = await startKubeCluster({
      nodeName: options.nodeName,
      kwokServer: options.kwokServer,
      kwokConfig: options.kwokConfig,
      startTimeoutMs: options.startTimeoutMs,
      apiserverPort,
      ca: await controller.cas.clusterAuthority(),
      frontProxy: clientMaterial.frontProxy,
      serviceAccount: material.serviceAccount,
      apiserverArgs: apiserver.command.slice(1),
      extraApiserverArgs: options.extraApiserverArgs,
    });
    const kube = cluster;
    await until('orca registering its admission webhooks', 30_000, async () => {
      for (const path of [
        '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/orca-ucp-authorization',
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/orca-ucp-node-selector',
      ])
        if ((await kube.request('GET', path)).status !== 200) return undefined;
      return true;
    });

    const clusterCaPem = material.caPem;
    const clientBundle = async (user: string, password: string): Promise<Record<string, string>> => {
      const reply = await httpsExchange(controller.url, '/api/clientbundle', {
        method: 'POST',
        ca: clusterCaPem,
        auth: basicAuth(user, password),
      });
      if (reply.status !== 200) throw new Error(`client bundle of ${user}: ${reply.status} ${reply.text}`);
      const zip = await JSZip.loadAsync(reply.body);
      const files: Record<string, string> = {};
      for (const entry of Object.values(zip.files))
        if (!entry.dir) files[entry.name] = await entry.async('string');
      return files;
    };
    return {
      controller,
      cluster,
      frontDoor: httpsUrl('127.0.0.1', frontDoorPort),
      clusterCaPem,
      webhookClient: { cert: material.webhookClient.certPem, key: material.webhookClient.keyPem },
      clientBundle,
      async bundleKubeconfig(user, password) {
        const kubeYml = (await clientBundle(user, password))['kube.yml'];
        if (kubeYml === undefined) throw new Error(`the client bundle of ${user} has no kube.yml`);
        const path = join(dir, `${user.replace(/[^A-Za-z0-9_.-]/g, '_')}-kube.yml`);
        await writeFile(path, kubeYml, { mode: 0o600 });
        return path;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** openid-client's fetch over node:https, trusting only `ca`. */
function pinnedFetch(ca: string): oidcClient.CustomFetch {
  return async (url, options) => {
    const headers: Record<string, string> = {};
    new Headers(options.headers as ConstructorParameters<typeof Headers>[0]).forEach(
      (v, k) => (headers[k] = v),
    );
    let body: string | undefined;
    if (options.body instanceof URLSearchParams) {
      body = options.body.toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    } else if (typeof options.body === 'string') body = options.body;
    const target = new URL(url);
    const reply = await httpsExchange(target.origin, `${target.pathname}${target.search}`, {
      method: options.method,
      headers,
      body,
      contentType: null,
      ca,
    });
    const responseHeaders = new Headers();
    for (const [k, v] of Object.entries(reply.headers)) {
      if (v !== undefined) responseHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    return new Response(reply.status === 204 ? null : reply.body, {
      status: reply.status,
      headers: responseHeaders,
    });
  };
}

/**
 * An ID token from orca's OpenID Connect provider at `issuer` (`<controller>/oidc`), as kubectl's
 * OIDC helpers get one: the authorization code flow with PKCE through the provider's login page,
 * trusting only `ca`. For `client_id` kubernetes, the one the apiserver accepts.
 */
export async function orcaIdToken(
  issuer: string,
  ca: string,
  username: string,
  password: string,
): Promise<string> {
  const config = await oidcClient.discovery(new URL(issuer), 'kubernetes', undefined, oidcClient.None(), {
    [oidcClient.customFetch]: pinnedFetch(ca),
  });
  // A loopback redirect that nothing listens on: the code is read from the Location header.
  const redirect = 'http://127.0.0.1:38123/callback';
  const verifier = oidcClient.randomPKCECodeVerifier();
  const state = oidcClient.randomState();
  let next = oidcClient.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: 'openid profile groups',
    code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  }).href;
  const cookies = new Map<string, string>();
  const go = async (url: URL, form?: Record<string, string>) => {
    const reply = await httpsExchange(url.origin, `${url.pathname}${url.search}`, {
      method: form ? 'POST' : 'GET',
      ca,
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      body: form ? new URLSearchParams(form).toString() : undefined,
      contentType: 'application/x-www-form-urlencoded',
    });
    const set = reply.headers['set-cookie'] ?? [];
    for (const line of set) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    return reply;
  };
  for (let hop = 0; hop < 10; hop++) {
    const url = new URL(next);
    if (url.protocol === 'http:') {
      const tokens = await oidcClient.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      if (!tokens.id_token) throw new Error('the token response has no id_token');
      return tokens.id_token;
    }
    let reply = await go(url);
    if (reply.status === 200 && reply.text.includes('<form')) {
      const action = /action="([^"]+)"/.exec(reply.text)?.[1]?.replace(/&#47;/g, '/');
      if (!action) throw new Error(`login: a form without action: ${reply.text}`);
      reply = await go(
        new URL(action, url),
        reply.text.includes('type="password"') ? { username, password } : {},
      );
    }
    if (reply.status !== 302 && reply.status !== 303) throw new Error(`login: ${reply.status} ${reply.text}`);
    next = new URL(String(reply.headers.location), url).href;
  }
  throw new Error('too many redirects');
}

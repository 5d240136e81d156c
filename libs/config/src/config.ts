// Settings for every orca process, read from the environment (ORCA_*) and command-line flags.
// Start-up validates them all and stops with a message that names the bad setting.
import { isAbsolute, resolve } from 'node:path';

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type StoreConfig =
  | { kind: 'embedded'; dir: string }
  | {
      kind: 'etcd';
      endpoints: string[];
      tls?: { caFile: string; certFile: string; keyFile: string };
      prefix?: string;
    };

export interface ControllerConfig {
  /** Address the controller binds and advertises. */
  host: string;
  port: number;
  /** Where local state lives: CA material for a local run, the embedded store, the KEK. */
  dataDir: string;
  store: StoreConfig;
  /** Key-encryption key for CA private keys at rest; a file path or the key itself. */
  kek?: string;
  kekFile?: string;
  adminPassword?: string;
  /** Node certificate validity in milliseconds (default 90 days, minimum 1 hour). */
  nodeCertValidityMs: number;
  /** How long without a heartbeat before a node is Down. */
  nodeDownAfterMs: number;
  /** The Kubernetes front door and webhooks; undefined when no apiserver is configured. */
  kube?: KubeConfig;
  /**
   * The front door's port and authorization mode when the apiserver is the one orca's reconciler
   * runs on managers (no ORCA_KUBE_APISERVER): the rest comes from the store.
   */
  kubeFrontDoor?: Pick<KubeConfig, 'port' | 'authorization'>;
  /**
   * ORCA_LOCAL_ENGINE: the unix socket of the Docker Engine on the controller's own node. The front
   * door reaches that engine on it rather than through the node's ucp-proxy; other nodes' engines
   * are always reached through their ucp-proxy.
   */
  localEngineSocket?: string;
}

/** Where the kube-apiserver is and how orca talks to it (files are read when first needed). */
export interface KubeConfig {
  /** The front door's port (UCP: 6443). */
  port: number;
  /** `https://host:port` of the kube-apiserver (UCP: 12388). */
  apiserverUrl: string;
  /** CA of the apiserver's serving certificate. */
  caFile: string;
  /** Front-proxy client certificate (its CA is the apiserver's --requestheader-client-ca-file). */
  proxyCertFile: string;
  proxyKeyFile: string;
  /** A client certificate in system:masters: namespace lists, webhook registration, RoleBinding sync. */
  adminCertFile: string;
  adminKeyFile: string;
  /** `webhook`: UCP 3.0, grants answered by the authorization webhook; `rbac`: UCP 3.1 RoleBindings. */
  authorization: 'webhook' | 'rbac';
  /**
   * The port the apiserver's webhooks are answered on by a thread of their own (0: any free port);
   * absent: only on the controller's port. ORCA_KUBE_WEBHOOK_PORT with an external apiserver; the
   * component settings (default 12389) when orca runs the apiserver.
   */
  webhookPort?: number;
}

export const DEFAULT_KUBE_PORT = 6443;

/** ORCA_KUBE_PORT and ORCA_KUBE_AUTHORIZATION, which apply however the apiserver is found. */
export function kubeFrontDoorFrom(env: Source): Pick<KubeConfig, 'port' | 'authorization'> {
  const authorization = env.ORCA_KUBE_AUTHORIZATION ?? 'webhook';
  if (authorization !== 'webhook' && authorization !== 'rbac')
    throw new ConfigError('ORCA_KUBE_AUTHORIZATION', `"${authorization}" is not webhook or rbac`);
  return { port: parsePort('ORCA_KUBE_PORT', env.ORCA_KUBE_PORT, DEFAULT_KUBE_PORT), authorization };
}

/** `orca up`'s Kubernetes control plane: on unless ORCA_KUBERNETES=false; its ports on the node. */
export interface KubeComponentsConfig {
  enabled: boolean;
  /** kube-apiserver (UCP: 12388). */
  apiserverPort: number;
  /** The etcd that stores Kubernetes' objects with the process runtime (UCP's ucp-kv: 12379, 12380). */
  kvClientPort: number;
  kvPeerPort: number;
  /** The controller's webhooks for its apiserver, on their own thread (orca's own port). */
  webhookPort: number;
}

export const DEFAULT_KUBE_APISERVER_PORT = 12388;
export const DEFAULT_KUBE_WEBHOOK_PORT = 12389;

export function kubeComponentsFrom(env: Source): KubeComponentsConfig {
  const raw = env.ORCA_KUBERNETES ?? 'true';
  if (raw !== 'true' && raw !== 'false')
    throw new ConfigError('ORCA_KUBERNETES', `"${raw}" is not true or false`);
  return {
    // An apiserver given by ORCA_KUBE_APISERVER replaces the one orca would run.
    enabled: raw === 'true' && !env.ORCA_KUBE_APISERVER,
    apiserverPort: parsePort(
      'ORCA_KUBE_APISERVER_PORT',
      env.ORCA_KUBE_APISERVER_PORT,
      DEFAULT_KUBE_APISERVER_PORT,
    ),
    kvClientPort: parsePort('ORCA_KUBE_KV_PORT', env.ORCA_KUBE_KV_PORT, 12379),
    kvPeerPort: parsePort('ORCA_KUBE_KV_PEER_PORT', env.ORCA_KUBE_KV_PEER_PORT, 12380),
    webhookPort: parsePort('ORCA_KUBE_WEBHOOK_PORT', env.ORCA_KUBE_WEBHOOK_PORT, DEFAULT_KUBE_WEBHOOK_PORT),
  };
}

export function kubeConfigFrom(env: Source): KubeConfig | undefined {
  const apiserverUrl = env.ORCA_KUBE_APISERVER;
  if (apiserverUrl === undefined || apiserverUrl === '') return undefined;
  if (!/^https:\/\/[^/]+$/.test(apiserverUrl))
    throw new ConfigError('ORCA_KUBE_APISERVER', `"${apiserverUrl}" is not an https://host:port URL`);
  const file = (setting: string): string => {
    const value = env[setting];
    if (value === undefined || value === '')
      throw new ConfigError(setting, 'required when ORCA_KUBE_APISERVER is set');
    return resolve(value);
  };
  const { port, authorization } = kubeFrontDoorFrom(env);
  return {
    port,
    apiserverUrl,
    caFile: file('ORCA_KUBE_CA_FILE'),
    proxyCertFile: file('ORCA_KUBE_PROXY_CERT_FILE'),
    proxyKeyFile: file('ORCA_KUBE_PROXY_KEY_FILE'),
    adminCertFile: file('ORCA_KUBE_ADMIN_CERT_FILE'),
    adminKeyFile: file('ORCA_KUBE_ADMIN_KEY_FILE'),
    authorization,
    webhookPort: !env.ORCA_KUBE_WEBHOOK_PORT
      ? undefined
      : env.ORCA_KUBE_WEBHOOK_PORT === '0'
        ? 0
        : parsePort('ORCA_KUBE_WEBHOOK_PORT', env.ORCA_KUBE_WEBHOOK_PORT, 0),
  };
}

export const DEFAULT_CONTROLLER_PORT = 8443;
export const NODE_CERT_DEFAULT_VALIDITY_MS = 2160 * 3600 * 1000;
export const NODE_CERT_MIN_VALIDITY_MS = 3600 * 1000;
export const NODE_DOWN_AFTER_MS = 15_000;
export const HEARTBEAT_PERIOD_MS = 5_000;

type Source = Record<string, string | undefined>;

function parsePort(setting: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(setting, `"${raw}" is not a port number`);
  const port = Number(raw);
  if (port < 1 || port > 65535) throw new ConfigError(setting, `${port} is outside 1-65535`);
  return port;
}

/** Parses a Go-style duration ("90d" is accepted too): 2160h, 30m, 1h30m, 45s, 500ms. */
export function parseDuration(setting: string, raw: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(raw); match; match = re.exec(raw)) {
    total += Number(match[1]) * units[match[2]];
    consumed = re.lastIndex;
  }
  if (raw === '' || consumed !== raw.length)
    throw new ConfigError(setting, `"${raw}" is not a duration like 2160h`);
  return total;
}

function parseHost(setting: string, raw: string | undefined, fallback: string): string {
  const host = raw ?? fallback;
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw new ConfigError(setting, `"${host}" is not a host name or address`);
  return host;
}

export function storeConfigFrom(env: Source, dataDir: string): StoreConfig {
  const endpoints = env.ORCA_ETCD_ENDPOINTS;
  if (endpoints === undefined || endpoints === '')
    return { kind: 'embedded', dir: resolve(dataDir, 'store') };
  const list = endpoints.split(',').map((s) => s.trim());
  for (const endpoint of list) {
    if (!/^https?:\/\/[^/]+$/.test(endpoint)) {
      throw new ConfigError('ORCA_ETCD_ENDPOINTS', `"${endpoint}" is not an http(s)://host:port URL`);
    }
  }
  const caFile = env.ORCA_ETCD_CA_FILE;
  const certFile = env.ORCA_ETCD_CERT_FILE;
  const keyFile = env.ORCA_ETCD_KEY_FILE;
  const tls = caFile && certFile && keyFile ? { caFile, certFile, keyFile } : undefined;
  if (list.some((e) => e.startsWith('https:')) && !tls) {
    throw new ConfigError(
      'ORCA_ETCD_CA_FILE',
      'https endpoints need ORCA_ETCD_CA_FILE, ORCA_ETCD_CERT_FILE and ORCA_ETCD_KEY_FILE',
    );
  }
  return { kind: 'etcd', endpoints: list, tls, prefix: env.ORCA_ETCD_PREFIX };
}

function localEngineFrom(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const path = raw.startsWith('unix://') ? raw.slice('unix://'.length) : raw;
  if (!isAbsolute(path) || path.includes('\0'))
    throw new ConfigError('ORCA_LOCAL_ENGINE', `"${raw}" is not an absolute unix socket path`);
  return path;
}

export function loadControllerConfig(
  env: Source = process.env,
  overrides: Partial<Record<string, string>> = {},
): ControllerConfig {
  const source: Source = { ...env, ...overrides };
  const dataDirRaw = source.ORCA_DATA_DIR ?? 'certs';
  if (dataDirRaw.includes('\0')) throw new ConfigError('ORCA_DATA_DIR', 'contains a NUL byte');
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(process.cwd(), dataDirRaw);
  const validity =
    source.ORCA_NODE_CERT_EXPIRY !== undefined
      ? parseDuration('ORCA_NODE_CERT_EXPIRY', source.ORCA_NODE_CERT_EXPIRY)
      : NODE_CERT_DEFAULT_VALIDITY_MS;
  if (validity < NODE_CERT_MIN_VALIDITY_MS) {
    throw new ConfigError('ORCA_NODE_CERT_EXPIRY', 'minimum certificate expiry time is: 1h');
  }
  const password = source.ORCA_ADMIN_PASSWORD;
  if (password !== undefined && password !== '' && password.length < 8) {
    throw new ConfigError('ORCA_ADMIN_PASSWORD', 'must be at least 8 characters');
  }
  return {
    host: parseHost('ORCA_HOST', source.ORCA_HOST, '127.0.0.1'),
    port: parsePort('ORCA_PORT', source.ORCA_PORT, DEFAULT_CONTROLLER_PORT),
    dataDir,
    store: storeConfigFrom(source, dataDir),
    kek: source.ORCA_KEK || undefined,
    kekFile: source.ORCA_KEK_FILE || undefined,
    adminPassword: password || undefined,
    nodeCertValidityMs: validity,
    nodeDownAfterMs:
      source.ORCA_NODE_DOWN_AFTER !== undefined
        ? parseDuration('ORCA_NODE_DOWN_AFTER', source.ORCA_NODE_DOWN_AFTER)
        : NODE_DOWN_AFTER_MS,
    kube: kubeConfigFrom(source),
    kubeFrontDoor: kubeFrontDoorFrom(source),
    localEngineSocket: localEngineFrom(source.ORCA_LOCAL_ENGINE),
  };
}

// The Kubernetes control plane orca's reconciler runs on managers (component setting
// `kubernetes.enabled`), seen from a controller: where its apiserver is (this manager's own, on the
// settings' port), the front-proxy and admin identities to reach it (issued from the cluster CA,
// kept in the store, written to files under the data dir for libs/kube), and, on the leader, one
// kwok fake Node per manager so workloads have somewhere to run (and none for a node that is no
// longer a manager), labelled as UCP labelled managers so UCPNodeSelector's node affinity keeps user
// workloads off them. No ORCA_KUBE_* setting is needed.
import {
  KUBE_WEBHOOK_PORT,
  componentSettings,
  httpsUrl,
  keys,
  KWOK_NODE_ANNOTATION,
  kubeEnabled,
  kubeNodeName,
  kwokNode,
  parseNodeKey,
  type KubePki,
  type NodeSpec,
} from '@orca/cluster';
import type { ControllerConfig, KubeConfig } from '@orca/config';
import { SYSTEM_COLLECTION_LABEL, type KubeUpstream } from '@orca/kube';
import type { Store } from '@orca/store';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function writeIfChanged(path: string, content: string, mode: number): void {
  try {
    if (readFileSync(path, 'utf8') === content) return;
  } catch {
    // not there yet
  }
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, content, { mode });
  renameSync(temp, path);
}

/**
 * The KubeConfig for the apiserver orca runs, or undefined when Kubernetes is off in the component
 * settings. The controller's host is a manager's address, and every manager runs its apiserver.
 */
export async function managedKubeConfig(
  config: ControllerConfig,
  store: Store,
  pki: KubePki,
): Promise<KubeConfig | undefined> {
  const settings = await componentSettings(store);
  if (!kubeEnabled(settings)) return undefined;
  const frontDoor = config.kubeFrontDoor ?? { port: 6443, authorization: 'webhook' as const };
  return {
    port: frontDoor.port,
    authorization: frontDoor.authorization,
    apiserverUrl: httpsUrl(config.host, settings.kubernetes.apiserverPort),
    // The apiserver on this manager was given this port for the webhooks (managerWebhookUrl).
    webhookPort: settings.kubernetes.webhookPort ?? KUBE_WEBHOOK_PORT,
    ...(await writeKubeClientFiles(config.dataDir, pki)),
  };
}

/**
 * Writes the controller's CA, front-proxy and admin files under `<data>/kube-client/` (only what
 * changed, each atomically). Called again periodically: KubePki renews certificates when they
 * are due, and libs/kube's KubeUpstream re-reads files that changed.
 */
export async function writeKubeClientFiles(
  dataDir: string,
  pki: KubePki,
): Promise<Pick<KubeConfig, 'caFile' | 'proxyCertFile' | 'proxyKeyFile' | 'adminCertFile' | 'adminKeyFile'>> {
  const material = await pki.controllerMaterial();
  const dir = join(dataDir, 'kube-client');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string, content: string, mode = 0o600) => {
    const path = join(dir, name);
    writeIfChanged(path, content, mode);
    return path;
  };
  return {
    caFile: file('ca.pem', material.caPem, 0o644),
    // Keys before certificates: a reader between the two sees an old pair or a new key it cannot use
    // yet, never a certificate without its key on disk.
    proxyKeyFile: file('front-proxy-key.pem', material.frontProxy.keyPem),
    proxyCertFile: file('front-proxy.pem', material.frontProxy.certPem, 0o644),
    adminKeyFile: file('admin-key.pem', material.admin.keyPem),
    adminCertFile: file('admin.pem', material.admin.certPem, 0o644),
  };
}

/** How often a controller rewrites its Kubernetes client files (renewed certificates). */
const CLIENT_FILES_PERIOD_MS = 60_000;

/** The label kwokNode puts on a manager's fake Node: the orca node id it stands for. */
const ORCA_NODE_LABEL = 'com.docker.ucp.orca.node';

/**
 * The collection labels UCP put on manager nodes (`kubectl describe node` of a UCP manager); the
 * node affinity of libs/kube's UCPNodeSelector webhook keys on `com.docker.ucp.collection.system`.
 */
export const MANAGER_NODE_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'com.docker.ucp.collection': 'system',
  'com.docker.ucp.collection.root': 'true',
  'com.docker.ucp.collection.swarm': 'true',
  [SYSTEM_COLLECTION_LABEL]: 'true',
});

interface NodeMetadata {
  name?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface NodeList {
  items?: { metadata?: NodeMetadata }[];
}

/** kwok's fake Node for a manager, with UCP's manager labels. */
export function managerFakeNode(node: NodeSpec): Record<string, unknown> {
  const base = kwokNode(node) as { metadata: NodeMetadata };
  return {
    ...base,
    metadata: { ...base.metadata, labels: { ...base.metadata.labels, ...MANAGER_NODE_LABELS } },
  };
}

const missingManagerLabels = (labels: Record<string, string> = {}): boolean =>
  Object.entries(MANAGER_NODE_LABELS).some(([key, value]) => labels[key] !== value);

/**
 * Leader-only, every few seconds: a kwok fake Node for every manager that has none, and none for
 * a node that is no longer a manager (removed or demoted). Level-triggered: each pass compares the
 * managers in the store with the fake Nodes orca made, whatever happened in between.
 */
export class FakeNodeLoop {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastProblem = '';

  constructor(
    private readonly store: Store,
    private readonly kube: { readonly upstream: KubeUpstream },
    private readonly isLeader: () => boolean,
    private readonly log: { warn(message: string): void },
    private readonly periodMs = 3_000,
    /** Every controller (leader or not): keeps its own client files current (writeKubeClientFiles). */
    private readonly refreshClientFiles?: () => Promise<unknown>,
  ) {}

  private clientFilesAt = 0;

  start(): void {
    const tick = async () => {
      if (this.refreshClientFiles && Date.now() - this.clientFilesAt >= CLIENT_FILES_PERIOD_MS) {
        this.clientFilesAt = Date.now();
        await this.refreshClientFiles().catch((e: Error) => this.problem(`client files: ${e.message}`));
      }
      if (this.isLeader()) await this.once().catch((e: Error) => this.problem(e.message));
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.periodMs);
    };
    void tick();
  }

  private problem(message: string): void {
    if (message !== this.lastProblem) this.log.warn(`kube fake nodes: ${message}`);
    this.lastProblem = message;
  }

  async once(): Promise<void> {
    const specs = await this.store.range(keys.nodesPrefix);
    const managers = new Set<string>();
    for (const kv of specs.kvs) {
      if (parseNodeKey(kv.key)?.part !== 'spec') continue;
      const node = JSON.parse(kv.value) as NodeSpec;
      if (node.role !== 'swarm-manager') continue;
      managers.add(node.id);
      const name = kubeNodeName(node);
      const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
      const current = await this.kube.upstream.request('GET', path);
      if (current.status === 200) {
        // A fake Node made before the labels (or whose labels someone removed) gets them back.
        const metadata = (JSON.parse(current.body) as { metadata?: NodeMetadata }).metadata;
        if (
          metadata?.annotations?.[KWOK_NODE_ANNOTATION] !== 'fake' ||
          !missingManagerLabels(metadata.labels)
        )
          continue;
        const patched = await this.kube.upstream.request(
          'PATCH',
          path,
          { metadata: { labels: MANAGER_NODE_LABELS } },
          'application/merge-patch+json',
        );
        if (patched.status !== 200) throw new Error(`labelling node ${name}: ${patched.status}`);
        continue;
      }
      if (current.status !== 404) throw new Error(`GET node ${name}: ${current.status}`);
      const created = await this.kube.upstream.request('POST', '/api/v1/nodes', managerFakeNode(node));
      if (created.status !== 201 && created.status !== 409)
        throw new Error(`creating node ${name}: ${created.status} ${created.body.slice(0, 200)}`);
    }
    await this.removeStale(managers);
    this.lastProblem = '';
  }

  /** Deletes the fake Nodes orca made for nodes that are not managers any more (only those). */
  private async removeStale(managers: ReadonlySet<string>): Promise<void> {
    const listed = await this.kube.upstream.request(
      'GET',
      `/api/v1/nodes?labelSelector=${encodeURIComponent(ORCA_NODE_LABEL)}`,
    );
    if (listed.status !== 200) throw new Error(`listing nodes: ${listed.status}`);
    for (const item of (JSON.parse(listed.body) as NodeList).items ?? []) {
      const name = item.metadata?.name;
      const owner = item.metadata?.labels?.[ORCA_NODE_LABEL];
      // Only kwok's fake nodes that orca made: a real kubelet's Node is never touched.
      if (!name || !owner || item.metadata?.annotations?.[KWOK_NODE_ANNOTATION] !== 'fake') continue;
      if (managers.has(owner)) continue;
      const deleted = await this.kube.upstream.request('DELETE', `/api/v1/nodes/${encodeURIComponent(name)}`);
      if (deleted.status !== 200 && deleted.status !== 404)
        throw new Error(`deleting node ${name}: ${deleted.status} ${deleted.body.slice(0, 200)}`);
      if (deleted.status === 200)
        this.log.warn(`kube fake nodes: deleted ${name}: node ${owner} is no longer a manager`);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

// The Kubernetes control plane orca's reconciler runs on managers (component setting
// `kubernetes.enabled`), seen from a controller: where its apiserver is (this manager's own, on the
// settings' port), the front-proxy and admin identities to reach it (issued from the cluster CA,
// kept in the store, written to files under the data dir for libs/kube), and, on the leader, one
// kwok fake Node per manager so workloads have somewhere to run. No ORCA_KUBE_* setting is needed.
import {
  componentSettings,
  httpsUrl,
  keys,
  kubeEnabled,
  kubeNodeName,
  kwokNode,
  parseNodeKey,
  type KubePki,
  type NodeSpec,
} from '@orca/cluster';
import type { ControllerConfig, KubeConfig } from '@orca/config';
import type { KubeService } from '@orca/kube';
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
  const material = await pki.controllerMaterial();
  const dir = join(config.dataDir, 'kube-client');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string, content: string, mode = 0o600) => {
    const path = join(dir, name);
    writeIfChanged(path, content, mode);
    return path;
  };
  const frontDoor = config.kubeFrontDoor ?? { port: 6443, authorization: 'webhook' as const };
  return {
    port: frontDoor.port,
    authorization: frontDoor.authorization,
    apiserverUrl: httpsUrl(config.host, settings.kubernetes.apiserverPort),
    caFile: file('ca.pem', material.caPem, 0o644),
    proxyCertFile: file('front-proxy.pem', material.frontProxy.certPem, 0o644),
    proxyKeyFile: file('front-proxy-key.pem', material.frontProxy.keyPem),
    adminCertFile: file('admin.pem', material.admin.certPem, 0o644),
    adminKeyFile: file('admin-key.pem', material.admin.keyPem),
  };
}

/** Leader-only, every few seconds: a kwok fake Node for every manager that has none. */
export class FakeNodeLoop {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastProblem = '';

  constructor(
    private readonly store: Store,
    private readonly kube: KubeService,
    private readonly isLeader: () => boolean,
    private readonly log: { warn(message: string): void },
    private readonly periodMs = 3_000,
  ) {}

  start(): void {
    const tick = async () => {
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
    for (const kv of specs.kvs) {
      if (parseNodeKey(kv.key)?.part !== 'spec') continue;
      const node = JSON.parse(kv.value) as NodeSpec;
      if (node.role !== 'swarm-manager') continue;
      const name = kubeNodeName(node);
      const current = await this.kube.upstream.request('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
      if (current.status === 200) continue;
      if (current.status !== 404) throw new Error(`GET node ${name}: ${current.status}`);
      const created = await this.kube.upstream.request('POST', '/api/v1/nodes', kwokNode(node));
      if (created.status !== 201 && created.status !== 409)
        throw new Error(`creating node ${name}: ${created.status} ${created.body.slice(0, 200)}`);
    }
    this.lastProblem = '';
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

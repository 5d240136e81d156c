// What the cluster keeps in the store, and where. Spec (desired) and status (observed) live under
// separate keys so that writers of one never overwrite the other.

export type NodeRole = 'swarm-manager' | 'swarm-worker';
export type CertState = 'PENDING' | 'RENEW' | 'ISSUED' | 'FAILED';

export const ROOT = '/orca/v1';
export const keys = {
  cluster: `${ROOT}/cluster`,
  clusterCa: `${ROOT}/ca/cluster`,
  clientCa: `${ROOT}/ca/client`,
  joinTokens: `${ROOT}/jointokens`,
  componentSettings: `${ROOT}/settings/components`,
  nodesPrefix: `${ROOT}/nodes/`,
  elections: `${ROOT}/elections/singletons`,
  nodeSpec: (id: string) => `${ROOT}/nodes/${id}/spec`,
  nodeCert: (id: string) => `${ROOT}/nodes/${id}/cert`,
  nodeStatus: (id: string) => `${ROOT}/nodes/${id}/status`,
  nodeDesired: (id: string) => `${ROOT}/nodes/${id}/desired`,
  /** Kubernetes PKI shared by every manager (service-account key, component client certificates). */
  kubeCluster: `${ROOT}/kube/cluster`,
  /** A manager's kube-apiserver serving certificate (its SANs name the node's address). */
  kubeNode: (id: string) => `${ROOT}/kube/nodes/${id}`,
};

/** Splits `/orca/v1/nodes/<id>/<part>` into its id and part. */
export function parseNodeKey(key: string): { id: string; part: string } | undefined {
  if (!key.startsWith(keys.nodesPrefix)) return undefined;
  const [id, part, ...rest] = key.slice(keys.nodesPrefix.length).split('/');
  if (!id || !part || rest.length > 0) return undefined;
  return { id, part };
}

export interface ClusterRecord {
  /** Swarm-style cluster id: O= of every node certificate. */
  clusterId: string;
  /** UCP instance id: O=Orca: <id> of client certificates. */
  instanceId: string;
  createdAt: string;
  nodeCertValidityMs: number;
}

export interface SealedCa {
  certPem: string;
  sealedKey: string;
}

export interface NodeSpec {
  id: string;
  role: NodeRole;
  hostname: string;
  /** The address the node's components bind to and managers reach it at. */
  address: string;
  /** The swarm node id of the engine, when the node is a swarm member. */
  engineNodeId?: string;
  /** How components run on this node. */
  runtime: 'docker' | 'process';
  /** Host facts the agent reported at join, used to plan its components. */
  facts: NodeFacts;
  createdAt: string;
}

export interface NodeFacts {
  /** Host path of the node's engine socket, when it has an engine. */
  engineSocket?: string;
  /** Process runtime: where the node certificate files are, and the argv that runs orca. */
  certsDir?: string;
  orcaCommand?: string[];
}

export interface NodeCertRecord {
  state: CertState;
  /** The CSR waiting to be signed (PENDING/RENEW). */
  csrPem?: string;
  certPem?: string;
  notAfter?: string;
  error?: string;
  updatedAt: string;
}

export interface ComponentState {
  name: string;
  state: 'running' | 'missing' | 'stopped' | 'failed';
  specHash?: string;
  id?: string;
}

export interface NodeStatusRecord {
  heartbeatAt: string;
  components: ComponentState[];
  engine?: { version?: string; swarmNodeId?: string; reachable: boolean };
  lastReconcile?: { at: string; converged: boolean; report?: string };
}

export interface NodeView {
  id: string;
  role: NodeRole;
  hostname: string;
  address: string;
  engineNodeId?: string;
  certificate: { state: CertState; notAfter?: string };
  components: ComponentState[];
  /** Ready while heartbeats arrive; Down once none came for the configured window. */
  status: 'Ready' | 'Down';
  lastHeartbeat?: string;
}

export interface ComponentSettings {
  images: { orca: string; etcd: string };
  /** Extra flags per component name, appended to its command. */
  extraArgs: Record<string, string[]>;
  controllerPort: number;
  /** The Kubernetes control plane on managers; absent or `enabled: false`: none. */
  kubernetes?: KubernetesSettings;
}

export interface KubernetesSettings {
  enabled: boolean;
  /** kube-apiserver's port on each manager (UCP: 12388). */
  apiserverPort: number;
  /** The controller's webhooks for its apiserver, on their own thread (default KUBE_WEBHOOK_PORT). */
  webhookPort?: number;
  /** Docker runtime: the image holding kube-apiserver, kube-controller-manager, kube-scheduler and kwok. */
  image?: string;
  /** Process runtime: the binaries (etcd is Kubernetes' storage there, run as ucp-kv). */
  binaries?: {
    kubeApiserver: string;
    kubeControllerManager: string;
    kubeScheduler: string;
    kwok: string;
    etcd: string;
  };
  /** Process runtime: ucp-kv's client and peer ports (UCP: 12379, 12380). */
  kvClientPort?: number;
  kvPeerPort?: number;
}

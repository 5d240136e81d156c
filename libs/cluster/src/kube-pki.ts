// The Kubernetes control plane's certificates and keys, issued by orca from the cluster CA and kept
// in the store with every private key sealed by the KEK (like the CA keys), so any manager can hand
// them out and a manager itself keeps nothing. Shared by all managers: the service-account signing
// key and the client certificates of the components, the webhooks' caller, orca's front proxy and
// orca's admin. Per manager: the apiserver's serving certificate, whose SANs name the node.
import { generateKeyPair, openSecret, sealSecret } from '@orca/pki';
import type { Store } from '@orca/store';
import type { CertificateAuthorityService } from './certificate-authority.service.js';
import { keys, type NodeSpec } from './model.js';

/** UCP's Kubernetes service range; its first address is the `kubernetes` Service's cluster IP. */
export const KUBE_SERVICE_CIDR = '10.96.0.0/16';
export const KUBE_SERVICE_IP = '10.96.0.1';

/** Who the Kubernetes client certificates name (CN = user, O = group). */
export const KUBE_IDENTITIES = {
  /** The only name --requestheader-allowed-names accepts: orca's 6443 front door. */
  frontProxy: { commonName: 'orca-front-proxy' },
  /** orca's own calls (namespace lists, webhook registration, RoleBinding sync, fake nodes). */
  admin: { commonName: 'orca-kube-admin', organization: 'system:masters' },
  controllerManager: { commonName: 'system:kube-controller-manager' },
  scheduler: { commonName: 'system:kube-scheduler' },
  // kwok plays every kubelet of its node: nodes, pods, leases and events across namespaces.
  kwok: { commonName: 'system:kwok', organization: 'system:masters' },
  /** The apiserver calling orca's webhooks; any cluster-CA certificate is accepted there. */
  webhookClient: { commonName: 'kube-apiserver' },
} as const;

type ClientName = keyof typeof KUBE_IDENTITIES;
const CLIENT_NAMES = Object.keys(KUBE_IDENTITIES) as ClientName[];

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

interface SealedPair {
  certPem: string;
  sealedKey: string;
}

interface KubeClusterRecord {
  serviceAccount: { publicKeyPem: string; sealedKey: string };
  clients: Record<ClientName, SealedPair>;
  createdAt: string;
}

interface KubeNodeRecord {
  hosts: string[];
  apiserver: SealedPair;
  createdAt: string;
}

/** What a manager's agent needs to run its Kubernetes components (sent over mutual TLS only). */
export interface KubeNodeMaterial {
  /** Cluster CA bundle: the apiserver's client CA, request-header CA and what its clients trust. */
  caPem: string;
  apiserver: CertAndKey;
  serviceAccount: { publicKeyPem: string; privateKeyPem: string };
  controllerManager: CertAndKey;
  scheduler: CertAndKey;
  kwok: CertAndKey;
  webhookClient: CertAndKey;
}

/** What a controller needs to talk to an apiserver: its CA, the front-proxy and admin identities. */
export interface KubeControllerMaterial {
  caPem: string;
  frontProxy: CertAndKey;
  admin: CertAndKey;
}

/** The apiserver's serving names: the node, loopback, and the in-cluster `kubernetes` Service. */
export function apiserverHosts(node: Pick<NodeSpec, 'address' | 'hostname'>): string[] {
  return [
    ...new Set([
      node.address,
      '127.0.0.1',
      'localhost',
      node.hostname,
      KUBE_SERVICE_IP,
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ]),
  ].filter((h) => h !== '');
}

export class KubePki {
  constructor(
    private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly kek: string,
  ) {}

  private async issue(commonName: string, organization: string | undefined, hosts: string[]) {
    const keyPair = await generateKeyPair();
    const { certPem } = await (
      await this.cas.clusterAuthority()
    ).issueServerCertificate({ publicKeyPem: keyPair.publicKeyPem, commonName, organization, hosts });
    return { certPem, sealedKey: sealSecret(keyPair.privateKeyPem, this.kek) };
  }

  private open(pair: SealedPair): CertAndKey {
    return { certPem: pair.certPem, keyPem: openSecret(pair.sealedKey, this.kek) };
  }

  /** The shared record, created on first use; concurrent creators agree on whichever wrote first. */
  private async clusterRecord(): Promise<KubeClusterRecord> {
    for (;;) {
      const kv = await this.store.get(keys.kubeCluster);
      if (kv) return JSON.parse(kv.value) as KubeClusterRecord;
      const serviceAccount = await generateKeyPair();
      const clients = {} as Record<ClientName, SealedPair>;
      for (const name of CLIENT_NAMES) {
        const identity: { commonName: string; organization?: string } = KUBE_IDENTITIES[name];
        clients[name] = await this.issue(identity.commonName, identity.organization, []);
      }
      const record: KubeClusterRecord = {
        serviceAccount: {
          publicKeyPem: serviceAccount.publicKeyPem,
          sealedKey: sealSecret(serviceAccount.privateKeyPem, this.kek),
        },
        clients,
        createdAt: new Date().toISOString(),
      };
      const created = await this.store.txn(
        [{ key: keys.kubeCluster, target: 'createRevision', op: '=', value: 0 }],
        [{ type: 'put', key: keys.kubeCluster, value: JSON.stringify(record) }],
      );
      if (created.succeeded) return record;
    }
  }

  /** The node's serving certificate; reissued when the node's names changed. */
  private async nodeRecord(node: NodeSpec): Promise<KubeNodeRecord> {
    const hosts = apiserverHosts(node);
    for (;;) {
      const kv = await this.store.get(keys.kubeNode(node.id));
      const current = kv ? (JSON.parse(kv.value) as KubeNodeRecord) : undefined;
      if (current && sameHosts(current.hosts, hosts)) return current;
      const record: KubeNodeRecord = {
        hosts,
        apiserver: await this.issue('kube-apiserver', undefined, hosts),
        createdAt: new Date().toISOString(),
      };
      const written = await this.store.txn(
        [
          kv
            ? { key: keys.kubeNode(node.id), target: 'modRevision', op: '=', value: kv.modRevision }
            : { key: keys.kubeNode(node.id), target: 'createRevision', op: '=', value: 0 },
        ],
        [{ type: 'put', key: keys.kubeNode(node.id), value: JSON.stringify(record) }],
      );
      if (written.succeeded) return record;
    }
  }

  async nodeMaterial(node: NodeSpec): Promise<KubeNodeMaterial> {
    const cluster = await this.clusterRecord();
    const nodeRecord = await this.nodeRecord(node);
    return {
      caPem: await this.cas.clusterBundle(),
      apiserver: this.open(nodeRecord.apiserver),
      serviceAccount: {
        publicKeyPem: cluster.serviceAccount.publicKeyPem,
        privateKeyPem: openSecret(cluster.serviceAccount.sealedKey, this.kek),
      },
      controllerManager: this.open(cluster.clients.controllerManager),
      scheduler: this.open(cluster.clients.scheduler),
      kwok: this.open(cluster.clients.kwok),
      webhookClient: this.open(cluster.clients.webhookClient),
    };
  }

  async controllerMaterial(): Promise<KubeControllerMaterial> {
    const cluster = await this.clusterRecord();
    return {
      caPem: await this.cas.clusterBundle(),
      frontProxy: this.open(cluster.clients.frontProxy),
      admin: this.open(cluster.clients.admin),
    };
  }
}

function sameHosts(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}

// The Kubernetes control plane's certificates and keys, issued by orca from the cluster CA and kept
// in the store with every private key sealed by the KEK (like the CA keys), so any manager can hand
// them out and a manager itself keeps nothing. Shared by all managers: the service-account signing
// key and the client certificates of the components, the webhooks' caller, orca's front proxy and
// orca's admin. Per manager: the apiserver's serving certificate, whose SANs name the node.
// Level-triggered renewal: whenever material is read, a certificate that no longer chains to the
// current cluster CA, or is in the last third of its validity, is reissued (the service-account
// key is kept, so tokens already issued stay valid); agents then write the new files and their
// components restart.
import {
  DEFAULT_SERVER_CERT_VALIDITY_MS,
  generateKeyPair,
  openSecret,
  parseCertificate,
  sealSecret,
  verifyCertificate,
} from '@orca/pki';
import type { Store } from '@orca/store';
import type { CertificateAuthorityService } from './certificate-authority.service.js';
import { keys, type NodeSpec } from './model.js';

/** UCP's Kubernetes service range; its first address is the `kubernetes` Service's cluster IP. */
export const KUBE_SERVICE_CIDR = '10.96.0.0/16';
export const KUBE_SERVICE_IP = firstAddressOf(KUBE_SERVICE_CIDR);

/** The first host address of an IPv4 CIDR (what the apiserver gives the `kubernetes` Service). */
export function firstAddressOf(cidr: string): string {
  const octets = cidr.split('/')[0]!.split('.').map(Number);
  const value = (((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0) + 1;
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

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
  renewedAt?: string;
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
    /** Validity of the certificates it issues; they are renewed in the last third of it. */
    private readonly validityMs = DEFAULT_SERVER_CERT_VALIDITY_MS,
  ) {}

  private async issue(commonName: string, organization: string | undefined, hosts: string[]) {
    const keyPair = await generateKeyPair();
    const { certPem } = await (
      await this.cas.clusterAuthority()
    ).issueServerCertificate({
      publicKeyPem: keyPair.publicKeyPem,
      commonName,
      organization,
      hosts,
      validityMs: this.validityMs,
    });
    return { certPem, sealedKey: sealSecret(keyPair.privateKeyPem, this.kek) };
  }

  /** Due for reissue: not from the current cluster CA (or expired), or in its last third. */
  private stale(pair: SealedPair | undefined, bundle: string): boolean {
    if (!pair) return true;
    try {
      verifyCertificate(pair.certPem, bundle);
    } catch {
      return true;
    }
    return parseCertificate(pair.certPem).notAfter.getTime() - Date.now() < this.validityMs / 3;
  }

  private open(pair: SealedPair): CertAndKey {
    return { certPem: pair.certPem, keyPem: openSecret(pair.sealedKey, this.kek) };
  }

  /**
   * The shared record, created on first use and renewed when a client certificate is due;
   * concurrent writers agree on whichever wrote first (compare-and-swap on the key's revision).
   */
  private async clusterRecord(): Promise<KubeClusterRecord> {
    for (;;) {
      const kv = await this.store.get(keys.kubeCluster);
      const current = kv ? (JSON.parse(kv.value) as KubeClusterRecord) : undefined;
      const bundle = await this.cas.clusterBundle();
      const due = CLIENT_NAMES.filter((name) => this.stale(current?.clients[name], bundle));
      if (current && due.length === 0) return current;
      // The service-account key stays: tokens already issued must keep verifying.
      let serviceAccount = current?.serviceAccount;
      if (!serviceAccount) {
        const pair = await generateKeyPair();
        serviceAccount = {
          publicKeyPem: pair.publicKeyPem,
          sealedKey: sealSecret(pair.privateKeyPem, this.kek),
        };
      }
      const clients = { ...current?.clients } as Record<ClientName, SealedPair>;
      for (const name of due) {
        const identity: { commonName: string; organization?: string } = KUBE_IDENTITIES[name];
        clients[name] = await this.issue(identity.commonName, identity.organization, []);
      }
      const now = new Date().toISOString();
      const record: KubeClusterRecord = {
        serviceAccount,
        clients,
        createdAt: current?.createdAt ?? now,
        ...(current ? { renewedAt: now } : {}),
      };
      const written = await this.store.txn(
        [
          kv
            ? { key: keys.kubeCluster, target: 'modRevision', op: '=', value: kv.modRevision }
            : { key: keys.kubeCluster, target: 'createRevision', op: '=', value: 0 },
        ],
        [{ type: 'put', key: keys.kubeCluster, value: JSON.stringify(record) }],
      );
      if (written.succeeded) return record;
    }
  }

  /** The node's serving certificate; reissued when the node's names changed or it is due. */
  private async nodeRecord(node: NodeSpec): Promise<KubeNodeRecord> {
    const hosts = apiserverHosts(node);
    for (;;) {
      const kv = await this.store.get(keys.kubeNode(node.id));
      const current = kv ? (JSON.parse(kv.value) as KubeNodeRecord) : undefined;
      const bundle = await this.cas.clusterBundle();
      if (current && sameHosts(current.hosts, hosts) && !this.stale(current.apiserver, bundle))
        return current;
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

// The cluster's two CAs and join tokens, kept in the store with the private keys sealed by the KEK
// so any manager can take over signing after a failover.
import {
  CertificateAuthority,
  createRootCa,
  generateJoinToken,
  matchJoinToken,
  openSecret,
  sealSecret,
} from '@orca/pki';
import { lastWrite, type Store } from '@orca/store';
import { ROOT, keys, type ClusterRecord, type NodeRole, type SealedCa } from './model.js';
import { newId } from './ids.js';

export interface JoinTokens {
  worker: string;
  manager: string;
}

export const CLUSTER_ROOT_CN = 'swarm-ca';
export const CLIENT_ROOT_CN = 'UCP Client Root CA';

export class ClusterNotInitializedError extends Error {
  constructor() {
    super('the cluster has not been initialised (no CA in the store)');
    this.name = 'ClusterNotInitializedError';
  }
}

/** Both CAs' keys share this prefix: a write under it (a rotation here) makes the next use re-read. */
const CA_PREFIX = `${ROOT}/ca/`;
/**
 * How long a loaded CA is used without asking the store whether it changed. Every client
 * certificate check asks for a CA (each Kubernetes request, new connections to the front doors),
 * and a store read is a round trip to etcd, or a wait for the embedded store's fsync in flight.
 * Writes through this process are seen at once (lastWrite); another manager's within this time.
 */
const CA_RECHECK_MS = 1_000;

interface LoadedCa {
  revision: number;
  ca: CertificateAuthority;
  checkedAt: number;
  /** lastWrite(store, CA_PREFIX) when it was checked. */
  mark: number;
}

export class CertificateAuthorityService {
  private clusterCa?: LoadedCa;
  private clientCa?: LoadedCa;

  constructor(
    private readonly store: Store,
    private readonly kek: string,
  ) {}

  /**
   * Creates the cluster record, both CAs and the join tokens unless they exist. Safe to run on
   * every start and from several managers at once: each record is created only if absent.
   */
  async bootstrap(nodeCertValidityMs: number): Promise<{ created: boolean; cluster: ClusterRecord }> {
    const existing = await this.store.get(keys.cluster);
    if (existing) return { created: false, cluster: JSON.parse(existing.value) as ClusterRecord };
    const cluster: ClusterRecord = {
      clusterId: newId(),
      instanceId: newId(),
      createdAt: new Date().toISOString(),
      nodeCertValidityMs,
    };
    const clusterRoot = await createRootCa({ commonName: CLUSTER_ROOT_CN });
    const clientRoot = await createRootCa({ commonName: CLIENT_ROOT_CN });
    const seal = (ca: { certPem: string; keyPem: string }): string =>
      JSON.stringify({ certPem: ca.certPem, sealedKey: sealSecret(ca.keyPem, this.kek) } satisfies SealedCa);
    const bundle = new CertificateAuthority(clusterRoot).bundlePem;
    const tokens: JoinTokens = { worker: generateJoinToken(bundle), manager: generateJoinToken(bundle) };
    const result = await this.store.txn(
      [{ key: keys.cluster, target: 'createRevision', op: '=', value: 0 }],
      [
        { type: 'put', key: keys.cluster, value: JSON.stringify(cluster) },
        { type: 'put', key: keys.clusterCa, value: seal(clusterRoot) },
        { type: 'put', key: keys.clientCa, value: seal(clientRoot) },
        { type: 'put', key: keys.joinTokens, value: sealSecret(JSON.stringify(tokens), this.kek) },
      ],
    );
    if (!result.succeeded) return this.bootstrap(nodeCertValidityMs);
    return { created: true, cluster };
  }

  async cluster(): Promise<ClusterRecord> {
    const kv = await this.store.get(keys.cluster);
    if (!kv) throw new ClusterNotInitializedError();
    return JSON.parse(kv.value) as ClusterRecord;
  }

  private async load(key: string, cached?: LoadedCa): Promise<LoadedCa> {
    const mark = lastWrite(this.store, CA_PREFIX);
    const now = Date.now();
    if (cached && cached.mark === mark && now - cached.checkedAt < CA_RECHECK_MS) return cached;
    const kv = await this.store.get(key);
    if (!kv) throw new ClusterNotInitializedError();
    if (cached && cached.revision === kv.modRevision) return { ...cached, checkedAt: now, mark };
    const sealed = JSON.parse(kv.value) as SealedCa;
    return {
      revision: kv.modRevision,
      ca: new CertificateAuthority({
        certPem: sealed.certPem,
        keyPem: openSecret(sealed.sealedKey, this.kek),
      }),
      checkedAt: now,
      mark,
    };
  }

  async clusterAuthority(): Promise<CertificateAuthority> {
    this.clusterCa = await this.load(keys.clusterCa, this.clusterCa);
    return this.clusterCa.ca;
  }

  async clientAuthority(): Promise<CertificateAuthority> {
    this.clientCa = await this.load(keys.clientCa, this.clientCa);
    return this.clientCa.ca;
  }

  /** The exact CA bundle managers serve; join tokens pin its SHA-256. */
  async clusterBundle(): Promise<string> {
    return (await this.clusterAuthority()).bundlePem;
  }

  async joinTokens(): Promise<JoinTokens> {
    const kv = await this.store.get(keys.joinTokens);
    if (!kv) throw new ClusterNotInitializedError();
    return JSON.parse(openSecret(kv.value, this.kek)) as JoinTokens;
  }

  /** Replaces one token; the old one fails from the moment this returns. */
  async rotateJoinToken(role: 'worker' | 'manager'): Promise<JoinTokens> {
    for (;;) {
      const kv = await this.store.get(keys.joinTokens);
      if (!kv) throw new ClusterNotInitializedError();
      const tokens = JSON.parse(openSecret(kv.value, this.kek)) as JoinTokens;
      const next = { ...tokens, [role]: generateJoinToken(await this.clusterBundle()) };
      const result = await this.store.txn(
        [{ key: keys.joinTokens, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: keys.joinTokens, value: sealSecret(JSON.stringify(next), this.kek) }],
      );
      if (result.succeeded) return next;
    }
  }

  /** The role a presented join token grants, compared in constant time; undefined when it matches neither. */
  async roleForToken(token: string): Promise<NodeRole | undefined> {
    return matchJoinToken(token, await this.joinTokens());
  }
}

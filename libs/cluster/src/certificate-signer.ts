// Leader-only: signs PENDING and RENEW node certificate requests. Level-triggered: every pass reads
// the current record; a write only lands while this manager still holds leadership (fenced txn) and
// the record has not changed since it was read.
import type { Leadership, Store } from '@orca/store';
import type { CertificateAuthorityService } from './certificate-authority.service.js';
import { PrefixInformer } from './informer.js';
import { keys, parseNodeKey, type NodeCertRecord, type NodeSpec } from './model.js';

export interface Logger {
  log(message: string): void;
  error(message: string): void;
}

/** Retry for requests that could not be signed yet (swarmkit's defaultReconciliationRetryInterval). */
const RESYNC_MS = 10_000;

export class CertificateSigner {
  private informer?: PrefixInformer;
  private readonly inFlight = new Set<string>();
  private readonly again = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly logger: Logger,
  ) {}

  async start(leadership: Leadership): Promise<void> {
    this.informer = new PrefixInformer(
      this.store,
      keys.nodesPrefix,
      (changed) => {
        for (const key of changed) {
          const parsed = parseNodeKey(key);
          if (parsed?.part === 'cert') this.enqueue(parsed.id, leadership);
        }
      },
      { resyncMs: RESYNC_MS, onError: (e) => this.logger.error(`certificate signer: ${e.message}`) },
    );
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }

  private enqueue(nodeId: string, leadership: Leadership): void {
    if (this.inFlight.has(nodeId)) {
      this.again.add(nodeId);
      return;
    }
    this.inFlight.add(nodeId);
    this.signOne(nodeId, leadership)
      .catch((error: Error) => this.logger.error(`signing for node ${nodeId} failed: ${error.message}`))
      .finally(() => {
        this.inFlight.delete(nodeId);
        if (this.again.delete(nodeId) && leadership.isLeader()) this.enqueue(nodeId, leadership);
      });
  }

  private async signOne(nodeId: string, leadership: Leadership): Promise<void> {
    if (!leadership.isLeader()) return;
    const certKv = await this.store.get(keys.nodeCert(nodeId));
    if (!certKv) return;
    const record = JSON.parse(certKv.value) as NodeCertRecord;
    if (record.state !== 'PENDING' && record.state !== 'RENEW') return;
    const specKv = await this.store.get(keys.nodeSpec(nodeId));
    if (!specKv || !record.csrPem) return;
    const spec = JSON.parse(specKv.value) as NodeSpec;
    const cluster = await this.cas.cluster();
    let next: NodeCertRecord;
    try {
      const ca = await this.cas.clusterAuthority();
      // Subject, role and SANs come from our records; only the public key comes from the CSR.
      const issued = await ca.issueNodeCertificate({
        csrPem: record.csrPem,
        nodeId: spec.id,
        role: spec.role,
        clusterId: cluster.clusterId,
        hosts: [spec.address, spec.hostname],
        validityMs: cluster.nodeCertValidityMs,
      });
      next = {
        state: 'ISSUED',
        certPem: issued.certPem,
        notAfter: issued.notAfter.toISOString(),
        updatedAt: new Date().toISOString(),
      };
    } catch (error) {
      next = { state: 'FAILED', error: (error as Error).message, updatedAt: new Date().toISOString() };
    }
    const result = await this.store.txn(
      [
        leadership.fence(),
        { key: keys.nodeCert(nodeId), target: 'modRevision', op: '=', value: certKv.modRevision },
      ],
      [{ type: 'put', key: keys.nodeCert(nodeId), value: JSON.stringify(next) }],
    );
    if (result.succeeded)
      this.logger.log(`node ${nodeId} (${spec.role}): certificate ${next.state.toLowerCase()}`);
  }
}

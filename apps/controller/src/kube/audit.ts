// The 6443 front door's state-changing requests go to the same audit log as the UCP API and the
// Docker front door: the front door notes who, the Kubernetes operation and object, and the
// decision; the audit log's own writer turns that into an entry and stores it.
import { Logger } from '@nestjs/common';
import type { KubeService } from '@orca/kube';
import type { Store } from '@orca/store';
import { AuditLog, auditEntry } from '../audit/audit.middleware.js';

export function auditKubeFrontDoor(kube: KubeService, store: Store): void {
  const logger = new Logger('audit');
  const audit = new AuditLog(
    store,
    (json) => process.stdout.write(`${json}\n`),
    (m) => logger.warn(m),
  );
  kube.frontDoor.onAudit = ({ req, status, locals, started }) =>
    void audit.record(auditEntry(req, req.url ?? '/', status, locals, started));
}

// What an authorizing handler tells the audit log about a request: who asked, which UCP operation on
// which resource, and what the decision function answered. The audit middleware adds the outcome
// (the response status) and writes the entry; handlers only note their decision here.
export interface AuditDecision {
  /** Account name (or `node:<id>` for a manager node certificate). */
  subject: string;
  /** The UCP operation, e.g. "Service Create", "Container Exec", or an API action such as "Grant Create". */
  operation: string;
  /** The resource acted on: a collection path, a namespace, an object id or name. */
  resource?: string;
  decision: 'allow' | 'deny';
  /** Why a request was denied (the missing permission), in the words sent to the client. */
  reason?: string;
}

/** The slot on a response's locals (Express `res.locals`) where a handler leaves its decision. */
export const AUDIT_DECISION = 'orcaAuditDecision';

export function noteAuditDecision(locals: Record<string, unknown>, decision: AuditDecision): void {
  locals[AUDIT_DECISION] = decision;
}

export function auditDecisionOf(locals: Record<string, unknown>): AuditDecision | undefined {
  return locals[AUDIT_DECISION] as AuditDecision | undefined;
}

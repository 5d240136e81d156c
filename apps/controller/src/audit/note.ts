// What handlers tell the audit log, through Express's res.locals (reachable from the request):
// who authenticated, and the authorization decision with the UCP operation it was about.
import { noteAuditDecision, type AuditDecision } from '@orca/api';
import type { Request } from 'express';

/** res.locals slot for the authenticated caller, so entries name them even without a decision. */
export const AUDIT_SUBJECT = 'orcaAuditSubject';

function localsOf(request: Request): Record<string, unknown> | undefined {
  return request.res?.locals as Record<string, unknown> | undefined;
}

export function noteAuditSubject(request: Request, subject: string): void {
  const locals = localsOf(request);
  if (locals) locals[AUDIT_SUBJECT] = subject;
}

export function noteDecision(request: Request, decision: AuditDecision): void {
  const locals = localsOf(request);
  if (locals) noteAuditDecision(locals, decision);
}

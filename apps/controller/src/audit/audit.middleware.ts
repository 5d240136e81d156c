// Express middleware (registered first, so it sees every request, also those a body parser refuses):
// for each state-changing request it waits for the response and records one audit entry.
import { Logger } from '@nestjs/common';
import { auditDecisionOf } from '@orca/api';
import type { Store } from '@orca/store';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AuditLog, auditPath, type AuditEntry } from './audit-log.js';
import { AUDIT_SUBJECT } from './note.js';

const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Which requests change state: the write methods, and GET /api/clientbundle (it registers a key). */
export function isStateChanging(method: string, path: string): boolean {
  if (CHANGING.has(method)) {
    // Node heartbeats (every 5 s per node) report status; they are not changes anyone audits.
    return !/^\/api\/orca\/v1\/nodes\/[^/]+\/heartbeat\/?$/.test(path);
  }
  return method === 'GET' && /^\/api\/clientbundle\/?$/.test(path);
}

/** Without a noted subject: a certificate the TLS layer verified names the node or bundle user. */
function certificateSubject(request: Pick<IncomingMessage, 'socket'>): string | undefined {
  const socket = request.socket as TLSSocket;
  if (!socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const subject = socket.getPeerCertificate(false)?.subject;
  const cn = typeof subject?.CN === 'string' ? subject.CN : undefined;
  if (!cn) return undefined;
  const ou = typeof subject?.OU === 'string' ? subject.OU : '';
  return ou.startsWith('swarm-') ? `node:${cn}` : cn;
}

/** One entry for a finished request: who (noted decision, noted subject, or certificate), what, the outcome. */
export function auditEntry(
  request: Pick<IncomingMessage, 'method' | 'socket'>,
  originalUrl: string,
  status: number,
  locals: Record<string, unknown>,
  started: number,
): AuditEntry {
  const decision = auditDecisionOf(locals);
  const noted = locals[AUDIT_SUBJECT];
  return {
    id: AuditLog.newId(started),
    time: new Date(started).toISOString(),
    subject:
      decision?.subject ??
      (typeof noted === 'string' ? noted : undefined) ??
      certificateSubject(request) ??
      'anonymous',
    method: request.method ?? 'GET',
    path: auditPath(originalUrl),
    ...(decision?.operation ? { operation: decision.operation } : {}),
    ...(decision?.resource ? { resource: decision.resource.slice(0, 512) } : {}),
    ...(decision ? { decision: decision.decision } : {}),
    ...(decision?.reason ? { reason: decision.reason.slice(0, 512) } : {}),
    status,
    outcome: status === 0 ? 'incomplete' : status < 400 ? 'success' : 'failure',
    durationMs: Date.now() - started,
    ...(request.socket.remoteAddress ? { remoteAddress: request.socket.remoteAddress } : {}),
  };
}

export function auditMiddleware(
  store: Store,
  options: { line?: (json: string) => void; logger?: Logger } = {},
): (request: Request, response: Response, next: NextFunction) => void {
  const logger = options.logger ?? new Logger('audit');
  const log = new AuditLog(store, options.line ?? ((json) => process.stdout.write(`${json}\n`)), (m) =>
    logger.warn(m),
  );
  return (request, response, next) => {
    const path = request.originalUrl.split('?')[0] ?? '';
    if (!isStateChanging(request.method, path)) return next();
    const started = Date.now();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      // 0: no complete HTTP response (the client went away, or the connection was hijacked).
      const status = response.headersSent || response.writableFinished ? response.statusCode : 0;
      const entry = auditEntry(request, request.originalUrl, status, response.locals, started);
      void log.record(entry);
    };
    response.once('finish', finish);
    response.once('close', finish);
    next();
  };
}

export { AuditLog };

// The client certificate presented on this request's TLS connection, as PEM (undefined without one).
import { certificateDerToPem } from '@orca/pki';
import type { Request } from 'express';
import type { TLSSocket } from 'node:tls';

export function peerCertificatePem(request: Request): string | undefined {
  const socket = request.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate(false);
  if (!cert || !cert.raw) return undefined;
  return certificateDerToPem(cert.raw);
}

// The client certificate presented on this request's TLS connection, as PEM (undefined without one).
import type { Request } from 'express';
import type { TLSSocket } from 'node:tls';

export function peerCertificatePem(request: Request): string | undefined {
  const socket = request.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate(false);
  if (!cert || !cert.raw) return undefined;
  const b64 = cert.raw.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

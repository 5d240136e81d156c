// The Kubernetes front door (UCP's 6443): authenticates each request as orca does everywhere
// (bundle certificate, session/Bearer token, or an ID token from orca's OpenID Connect provider),
// then forwards it to the kube-apiserver over orca's front-proxy client certificate with the
// identity in X-Remote-User / X-Remote-Group. Bodies and responses are streamed, never buffered
// beyond one event-loop turn, so watches and `logs -f` flow; exec, attach and port-forward (SPDY
// or WebSocket upgrades) are spliced through as raw sockets after the upstream's 101.
import { ApiError } from '@orca/api';
import { certificateDerToPem } from '@orca/pki';
import {
  STATUS_CODES,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { createServer, request as httpsRequest, type Server, type ServerOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { KubeAuthenticator, KubeIdentity } from './identity.js';
import { kubeStatus, sendStatus } from './status.js';
import type { KubeUpstream } from './upstream.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Headers a client may not send through: identity assertions are orca's alone to make. */
function isIdentityHeader(name: string): boolean {
  return name === 'authorization' || name.startsWith('x-remote-') || name.startsWith('impersonate-');
}

/** The client's headers minus hop-by-hop and identity headers, plus the identity orca vouches for. */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  identity: KubeIdentity,
  upgrade?: string,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || isIdentityHeader(name)) continue;
    headers[name] = value;
  }
  headers['x-remote-user'] = identity.user;
  // One header per group: group names may not contain commas, but repeated headers are exact.
  headers['x-remote-group'] = identity.groups;
  if (upgrade) {
    headers.connection = 'Upgrade';
    headers.upgrade = upgrade;
  }
  return headers;
}

// A connection's client certificate as PEM, read once per TLS 1.3 connection (no renegotiation
// there, so it cannot change); reading and encoding it again costs more than the rest of authentication.
const peerPems = new WeakMap<TLSSocket, string | undefined>();

function peerCertificatePem(socket: TLSSocket): string | undefined {
  if (peerPems.has(socket)) return peerPems.get(socket);
  const cert = socket.getPeerCertificate(false);
  const pem = cert && cert.raw ? certificateDerToPem(cert.raw) : undefined;
  if (socket.getProtocol() === 'TLSv1.3') peerPems.set(socket, pem);
  return pem;
}

/** Larger than this, what has arrived is written at once instead of waiting for the turn's end. */
const RELAY_BATCH_BYTES = 256 * 1024;

/**
 * Copies a response body to the client. The apiserver writes a list as many small chunks (about
 * one per item), and every write to the client is a TLS record and a system call: what arrives in
 * one turn of the event loop goes out as one write (at the turn's end, so a watch event is not
 * held back), with backpressure from the client.
 */
function relayBody(incoming: IncomingMessage, res: ServerResponse): void {
  let pending: Buffer[] = [];
  let size = 0;
  let scheduled = false;
  let waiting = false;
  const flush = () => {
    scheduled = false;
    if (size === 0) return;
    const data = pending.length === 1 ? pending[0] : Buffer.concat(pending, size);
    pending = [];
    size = 0;
    if (res.destroyed) return; // the client left: its 'close' ends the upstream request
    if (!res.write(data) && !waiting) {
      waiting = true;
      incoming.pause();
      res.once('drain', () => {
        waiting = false;
        incoming.resume();
      });
    }
  };
  incoming.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    size += chunk.length;
    if (size >= RELAY_BATCH_BYTES) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  incoming.on('end', () => {
    flush();
    if (!res.destroyed) res.end();
  });
  incoming.on('error', () => res.destroy());
}

export interface KubeFrontDoorOptions {
  upstream: KubeUpstream;
  authenticator: KubeAuthenticator;
  /** Serving certificate and the CAs whose client certificates are asked for (client root CA). */
  tls: Pick<ServerOptions, 'key' | 'cert' | 'ca'>;
  log?: { warn(message: string): void };
}

export class KubeFrontDoor {
  readonly server: Server;

  constructor(private readonly options: KubeFrontDoorOptions) {
    this.server = createServer(
      {
        ...options.tls,
        // Client certificates are optional (tokens work too) and checked by the Authenticator.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      (req, res) => void this.handle(req, res),
    );
    // Watches and follows last as long as the client wants.
    this.server.requestTimeout = 0;
    this.server.timeout = 0;
    this.server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head),
    );
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /**
   * Where a request goes: always the apiserver, with the request's path as sent. (Never resolved
   * as a URL: `//host/x` would otherwise name another host.)
   */
  private target(req: IncomingMessage): { hostname: string; port: string; path: string } | undefined {
    const path = req.url ?? '';
    if (!path.startsWith('/') || path.startsWith('//')) return undefined;
    const { hostname, port } = this.options.upstream.url;
    return { hostname: hostname.replace(/^\[|\]$/g, ''), port: port || '443', path };
  }

  private async identify(req: IncomingMessage): Promise<KubeIdentity> {
    return this.options.authenticator.authenticate({
      authorization: req.headers.authorization,
      peerCertificatePem: peerCertificatePem(req.socket as TLSSocket),
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let identity: KubeIdentity;
    try {
      identity = await this.identify(req);
    } catch (error) {
      req.resume();
      if (error instanceof ApiError && error.status === 429) return sendStatus(res, 429, error.message);
      if (error instanceof ApiError) return sendStatus(res, 401, 'Unauthorized');
      // Not the credentials: the store or the directory failed.
      this.options.log?.warn(`kube front door: authentication failed: ${(error as Error).message}`);
      return sendStatus(res, 503, 'authentication is unavailable');
    }
    const target = this.target(req);
    if (!target) {
      req.resume();
      return sendStatus(res, 400, 'the request path must start with a single /');
    }
    let upstream: ReturnType<KubeUpstream['proxy']>;
    try {
      upstream = this.options.upstream.proxy();
    } catch (error) {
      this.options.log?.warn(`kube front door: apiserver not configured yet: ${(error as Error).message}`);
      sendStatus(res, 503, 'the Kubernetes API server is not available yet');
      req.resume();
      return;
    }
    const outgoing = httpsRequest(
      {
        ...target,
        method: req.method,
        agent: upstream.agent,
        headers: upstreamHeaders(req.headers, identity),
      },
      (incoming) => {
        const headers: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
        }
        res.writeHead(incoming.statusCode ?? 502, headers);
        // Send headers now: a watch may not produce its first event for a long time.
        res.flushHeaders();
        relayBody(incoming, res);
      },
    );
    outgoing.on('error', (error) => {
      if (res.headersSent) res.destroy();
      else sendStatus(res, 502, `the Kubernetes API server did not answer: ${error.message}`);
    });
    // A client that goes away ends its watch upstream too.
    res.on('close', () => outgoing.destroy());
    req.pipe(outgoing);
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const refuse = (code: number, message: string) => {
      const body = JSON.stringify(kubeStatus(code, message));
      socket.end(
        `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    };
    let identity: KubeIdentity;
    try {
      identity = await this.identify(req);
    } catch {
      refuse(401, 'Unauthorized');
      return;
    }
    let tls: ReturnType<KubeUpstream['proxy']>['tls'];
    try {
      tls = this.options.upstream.proxy().tls;
    } catch {
      refuse(503, 'the Kubernetes API server is not available yet');
      return;
    }
    const target = this.target(req);
    if (!target) {
      refuse(400, 'the request path must start with a single /');
      return;
    }
    // Its own connection (no pooled agent): after the 101 it belongs to this stream alone.
    const outgoing = httpsRequest({
      ...target,
      method: req.method,
      ...tls,
      agent: false,
      headers: upstreamHeaders(req.headers, identity, String(req.headers.upgrade ?? '')),
    });
    outgoing.on('upgrade', (incoming, upstreamSocket, upstreamHead) => {
      const lines = [`HTTP/1.1 101 ${incoming.statusMessage || 'Switching Protocols'}`];
      for (let i = 0; i < incoming.rawHeaders.length; i += 2)
        lines.push(`${incoming.rawHeaders[i]}: ${incoming.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.on('error', () => socket.destroy());
      socket.on('close', () => upstreamSocket.destroy());
      upstreamSocket.on('close', () => socket.destroy());
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    // No upgrade (refused, or an error from the apiserver): relay the plain answer and close.
    outgoing.on('response', (incoming) => {
      const lines = [`HTTP/1.1 ${incoming.statusCode ?? 502} ${incoming.statusMessage ?? ''}`];
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) {
        const name = incoming.rawHeaders[i].toLowerCase();
        if (['connection', 'transfer-encoding', 'keep-alive', 'content-length'].includes(name)) continue;
        lines.push(`${incoming.rawHeaders[i]}: ${incoming.rawHeaders[i + 1]}`);
      }
      const chunks: Buffer[] = [];
      incoming.on('data', (c: Buffer) => chunks.push(c));
      incoming.on('end', () => {
        const body = Buffer.concat(chunks);
        lines.push(`Content-Length: ${body.length}`, 'Connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        socket.end(body);
      });
    });
    outgoing.on('error', () => refuse(503, 'the Kubernetes API server did not answer'));
    socket.on('close', () => outgoing.destroy());
    outgoing.end();
  }
}

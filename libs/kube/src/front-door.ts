// The Kubernetes front door (UCP's 6443): authenticates each request as orca does everywhere
// (bundle certificate, session/Bearer token, or an ID token from orca's OpenID Connect provider),
// then forwards it to the kube-apiserver over orca's front-proxy client certificate with the
// identity in X-Remote-User / X-Remote-Group. A bearer token that is none of orca's (a
// service-account token, `kubectl create token`) is checked by the apiserver itself (TokenReview)
// and forwarded as the user the apiserver named. Impersonate-* headers pass: the apiserver asks
// the authorizers whether the forwarded user may impersonate. Bodies and responses are streamed,
// never buffered beyond one event-loop turn, so watches and `logs -f` flow; exec, attach and
// port-forward (SPDY or WebSocket upgrades) are spliced through as raw sockets after the
// upstream's 101. Every state-changing request is reported for the audit log.
import { ApiError, noteAuditDecision, type AuditDecision } from '@orca/api';
import { certificateDerToPem } from '@orca/pki';
import {
  STATUS_CODES,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { createServer, request as httpsRequest, type Server, type ServerOptions } from 'node:https';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { operationFor } from './authorization.js';
import type { KubeAuthenticator } from './identity.js';
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

/**
 * Headers a client may not send through: identity assertions are orca's alone to make.
 * (Impersonate-* do pass: the apiserver authorizes them for the user orca forwards.)
 */
function isIdentityHeader(name: string): boolean {
  return name === 'authorization' || name.startsWith('x-remote-');
}

/** Who a forwarded request is: orca's own identity, or the user the apiserver named for a token. */
export interface ForwardedIdentity {
  user: string;
  groups: string[];
  /** X-Remote-Uid (a service account's uid; the apiserver needs --requestheader-uid-headers). */
  uid?: string;
  /** X-Remote-Extra-<key> (a service-account token's pod, node and credential id). */
  extra?: Record<string, string[]>;
}

/**
 * An extra key as a header name suffix, as client-go's auth proxy writes it: bytes that are not
 * HTTP token characters, and `%`, percent-encoded (the apiserver unescapes and lower-cases it).
 */
export function extraHeaderKey(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /^[A-Za-z0-9!#$&'*+.^_`|~-]$/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The client's headers minus hop-by-hop and identity headers, plus the identity orca vouches for. */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  identity: ForwardedIdentity,
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
  if (identity.uid) headers['x-remote-uid'] = identity.uid;
  for (const [key, values] of Object.entries(identity.extra ?? {}))
    if (values.length > 0) headers[`x-remote-extra-${extraHeaderKey(key)}`] = values;
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

/** Requests whose answers are streams of events or lines (watches, logs -f). */
const STREAMED_QUERY = /[?&](watch|follow)=(1|true)(&|$)/;

/** A request body up to this size (Content-Length) is sent upstream whole, with the headers. */
const SMALL_BODY_BYTES = 64 * 1024;

/** Larger than this, what has arrived is written at once instead of waiting for the turn's end. */
const RELAY_BATCH_BYTES = 256 * 1024;

/**
 * Copies a response body to the client. The apiserver writes a list as many small chunks (about
 * one per item), and every write to the client is a TLS record and a system call: what arrives in
 * one turn of the event loop goes out as one write (at the turn's end, so a watch event is not
 * held back), with backpressure from the client.
 */
function relayBody(incoming: IncomingMessage, res: ServerResponse, stream: boolean): void {
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
  // An answer of known length (a create's, a get's) goes out as soon as it is complete.
  const length = Number(incoming.headers['content-length'] ?? NaN);
  let received = 0;
  incoming.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    size += chunk.length;
    received += chunk.length;
    // A watch's or a follow's chunk is an event or a log line on its own: it goes now.
    if (stream || size >= RELAY_BATCH_BYTES || received === length) flush();
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

/**
 * A request body of known length up to SMALL_BODY_BYTES, read whole; undefined for a larger or
 * chunked one (piped as it comes). Reading starts at once, so the body is in by the time the caller
 * is authenticated; a refused request's body is read and dropped as `req.resume()` would. Never
 * rejects (a refused request may never look at it): a client that broke off gives undefined.
 */
function smallBody(req: IncomingMessage): Promise<Buffer | undefined> | undefined {
  const length = Number(req.headers['content-length'] ?? NaN);
  if (!(length >= 0 && length <= SMALL_BODY_BYTES) || req.headers['transfer-encoding'] !== undefined)
    return undefined;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
}

/** What a request does, as the apiserver reads its path (RequestInfo), for the audit log. */
export interface KubeRequestInfo {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

// Subresources of a namespace object itself (`/api/v1/namespaces/x/status`), not resources in it.
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const WRITE_VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** The resource request a path names (undefined for non-resource paths such as /version). */
export function kubeRequestInfo(method: string, url: string): KubeRequestInfo | undefined {
  const parts = url
    .split('?')[0]
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  let rest: string[];
  let group = '';
  if (parts[0] === 'api' && parts.length >= 3) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1];
    rest = parts.slice(3);
  } else return undefined;
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2])) rest = rest.slice(2);
  }
  const [resource, name = '', subresource = ''] = rest;
  let verb = WRITE_VERBS[method] ?? method.toLowerCase();
  if (method === 'DELETE' && name === '') verb = 'deletecollection';
  // exec, attach and port-forward are creates whatever the method (WebSocket clients send GET).
  if (resource === 'pods' && ['exec', 'attach', 'portforward'].includes(subresource)) verb = 'create';
  return { verb, group, resource, subresource, namespace, name };
}

// Reviews are creates that store nothing (kubectl auth whoami, can-i): not audited.
const REVIEW_GROUPS = new Set(['authentication.k8s.io', 'authorization.k8s.io']);

/** Whether a request changes state (and so gets an audit record). */
export function isKubeStateChanging(method: string, info: KubeRequestInfo | undefined): boolean {
  if (info && REVIEW_GROUPS.has(info.group) && info.resource.endsWith('reviews')) return false;
  return method in WRITE_VERBS || (info?.verb === 'create' && info.resource === 'pods');
}

/** `namespaces/ns/pods/web/exec`, `nodes/n1`, `namespaces/ns/deployments.apps/web`: the object acted on. */
function auditResource(info: KubeRequestInfo): string {
  const resource = info.group ? `${info.resource}.${info.group}` : info.resource;
  const namespaced = info.namespace && !(info.resource === 'namespaces' && info.name === info.namespace);
  return [namespaced ? `namespaces/${info.namespace}` : '', resource, info.name, info.subresource]
    .filter((p) => p !== '')
    .join('/');
}

function auditOperation(info: KubeRequestInfo | undefined, method: string): string {
  if (!info) return `Kubernetes ${WRITE_VERBS[method] ?? method.toLowerCase()}`;
  const known =
    info.group === '' ||
    ['apps', 'batch', 'rbac.authorization.k8s.io', 'networking.k8s.io'].includes(info.group);
  const ucp = known ? operationFor(info) : undefined;
  if (ucp) return ucp.operation;
  const what = info.group ? `${info.resource}.${info.group}` : info.resource;
  return `Kubernetes ${info.verb} ${what}${info.subresource ? `/${info.subresource}` : ''}`;
}

interface Auditor {
  audited: boolean;
  identified(identity: ForwardedIdentity): void;
  /** Once per request (later calls are ignored): the status sent, and the refusal's message. */
  report(status: number, message?: string): void;
}

const NOT_AUDITED: Auditor = { audited: false, identified: () => undefined, report: () => undefined };
const MAYBE_POD_STREAM = /\/pods\/[^/?]+\/(exec|attach|portforward)(\?|$)/;

/** One audited request's outcome; `locals` carries the noted decision (libs/api AuditDecision). */
export interface KubeAuditEvent {
  req: IncomingMessage;
  status: number;
  locals: Record<string, unknown>;
  started: number;
}

/** The unverified claims of a JWT-shaped token (undefined when it is not one). */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    return claims && typeof claims === 'object' && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** How long the apiserver's answer about a token is reused (never past the token's own expiry). */
const REVIEWED_TOKEN_MS = 10_000;
const REVIEWED_TOKENS_MAX = 10_000;
// Header values Node sends as they are (no control characters): anything else is refused.
const HEADER_SAFE = /^[\x20-\x7e]*$/;

/**
 * Bearer tokens that are not orca's, checked by the apiserver (TokenReview as orca's admin). An
 * answer is reused for a few seconds, keyed by the token's hash, so a pod's calls do not each cost
 * a review; refusals are not kept (a token the apiserver does not know yet may be known next time).
 */
class ApiserverTokens {
  private readonly known = new Map<string, { identity: ForwardedIdentity; until: number }>();
  private readonly pending = new Map<string, Promise<ForwardedIdentity | undefined>>();

  constructor(private readonly upstream: KubeUpstream) {}

  async identify(token: string): Promise<ForwardedIdentity> {
    const key = createHash('sha256').update(token).digest('base64');
    const now = Date.now();
    const hit = this.known.get(key);
    if (hit && now < hit.until) return hit.identity;
    let review = this.pending.get(key);
    if (!review) {
      review = this.review(token, key).finally(() => this.pending.delete(key));
      this.pending.set(key, review);
    }
    const identity = await review;
    if (!identity) throw new ApiError(401, 'UNAUTHORIZED', 'the token is not valid');
    return identity;
  }

  private async review(token: string, key: string): Promise<ForwardedIdentity | undefined> {
    const user = await this.upstream.reviewToken(token);
    if (!user) return undefined;
    const safe = (values: string[]) => values.filter((v) => HEADER_SAFE.test(v));
    if (!HEADER_SAFE.test(user.username)) return undefined;
    const extra: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(user.extra)) extra[name] = safe(values);
    const identity: ForwardedIdentity = {
      user: user.username,
      ...(user.uid && HEADER_SAFE.test(user.uid) ? { uid: user.uid } : {}),
      groups: safe(user.groups),
      extra,
    };
    const exp = jwtClaims(token)?.exp;
    const until = Math.min(Date.now() + REVIEWED_TOKEN_MS, typeof exp === 'number' ? exp * 1000 : Infinity);
    if (this.known.size >= REVIEWED_TOKENS_MAX) this.known.clear();
    this.known.set(key, { identity, until });
    return identity;
  }
}

export interface KubeFrontDoorOptions {
  upstream: KubeUpstream;
  authenticator: KubeAuthenticator;
  /** Serving certificate and the CAs whose client certificates are asked for (client root CA). */
  tls: Pick<ServerOptions, 'key' | 'cert' | 'ca'>;
  /**
   * orca's OpenID Connect issuer. ID tokens from it are orca's alone to check (the account must
   * still be active); service-account tokens, and opaque bearer tokens that are not UCP session
   * tokens, go to the apiserver's TokenReview. Without it, only orca's credentials are accepted.
   */
  orcaIssuer?: string | (() => string);
  log?: { warn(message: string): void };
}

export class KubeFrontDoor {
  readonly server: Server;
  /** Called once per state-changing request with its outcome, for the audit log (see auditEntry). */
  onAudit?: (event: KubeAuditEvent) => void;
  private readonly apiserverTokens: ApiserverTokens;

  constructor(private readonly options: KubeFrontDoorOptions) {
    this.apiserverTokens = new ApiserverTokens(options.upstream);
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

  /**
   * A Kubernetes service-account token (bound: a `kubernetes.io` claim; legacy secret-based: issuer
   * `kubernetes/serviceaccount`) from another issuer than orca's. Other JWTs stay orca's to judge,
   * so no ID token reaches the apiserver's own OIDC authenticator past orca's account checks.
   */
  private isServiceAccountJwt(token: string): boolean {
    const claims = jwtClaims(token);
    const orca = this.options.orcaIssuer;
    if (!claims || !orca || claims.iss === (typeof orca === 'string' ? orca : orca())) return false;
    return (
      (typeof claims['kubernetes.io'] === 'object' && claims['kubernetes.io'] !== null) ||
      claims.iss === 'kubernetes/serviceaccount'
    );
  }

  private async identify(req: IncomingMessage): Promise<ForwardedIdentity> {
    const authorization = req.headers.authorization;
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    // A service-account token (`kubectl create token`, a pod's projected token): the apiserver knows it.
    if (bearer && this.isServiceAccountJwt(bearer)) return this.apiserverTokens.identify(bearer);
    try {
      return await this.options.authenticator.authenticate({
        authorization,
        peerCertificatePem: peerCertificatePem(req.socket as TLSSocket),
      });
    } catch (error) {
      // Not a UCP session token and not JWT-shaped (a bootstrap or static token): ask the apiserver.
      // orca's own ID tokens never get here, so a deactivated account's token stays refused.
      if (
        bearer &&
        this.options.orcaIssuer &&
        !jwtClaims(bearer) &&
        error instanceof ApiError &&
        error.status === 401
      )
        return this.apiserverTokens.identify(bearer);
      throw error;
    }
  }

  /** The audit record's decision, noted where auditEntry reads it; reported when `report` is called. */
  private auditor(req: IncomingMessage): Auditor {
    const method = req.method ?? 'GET';
    // Reads (the hot path: lists and watches) skip the rest; exec, attach and port-forward over
    // WebSocket are GETs that count as creates.
    if (!this.onAudit || !(method in WRITE_VERBS || MAYBE_POD_STREAM.test(req.url ?? ''))) return NOT_AUDITED;
    const info = kubeRequestInfo(method, req.url ?? '');
    if (!isKubeStateChanging(method, info)) return NOT_AUDITED;
    const started = Date.now();
    const decision: AuditDecision = {
      subject: 'anonymous',
      operation: auditOperation(info, method),
      ...(info ? { resource: auditResource(info) } : {}),
      decision: 'allow',
    };
    let reported = false;
    return {
      audited: true,
      identified(identity: ForwardedIdentity) {
        decision.subject = identity.user;
        const as = req.headers['impersonate-user'];
        if (as) decision.reason = `impersonating ${String(as)}`;
      },
      report: (status: number, message?: string) => {
        if (reported) return;
        reported = true;
        // 401: nobody was authenticated; 403: the apiserver (authorization or admission) refused.
        if (status === 401 || status === 403) decision.decision = 'deny';
        if (message && status >= 400)
          decision.reason = [decision.reason, message].filter(Boolean).join(': ').slice(0, 512);
        const locals: Record<string, unknown> = {};
        noteAuditDecision(locals, decision);
        this.onAudit?.({ req, status, locals, started });
      },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const audit = this.auditor(req);
    const refuse = (code: number, message: string) => {
      audit.report(code, message);
      sendStatus(res, code, message);
    };
    // A small body of known length (creates, updates) is read while the caller is authenticated,
    // and goes up in one write with the headers.
    const body = smallBody(req);
    let identity: ForwardedIdentity;
    try {
      identity = await this.identify(req);
    } catch (error) {
      req.resume();
      if (error instanceof ApiError && error.status === 429) return refuse(429, error.message);
      if (error instanceof ApiError) return refuse(401, 'Unauthorized');
      // Not the credentials: the store, the directory or the apiserver's TokenReview failed.
      this.options.log?.warn(`kube front door: authentication failed: ${(error as Error).message}`);
      return refuse(503, 'authentication is unavailable');
    }
    audit.identified(identity);
    const target = this.target(req);
    if (!target) {
      req.resume();
      return refuse(400, 'the request path must start with a single /');
    }
    let upstream: ReturnType<KubeUpstream['proxy']>;
    try {
      upstream = this.options.upstream.proxy();
    } catch (error) {
      this.options.log?.warn(`kube front door: apiserver not configured yet: ${(error as Error).message}`);
      req.resume();
      return refuse(503, 'the Kubernetes API server is not available yet');
    }
    let outgoing: ReturnType<typeof httpsRequest>;
    try {
      outgoing = httpsRequest(
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
          const status = incoming.statusCode ?? 502;
          res.writeHead(status, headers);
          // A streamed answer (a watch, logs -f: no Content-Length) may not produce its first bytes
          // for a long time, so its headers go now; any other answer's go with its body, in one write.
          if (incoming.headers['content-length'] === undefined) res.flushHeaders();
          // A refusal's Status message goes into its audit record (others are reported on 'close').
          if (audit.audited && status >= 400)
            collectStatusMessage(incoming, (message) => audit.report(status, message));
          relayBody(incoming, res, STREAMED_QUERY.test(req.url ?? ''));
        },
      );
    } catch (error) {
      // A header Node will not send (a control character in a client's header value).
      req.resume();
      return refuse(400, `bad request header: ${(error as Error).message}`);
    }
    outgoing.on('error', (error) => {
      if (res.headersSent) {
        audit.report(0);
        res.destroy();
      } else refuse(502, `the Kubernetes API server did not answer: ${error.message}`);
    });
    // A client that goes away ends its watch upstream too.
    res.on('close', () => {
      outgoing.destroy();
      audit.report(res.headersSent ? res.statusCode : 0);
    });
    if (body) void body.then((data) => (data ? outgoing.end(data) : outgoing.destroy()));
    else req.pipe(outgoing);
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const audit = this.auditor(req);
    const refuse = (code: number, message: string) => {
      audit.report(code, message);
      const body = JSON.stringify(kubeStatus(code, message));
      socket.end(
        `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    };
    let identity: ForwardedIdentity;
    try {
      identity = await this.identify(req);
    } catch (error) {
      if (error instanceof ApiError) refuse(401, 'Unauthorized');
      else refuse(503, 'authentication is unavailable');
      return;
    }
    audit.identified(identity);
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
    let outgoing: ReturnType<typeof httpsRequest>;
    try {
      outgoing = httpsRequest({
        ...target,
        method: req.method,
        ...tls,
        agent: false,
        headers: upstreamHeaders(req.headers, identity, String(req.headers.upgrade ?? '')),
      });
    } catch (error) {
      refuse(400, `bad request header: ${(error as Error).message}`);
      return;
    }
    outgoing.on('upgrade', (incoming, upstreamSocket, upstreamHead) => {
      audit.report(101);
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
      const status = incoming.statusCode ?? 502;
      const lines = [`HTTP/1.1 ${status} ${incoming.statusMessage ?? ''}`];
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) {
        const name = incoming.rawHeaders[i].toLowerCase();
        if (['connection', 'transfer-encoding', 'keep-alive', 'content-length'].includes(name)) continue;
        lines.push(`${incoming.rawHeaders[i]}: ${incoming.rawHeaders[i + 1]}`);
      }
      const chunks: Buffer[] = [];
      incoming.on('data', (c: Buffer) => chunks.push(c));
      incoming.on('end', () => {
        const body = Buffer.concat(chunks);
        audit.report(status, statusMessageOf(body));
        lines.push(`Content-Length: ${body.length}`, 'Connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        socket.end(body);
      });
    });
    outgoing.on('error', () => refuse(503, 'the Kubernetes API server did not answer'));
    socket.on('close', () => {
      outgoing.destroy();
      audit.report(0);
    });
    outgoing.end();
  }
}

/** Length-delimited fields (wire type 2) of a protobuf message, by field number; undefined if malformed. */
function protobufBytesFields(buf: Buffer): Map<number, Buffer> | undefined {
  const fields = new Map<number, Buffer>();
  let pos = 0;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 35 && pos < buf.length; shift += 7) {
      const byte = buf[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return undefined;
  };
  while (pos < buf.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const wire = key % 8;
    if (wire === 0) {
      if (varint() === undefined) return undefined;
    } else if (wire === 2) {
      const length = varint();
      if (length === undefined || pos + length > buf.length) return undefined;
      fields.set(Math.floor(key / 8), buf.subarray(pos, pos + length));
      pos += length;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else return undefined;
  }
  return fields;
}

const PROTOBUF_MAGIC = Buffer.from('k8s\0', 'latin1');

/**
 * A Kubernetes Status body's message (what kubectl prints for a refusal): JSON, or the protobuf
 * envelope typed clients ask for (`k8s\0`, runtime.Unknown whose field 2 is the Status, whose
 * field 3 is the message).
 */
function statusMessageOf(body: Buffer): string | undefined {
  if (body.subarray(0, 4).equals(PROTOBUF_MAGIC)) {
    const status = protobufBytesFields(body.subarray(4))?.get(2);
    const message = status && protobufBytesFields(status)?.get(3);
    return message?.toString('utf8');
  }
  try {
    const status = JSON.parse(body.toString('utf8')) as { message?: unknown };
    return typeof status.message === 'string' ? status.message : undefined;
  } catch {
    return undefined;
  }
}

/** Reads (a copy of) the first few KiB of an error response, then hands on its Status message. */
function collectStatusMessage(incoming: IncomingMessage, done: (message: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done(statusMessageOf(Buffer.concat(chunks)));
  };
  incoming.on('data', (chunk: Buffer) => {
    if (size < 8192) chunks.push(chunk);
    size += chunk.length;
  });
  incoming.on('end', finish);
  incoming.on('close', finish);
}

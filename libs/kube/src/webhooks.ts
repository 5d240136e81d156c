// The HTTP side of the webhooks the apiserver calls on the controller: authorization
// (SubjectAccessReview), validating and mutating admission (AdmissionReview). Only callers with a
// client certificate from orca's cluster CA (the apiserver's webhook kubeconfigs carry one) are
// answered; a malformed review is a 400 in Kubernetes Status JSON, never a 500. They come at the
// apiserver's request rate, so the handler is plain node:http, put in front of the controller's
// application on its HTTPS server: no router, middleware or framework per review.
import { certificateDerToPem } from '@orca/pki';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ReviewError } from './authorization.js';
import { sendStatus } from './status.js';

export const AUTHORIZATION_WEBHOOK_PATH = '/kube/webhooks/authorize';
export const ADMISSION_WEBHOOK_PATH = '/kube/webhooks/admit';
export const MUTATING_ADMISSION_WEBHOOK_PATH = '/kube/webhooks/mutate';
const WEBHOOKS_PREFIX = '/kube/webhooks/';
const MAX_BODY = 3 * 1024 * 1024;

export interface Reviewer {
  review(body: unknown): Promise<Record<string, unknown>>;
}

export interface WebhookOptions {
  /** Whether a client certificate (PEM) is one the apiserver may use to call orca's webhooks. */
  trustedCaller(certificatePem: string): Promise<boolean>;
  authorization: Reviewer;
  admission: Reviewer;
  /** The mutating admission webhook (UCPNodeSelector); without it, its path is not served. */
  mutation?: Reviewer;
  log?: { warn(message: string): void };
}

/**
 * How long a connection whose client certificate passed the check is trusted without asking again.
 * The apiserver keeps its webhook connections open and calls at request rate; the check (chain
 * against the current cluster bundle, read from the store) still runs on every new connection, on
 * a changed certificate, and at least this often, so a rotated CA applies within seconds. Once a
 * trusted connection's time is up, its next review is answered while the check runs again beside
 * it (the check may wait on the controller's busier thread); a connection that fails it is closed.
 */
const TRUSTED_CONNECTION_MS = 5_000;
const trustedConnections = new WeakMap<TLSSocket, { raw: Buffer; until: number }>();

async function isTrustedCaller(socket: TLSSocket, options: WebhookOptions): Promise<boolean> {
  const now = Date.now();
  const known = trustedConnections.get(socket);
  // TLS 1.3 has no renegotiation: the peer's certificate is the one checked for this connection.
  // (Reading it again costs more than the rest of a decision.)
  const sameCertificate = socket.getProtocol?.() === 'TLSv1.3';
  if (known && now < known.until && sameCertificate) return true;
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
  if (!cert || !cert.raw) return false;
  if (known && (sameCertificate || known.raw.equals(cert.raw))) {
    if (now < known.until) return true;
    known.until = now + TRUSTED_CONNECTION_MS;
    const pem = certificateDerToPem(cert.raw);
    void options.trustedCaller(pem).then(
      (trusted) => {
        if (trusted) return;
        trustedConnections.delete(socket);
        socket.destroy();
      },
      () => undefined,
    );
    return true;
  }
  if (!(await options.trustedCaller(certificateDerToPem(cert.raw)))) {
    trustedConnections.delete(socket);
    return false;
  }
  trustedConnections.set(socket, { raw: cert.raw, until: now + TRUSTED_CONNECTION_MS });
  return true;
}

/** A review reply in one write (a string body goes out with the headers: one TLS record). */
function sendReview(res: ServerResponse, reply: Record<string, unknown>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(reply);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    // Reviews are small: usually one chunk, used as it is.
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export type WebhookHandler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** Express-compatible middleware: handles the webhook paths and passes everything else on. */
export function webhookHandler(options: WebhookOptions): WebhookHandler {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const url = req.url ?? '';
    if (!url.startsWith(WEBHOOKS_PREFIX)) return next();
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const reviewer =
      path === AUTHORIZATION_WEBHOOK_PATH
        ? options.authorization
        : path === ADMISSION_WEBHOOK_PATH
          ? options.admission
          : path === MUTATING_ADMISSION_WEBHOOK_PATH
            ? options.mutation
            : undefined;
    if (!reviewer) return next();
    void (async () => {
      try {
        if (!(await isTrustedCaller(req.socket as TLSSocket, options))) {
          req.resume();
          return sendStatus(res, 401, 'a client certificate from the cluster CA is required');
        }
        if (req.method !== 'POST') {
          req.resume();
          return sendStatus(res, 405, 'only POST');
        }
        const body = await readBody(req);
        if (!body) return sendStatus(res, 413, 'the review is too large');
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          return sendStatus(res, 400, 'the body is not JSON');
        }
        sendReview(res, await reviewer.review(parsed));
      } catch (error) {
        if (error instanceof ReviewError) return sendStatus(res, 400, error.message);
        options.log?.warn(`kube webhook ${path}: ${(error as Error).message}`);
        sendStatus(res, 503, 'the review could not be made');
      }
    })();
  };
}

// The HTTP side of the webhooks the apiserver calls on the controller: authorization
// (SubjectAccessReview) and admission (AdmissionReview). Only callers with a client certificate
// from orca's cluster CA (the apiserver's webhook kubeconfigs carry one) are answered; a malformed
// review is a 400 in Kubernetes Status JSON, never a 500.
import { certificateDerToPem } from '@orca/pki';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ReviewError } from './authorization.js';
import { sendJson, sendStatus } from './status.js';

export const AUTHORIZATION_WEBHOOK_PATH = '/kube/webhooks/authorize';
export const ADMISSION_WEBHOOK_PATH = '/kube/webhooks/admit';
const MAX_BODY = 3 * 1024 * 1024;

export interface Reviewer {
  review(body: unknown): Promise<Record<string, unknown>>;
}

export interface WebhookOptions {
  /** Whether a client certificate (PEM) is one the apiserver may use to call orca's webhooks. */
  trustedCaller(certificatePem: string): Promise<boolean>;
  authorization: Reviewer;
  admission: Reviewer;
  log?: { warn(message: string): void };
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
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Express-compatible middleware: handles the two webhook paths and passes everything else on. */
export function webhookHandler(options: WebhookOptions) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const path = (req.url ?? '').split('?')[0];
    const reviewer =
      path === AUTHORIZATION_WEBHOOK_PATH
        ? options.authorization
        : path === ADMISSION_WEBHOOK_PATH
          ? options.admission
          : undefined;
    if (!reviewer) return next();
    void (async () => {
      try {
        const socket = req.socket as TLSSocket;
        const cert =
          typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
        const pem = cert && cert.raw ? certificateDerToPem(cert.raw) : undefined;
        if (!pem || !(await options.trustedCaller(pem))) {
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
        sendJson(res, 200, await reviewer.review(parsed));
      } catch (error) {
        if (error instanceof ReviewError) return sendStatus(res, 400, error.message);
        options.log?.warn(`kube webhook ${path}: ${(error as Error).message}`);
        sendStatus(res, 503, 'the review could not be made');
      }
    })();
  };
}

// One HTTPS exchange for tests: any method, path sent exactly as given (`..` and `%2F` reach the
// server unnormalized), optional TLS client identity, the whole reply buffered.
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';

export interface HttpsReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  json<T = any>(): T; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface HttpsCallOptions {
  method?: string;
  /** The Authorization header. */
  auth?: string;
  /** Sent as JSON unless it is a string or a Buffer (sent as is). */
  body?: unknown;
  /** Content-Type of a body (default application/json; null sends none). */
  contentType?: string | null;
  headers?: Record<string, string>;
  /** Trusted CA (PEM); without it the server certificate is not checked. */
  ca?: string;
  cert?: string;
  key?: string;
}

export const basicAuth = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export function httpsCall(origin: string, path: string, options: HttpsCallOptions = {}): Promise<HttpsReply> {
  const { hostname, port } = new URL(origin);
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string' || Buffer.isBuffer(options.body)
        ? Buffer.from(options.body)
        : Buffer.from(JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname.replace(/^\[|\]$/g, ''),
        port,
        path,
        method: options.method ?? 'GET',
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        rejectUnauthorized: options.ca !== undefined,
        checkServerIdentity: () => undefined,
        servername: '',
        headers: {
          ...(options.auth ? { authorization: options.auth } : {}),
          ...(payload
            ? {
                'content-length': payload.length,
                ...(options.contentType === null
                  ? {}
                  : { 'content-type': options.contentType ?? 'application/json' }),
              }
            : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

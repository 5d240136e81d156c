// A small JSON-over-HTTPS client with explicit trust: the pinned cluster CA and, once joined, the
// node's own certificate for mutual TLS. (Node's fetch cannot take per-request client certificates.)
import { request } from 'node:https';
import { isIP } from 'node:net';

export interface TlsIdentity {
  ca?: string;
  cert?: string;
  key?: string;
  /** Only for the very first CA download, whose bytes are then checked against the token digest. */
  insecure?: boolean;
  /** HTTP Basic credentials (base64 of user:password), for the admin CLI. */
  basic?: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(HttpError.describe(status, body));
    this.name = 'HttpError';
  }

  private static describe(status: number, body: string): string {
    try {
      const parsed = JSON.parse(body) as { errors?: { message?: string }[] };
      const message = parsed.errors?.[0]?.message;
      if (message) return `${message} (HTTP ${status})`;
    } catch {
      // not JSON
    }
    return `HTTP ${status}: ${body.slice(0, 200)}`;
  }
}

export function httpsRequest(
  method: string,
  url: string,
  tls: TlsIdentity,
  body?: unknown,
  timeoutMs = 10_000,
  signal?: AbortSignal,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        ...(tls.insecure ? { checkServerIdentity: () => undefined } : {}),
        // SNI carries host names only (RFC 6066); managers are usually reached by address.
        ...(isIP(new URL(url).hostname.replace(/^\[|\]$/g, '')) ? { servername: '' } : {}),
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...(tls.basic ? { authorization: `Basic ${tls.basic}` } : {}),
        },
        timeout: timeoutMs,
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export async function httpsJson<T>(
  method: string,
  url: string,
  tls: TlsIdentity,
  body?: unknown,
  timeoutMs?: number,
  signal?: AbortSignal,
): Promise<T> {
  const { status, text } = await httpsRequest(method, url, tls, body, timeoutMs, signal);
  if (status < 200 || status >= 300) throw new HttpError(status, text);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

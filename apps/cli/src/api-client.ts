// The CLI's admin client for the controller API (HTTP Basic over TLS pinned to the cluster CA when
// the local data directory has it).
import { httpsJson } from '../../agent/src/https-json.js';

export interface AdminClientOptions {
  url: string;
  username: string;
  password: string;
  ca?: string;
}

export async function adminRequest<T>(
  options: AdminClientOptions,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const auth = Buffer.from(`${options.username}:${options.password}`).toString('base64');
  return httpsJson<T>(
    method,
    `${options.url}${path}`,
    { ca: options.ca, insecure: !options.ca, basic: auth },
    body,
  );
}

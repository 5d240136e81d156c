// Test helpers for orca's OpenID Connect provider: HTTPS exchanges pinned to the cluster CA, a
// fetch for openid-client over them, and a minimal browser that walks the login page. Used by the
// OIDC integration tests only.
import { httpsCall, type HttpsReply } from '@orca/testing';
import * as client from 'openid-client';

type Reply = HttpsReply;

/** One HTTPS exchange, redirects not followed, trusting only the cluster CA. */
export function exchange(
  ca: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const { origin, pathname, search } = new URL(url);
  return httpsCall(origin, `${pathname}${search}`, {
    method: init.method,
    headers: init.headers,
    body: init.body,
    contentType: null,
    ca,
  });
}

/** A fetch for openid-client over node:https with the cluster CA pinned. */
export function pinnedFetch(ca: string): client.CustomFetch {
  return async (url, options) => {
    const headers: Record<string, string> = {};
    new Headers(options.headers as ConstructorParameters<typeof Headers>[0]).forEach(
      (value, key) => (headers[key] = value),
    );
    const body =
      options.body === undefined || options.body === null
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : options.body instanceof URLSearchParams
            ? options.body.toString()
            : Buffer.from(options.body as ArrayBuffer);
    if (body !== undefined && options.body instanceof URLSearchParams)
      headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    const reply = await exchange(ca, url, { method: options.method, headers, body });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(reply.headers)) {
      if (value !== undefined) responseHeaders.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    return new Response(reply.status === 204 ? null : reply.text, {
      status: reply.status,
      headers: responseHeaders,
    });
  };
}

/** The browser part: follows the provider's redirects, keeps cookies, fills in the login form. */
export class Browser {
  private cookies = new Map<string, string>();
  constructor(private readonly ca: string) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async go(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Reply> {
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    const reply = await exchange(this.ca, url, {
      method: init.method ?? 'GET',
      headers: {
        cookie: this.cookieHeader(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    const setCookie = reply.headers['set-cookie'] ?? [];
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1);
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return reply;
  }

  /** Walks from the authorization URL to the redirect back to the client, logging in on the way. */
  async authorize(
    authorizationUrl: URL,
    username: string,
    password: string,
  ): Promise<{ final: URL; login: Reply }> {
    let next = authorizationUrl.href;
    let login: Reply | undefined;
    for (let hop = 0; hop < 10; hop++) {
      const url = new URL(next, authorizationUrl);
      if (url.protocol === 'http:') return { final: url, login: login! };
      const reply = await this.go(url.href);
      if (reply.status === 200 && reply.text.includes('<form')) {
        const action = /action="([^"]+)"/.exec(reply.text)![1].replace(/&#47;/g, '/');
        const asksPassword = reply.text.includes('type="password"');
        login = await this.go(new URL(action, url).href, {
          method: 'POST',
          form: asksPassword ? { username, password } : {},
        });
        if (login.status !== 303) return { final: url, login };
        next = String(login.headers.location);
        continue;
      }
      if (reply.status !== 302 && reply.status !== 303)
        throw new Error(`unexpected ${reply.status}: ${reply.body}`);
      next = String(reply.headers.location);
    }
    throw new Error('too many redirects');
  }
}

/** The loopback redirect the `kubernetes` client allows (nothing listens: the browser stops there). */
export const REDIRECT = 'http://127.0.0.1:38123/callback';

/** A code flow with PKCE through the login page; the redirect back and what PKCE needs to finish it. */
export async function signIn(
  config: client.Configuration,
  ca: string,
  username: string,
  password: string,
  scope = 'openid profile groups offline_access',
) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const { final, login } = await new Browser(ca).authorize(url, username, password);
  return { final, login, verifier, state };
}

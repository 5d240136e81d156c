// GET /auth/token per the Docker registry token specification (distribution
// docs/spec/auth/token.md), as DTR's garant serves it: the identity comes from eNZi (HTTP Basic
// with a password, a DTR access token or a session token, or a bearer session), anonymous requests get only what
// anonymous users may do, and the access granted is the intersection of what was asked and what
// the permission decision allows. POST /auth/token is the OAuth2 form (docs/spec/auth/oauth.md)
// with the password and refresh_token grants; `offline_token=true` (GET) or `access_type=offline`
// (POST) adds a refresh token. Passwords and tokens are never logged.
import type { Principal } from '@orca/api';
import { ApiError } from '@orca/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RepositoryAccessResolver } from './access.js';
import type { DtrCredentials } from './credentials.js';
import { parseRepositoryName } from './grammar.js';
import { readBody, requestUrl, sendJson } from './http.js';
import type { TokenSigner } from './jwt.js';
import type { RefreshTokens } from './refresh-tokens.js';
import { formatScope, intersectActions, parseScopes, type AccessEntry } from './scope.js';

export interface TokenServiceOptions {
  signer: TokenSigner;
  access: RepositoryAccessResolver;
  credentials: DtrCredentials;
  refreshTokens: RefreshTokens;
  service: string;
}

/** At most this many scopes per request: each costs a permission decision. */
const MAX_SCOPES = 32;

export class TokenService {
  constructor(private readonly options: TokenServiceOptions) {}

  /** The caller: Basic with a password, an access token or a session token; undefined when anonymous. */
  principal(authorization: string | undefined): Promise<Principal | undefined> {
    return this.options.credentials.principal(authorization);
  }

  /** What `principal` may have of each requested scope (entries with no actions included, as distribution does). */
  async grant(principal: Principal | undefined, requested: AccessEntry[]): Promise<AccessEntry[]> {
    const granted: AccessEntry[] = [];
    for (const entry of requested.slice(0, MAX_SCOPES)) {
      let allowed: string[] = [];
      if (entry.type === 'repository') {
        const name = parseRepositoryName(entry.name);
        if (name) allowed = (await this.options.access.decide(principal, name)).actions;
      } else if (entry.type === 'registry' && entry.name === 'catalog' && principal?.isAdmin) {
        allowed = ['*'];
      }
      granted.push({ type: entry.type, name: entry.name, actions: intersectActions(entry.actions, allowed) });
    }
    return granted;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'POST') return this.oauth(req, res);
    if (req.method !== 'GET') {
      sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST' }] });
      return;
    }
    let principal: Principal | undefined;
    try {
      principal = await this.principal(req.headers.authorization);
    } catch (error) {
      this.refuse(res, error);
      return;
    }
    const url = requestUrl(req);
    // A refresh token only for someone who signed in (never for anonymous requests).
    const refreshToken =
      principal && url.searchParams.get('offline_token') === 'true'
        ? await this.options.refreshTokens.issue(
            principal,
            this.options.service,
            url.searchParams.get('client_id') ?? '',
          )
        : undefined;
    await this.respond(res, principal, url.searchParams.getAll('scope'), refreshToken);
  }

  private refuse(res: ServerResponse, error: unknown): void {
    const status = error instanceof ApiError ? error.status : 401;
    sendJson(
      res,
      status === 429 ? 429 : 401,
      {
        errors: [
          { code: status === 429 ? 'TOOMANYREQUESTS' : 'UNAUTHORIZED', message: (error as Error).message },
        ],
      },
      { 'WWW-Authenticate': `Basic realm="${this.options.service}"` },
    );
  }

  private async respond(
    res: ServerResponse,
    principal: Principal | undefined,
    scopes: string[],
    refreshToken?: string,
  ): Promise<void> {
    const access = await this.grant(principal, parseScopes(scopes));
    const { token, claims } = await this.options.signer.issue(
      principal?.name ?? '',
      this.options.service,
      access,
    );
    sendJson(res, 200, {
      token,
      access_token: token,
      expires_in: claims.exp - claims.iat,
      issued_at: new Date(claims.iat * 1000).toISOString(),
      // The OAuth2 form requires the granted scope; the GET form's clients ignore it.
      scope: access
        .filter((a) => a.actions.length > 0)
        .map((a) => formatScope(a.type, a.name, a.actions))
        .join(' '),
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    });
  }

  /**
   * The OAuth2 form of the token endpoint (distribution docs/spec/auth/oauth.md) that containerd
   * and `docker login` use: grant_type=password with username and password (access_type=offline
   * adds a refresh token), or grant_type=refresh_token, which answers with the same refresh token.
   */
  private async oauth(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let form: URLSearchParams;
    try {
      form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    } catch {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'body too large' });
      return;
    }
    const grantType = form.get('grant_type');
    if (grantType === 'refresh_token') {
      const presented = form.get('refresh_token') ?? '';
      const principal = await this.options.refreshTokens.principal(presented, this.options.service);
      if (!principal) {
        sendJson(res, 400, {
          error: 'invalid_grant',
          error_description: 'the refresh token is invalid, expired, or for another account or service',
        });
        return;
      }
      await this.respond(res, principal, form.getAll('scope'), presented);
      return;
    }
    if (grantType !== 'password') {
      sendJson(res, 400, {
        error: 'unsupported_grant_type',
        error_description: 'grant_type must be password or refresh_token',
      });
      return;
    }
    let principal: Principal | undefined;
    try {
      const basic = Buffer.from(`${form.get('username') ?? ''}:${form.get('password') ?? ''}`).toString(
        'base64',
      );
      principal = await this.options.credentials.principal(`Basic ${basic}`);
      if (!principal) throw new ApiError(401, 'UNAUTHORIZED', 'credentials required');
    } catch (error) {
      this.refuse(res, error);
      return;
    }
    const refreshToken =
      form.get('access_type') === 'offline'
        ? await this.options.refreshTokens.issue(principal, this.options.service, form.get('client_id') ?? '')
        : undefined;
    await this.respond(res, principal, form.getAll('scope'), refreshToken);
  }
}

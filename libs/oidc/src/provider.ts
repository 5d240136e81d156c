// orca's OpenID Connect provider (oidc-provider, a certified implementation) on eNZi accounts:
// discovery, JWKS from the store, authorization code with PKCE, refresh tokens, userinfo, and a
// login page. Every controller builds the same provider from the store (keys, and the cluster's one
// issuer URL, so a token from any manager verifies at every manager); when the keys change
// (rotation) or an admin changes the issuer, each rebuilds it, so tokens signed with an older key
// keep verifying until they expire.
import { ApiError } from '@orca/api';
import { Authenticator, Directory, teamGroupsOf } from '@orca/identity';
import type { Kek } from '@orca/pki';
import type { Store, Watch } from '@orca/store';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { StoreAdapter, sweepExpired } from './adapter.js';
import { KUBERNETES_CLIENT, OidcClients, openClient } from './clients.js';
import { ensureIssuer, OIDC_ISSUER_KEY, OIDC_MOUNT_PATH, setIssuer, type IssuerSetting } from './issuer.js';
import { OIDC_KEYS_KEY, OidcKeyStore, publicJwks, type KeyMaterial } from './keys.js';
import { confirmPage, errorPage, loginPage } from './login-page.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- oidc-provider's context objects are untyped */

export interface OidcOptions {
  /**
   * This controller's own issuer URL (its URL plus /oidc, e.g. https://host:8443/oidc): it becomes
   * the cluster's issuer when the store has none yet (the first start). The stored one is used.
   */
  defaultIssuer: string;
  store: Store;
  kek: Kek;
  authenticator: Authenticator;
  /** Token lifetimes in seconds. */
  ttl?: { idToken?: number; accessToken?: number; refreshToken?: number };
  log?: { log(message: string): void; warn(message: string): void };
}

export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'];

const MAX_FORM_BYTES = 16 * 1024;

let providerModule: Promise<typeof Provider> | undefined;

/**
 * oidc-provider, loaded when a controller starts its provider (not by every orca command). It warns
 * at import that Node 20 is not its target (it wants 22); its tests pass here, so that one known
 * line is kept out of orca's output (docs/architecture.md says so).
 */
function loadProvider(): Promise<typeof Provider> {
  providerModule ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime'))
        return;
      warn(...args);
    };
    try {
      return (await import('oidc-provider')).default;
    } finally {
      console.warn = warn;
    }
  })();
  return providerModule;
}

class ClientAdapter extends StoreAdapter {
  constructor(
    store: Store,
    private readonly kek: Kek,
  ) {
    super(store, 'Client');
  }

  override async find(id: string): Promise<Record<string, unknown> | undefined> {
    const payload = await super.find(id);
    return payload && openClient(payload, this.kek);
  }
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        reject(new ApiError(413, 'REQUEST_TOO_LARGE', 'form too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

interface Loaded {
  material: KeyMaterial;
  issuer: string;
  /** The store revision each watched key was read at. */
  revisions: Record<string, number>;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  );
  res.end(html);
}

export class OidcService {
  private provider!: Provider;
  private callback!: (req: IncomingMessage, res: ServerResponse) => void;
  private material!: KeyMaterial;
  private currentIssuer!: string;
  private readonly watches = new Map<string, Watch>();
  /** Numbers each reload; the provider is built from the newest one that finished. */
  private generation = 0;
  private builtGeneration = 0;
  private closed = false;
  private sweeper?: NodeJS.Timeout;
  readonly clients: OidcClients;
  private readonly keys: OidcKeyStore;
  private readonly directory: Directory;
  private readonly mountPath = OIDC_MOUNT_PATH;
  private readonly log: NonNullable<OidcOptions['log']>;

  private constructor(
    private readonly options: OidcOptions,
    private readonly ProviderClass: typeof Provider,
  ) {
    this.clients = new OidcClients(options.store, options.kek);
    this.keys = new OidcKeyStore(options.store, options.kek);
    this.directory = new Directory(options.store);
    this.log = options.log ?? { log: () => undefined, warn: () => undefined };
  }

  static async start(options: OidcOptions): Promise<OidcService> {
    const service = new OidcService(options, await loadProvider());
    await service.clients.ensure(KUBERNETES_CLIENT);
    const loaded = await service.load();
    service.build(loaded);
    for (const key of [OIDC_KEYS_KEY, OIDC_ISSUER_KEY])
      await service.watchKey(key, loaded.revisions[key] + 1);
    service.sweeper = setInterval(
      () => void sweepExpired(options.store).catch(() => undefined),
      10 * 60 * 1000,
    );
    service.sweeper.unref();
    return service;
  }

  /** The keys and the cluster's issuer, as the store has them now. */
  private async load(): Promise<Loaded> {
    const [keys, issuer] = await Promise.all([
      this.keys.load(),
      ensureIssuer(this.options.store, this.options.defaultIssuer),
    ]);
    return {
      material: keys.material,
      issuer: issuer.issuer,
      revisions: { [OIDC_KEYS_KEY]: keys.revision, [OIDC_ISSUER_KEY]: issuer.revision },
    };
  }

  /** Reloads and rebuilds, unless a reload started later already built. */
  private async reload(): Promise<Loaded | undefined> {
    const generation = ++this.generation;
    try {
      const loaded = await this.load();
      // A slower, older reload never replaces what a newer one built.
      if (generation > this.builtGeneration && !this.closed) {
        this.builtGeneration = generation;
        this.build(loaded);
      }
      return loaded;
    } catch (error) {
      this.log.warn(`oidc: cannot reload keys and issuer: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** Rebuilds the provider whenever another controller rotates the keys or an admin sets the issuer. */
  private async watchKey(key: string, fromRevision: number): Promise<void> {
    const watch = await this.options.store.watch(key, fromRevision, {
      onEvents: () => void this.reload(),
      onCompacted: () => {
        // Missed events: re-read and watch again from what was read.
        void this.reload().then(async (loaded) => {
          if (loaded && !this.closed) await this.watchKey(key, loaded.revisions[key] + 1);
        });
      },
    });
    this.watches.set(key, watch);
  }

  /** The cluster's issuer URL, which this provider claims in discovery and in every token. */
  get issuer(): string {
    return this.currentIssuer;
  }

  /** Changes the cluster's issuer (admin): 400 for a URL the provider cannot serve. */
  async setIssuer(issuer: unknown): Promise<IssuerSetting> {
    const setting = await setIssuer(this.options.store, issuer);
    await this.reload();
    this.log.log(`oidc: issuer is now ${setting.issuer}`);
    return setting;
  }

  /** The lifetime of an ID token, seconds. */
  get idTokenTtl(): number {
    return this.options.ttl?.idToken ?? 3600;
  }

  private build({ material, issuer }: Loaded): void {
    const { store, kek, ttl } = this.options;
    const directory = this.directory;
    const mountPath = this.mountPath;
    // Endpoints in discovery are built from the request's host (oidc-provider's urlFor), so each
    // controller's discovery names its own jwks_uri: an apiserver reading it depends on no other manager.
    const provider = new this.ProviderClass(issuer, {
      adapter: (name: string) =>
        name === 'Client' ? new ClientAdapter(store, kek) : new StoreAdapter(store, name),
      jwks: { keys: material.signing.map((k) => k.jwk) },
      cookies: { keys: material.cookieKeys },
      scopes: OIDC_SCOPES,
      claims: {
        openid: ['sub'],
        profile: ['name', 'preferred_username'],
        email: ['email', 'email_verified'],
        groups: ['groups'],
      },
      // Scope claims go into the ID token too: kube-apiserver reads name and groups from it.
      conformIdTokenClaims: false,
      features: {
        devInteractions: { enabled: false },
        revocation: { enabled: true },
        userinfo: { enabled: true },
      },
      pkce: { required: () => true },
      ttl: {
        AccessToken: ttl?.accessToken ?? 3600,
        AuthorizationCode: 60,
        IdToken: ttl?.idToken ?? 3600,
        RefreshToken: ttl?.refreshToken ?? 14 * 24 * 3600,
        Interaction: 600,
        Session: 14 * 24 * 3600,
        Grant: 14 * 24 * 3600,
      },
      issueRefreshToken: async (_ctx: any, client: any) => client.grantTypeAllowed('refresh_token'),
      findAccount: async (_ctx: any, sub: string) => {
        const account = await directory.record(sub).catch(() => undefined);
        // Inactive or deleted accounts get nothing new: no login, no refresh, no userinfo.
        if (!account || account.isOrg || !account.isActive) return undefined;
        return {
          accountId: account.id,
          claims: async () => ({
            sub: account.id,
            name: account.fullName || account.name,
            preferred_username: account.name,
            groups: await teamGroupsOf(directory, account.id),
          }),
        };
      },
      // orca's own clients are first-party: the login is the consent, for the scopes they asked.
      loadExistingGrant: async (ctx: any) => {
        const { client, session, params } = ctx.oidc;
        if (!session?.accountId) return undefined;
        const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
        let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        if (!grant || grant.accountId !== session.accountId)
          grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
        grant.addOIDCScope(String(params.scope ?? 'openid'));
        await grant.save();
        return grant;
      },
      interactions: { url: (_ctx: any, interaction: any) => `${mountPath}/interaction/${interaction.uid}` },
      renderError: async (ctx: any, out: Record<string, string>) => {
        ctx.type = 'html';
        ctx.body = errorPage('Sign-in error', `${out.error}: ${out.error_description ?? ''}`);
      },
    });
    provider.on('server_error', (_ctx: unknown, error: Error) => this.log.warn(`oidc: ${error.message}`));
    this.provider = provider;
    this.callback = provider.callback();
    this.material = material;
    this.currentIssuer = issuer;
  }

  /** Checks client metadata as the provider will read it; 400 naming the problem otherwise. */
  async validateClient(metadata: Record<string, unknown>): Promise<void> {
    try {
      await this.provider.Client.validate(metadata);
    } catch (error) {
      const e = error as { error_description?: string; message: string };
      throw new ApiError(400, 'INVALID_CLIENT_METADATA', e.error_description ?? e.message);
    }
  }

  /** The JWKS verifiers use (public keys only). */
  jwks(): { keys: Record<string, unknown>[] } {
    return publicJwks(this.material);
  }

  /** Rotates the signing key; the old one keeps verifying for `retainMs` (default: 2 refresh lifetimes of an ID token). */
  async rotateKeys(retainMs = 2 * this.idTokenTtl * 1000): Promise<string> {
    const key = await this.keys.rotate(retainMs);
    await this.reload();
    this.log.log(`oidc: signing key rotated, new kid ${key.kid}`);
    return key.kid;
  }

  /** Serves the provider under its mount path (Express strips the mount path from req.url). */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    const interaction = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|confirm))?$/.exec(path);
    if (interaction) {
      void this.interaction(req, res, interaction[2] as 'login' | 'confirm' | undefined).catch(
        (error: Error) => {
          if (res.headersSent) return;
          const status = error instanceof ApiError ? error.status : 400;
          sendHtml(
            res,
            status,
            errorPage('Sign-in error', 'This sign-in request is no longer valid; start again.'),
          );
        },
      );
      return;
    }
    this.callback(req, res);
  };

  private async interaction(
    req: IncomingMessage,
    res: ServerResponse,
    submitted: 'login' | 'confirm' | undefined,
  ): Promise<void> {
    const details = await this.provider.interactionDetails(req, res);
    const client = await this.provider.Client.find(details.params.client_id);
    const clientName = String(client?.clientName ?? details.params.client_id);
    const action = `${this.mountPath}/interaction/${details.uid}/login`;
    if (details.prompt.name !== 'login') {
      // Signed in already (consent; native clients always ask): the user confirms with one click.
      // orca's clients are first-party, so the confirmation is the whole consent (loadExistingGrant).
      const confirm = `${this.mountPath}/interaction/${details.uid}/confirm`;
      if (submitted === 'confirm' && req.method === 'POST') {
        await this.provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
        return;
      }
      const account = details.session?.accountId
        ? await this.directory.record(details.session.accountId).catch(() => undefined)
        : undefined;
      return sendHtml(res, 200, confirmPage({ action: confirm, clientName, username: account?.name ?? '' }));
    }
    if (submitted !== 'login' || req.method !== 'POST') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return sendHtml(res, 405, errorPage('Method not allowed', ''));
      return sendHtml(res, 200, loginPage({ action, clientName }));
    }
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    try {
      const account = await this.options.authenticator.login(username, form.get('password') ?? '');
      await this.provider.interactionFinished(
        req,
        res,
        // Typing the password is the interaction a native client's consent asks for.
        { login: { accountId: account.id }, consent: {} },
        { mergeWithLastSubmission: false },
      );
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // The eNZi message (wrong password, locked for a while, inactive) is what the user sees.
      sendHtml(res, error.status, loginPage({ action, clientName, error: error.message, username }));
    }
  }

  /**
   * Verifies an ID token this provider issued (signature with a key in the JWKS, issuer, audience,
   * expiry) and returns its claims; throws ApiError 401 otherwise. The kube front door uses it.
   */
  verifyIdToken(token: string, audience?: string): Record<string, unknown> {
    const invalid = (why: string) => new ApiError(401, 'INVALID_TOKEN', `invalid ID token: ${why}`);
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('malformed');
    let header: { alg?: string; kid?: string };
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      throw invalid('malformed');
    }
    if (header.alg !== 'RS256') throw invalid('unsupported algorithm');
    const key = this.material.signing.find((k) => k.jwk.kid === header.kid);
    if (!key) throw invalid('unknown signing key');
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = key.jwk;
    const ok = verifySignature(
      'RSA-SHA256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      createPublicKey({ key: publicJwk, format: 'jwk' }),
      Buffer.from(parts[2], 'base64url'),
    );
    if (!ok) throw invalid('bad signature');
    if (claims.iss !== this.currentIssuer) throw invalid('foreign issuer');
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (audience && !aud.includes(audience)) throw invalid('wrong audience');
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) throw invalid('expired');
    return claims;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const watch of this.watches.values()) await watch.close();
  }
}

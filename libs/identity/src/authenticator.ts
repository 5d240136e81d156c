// One place that turns a request's credentials into a Principal: a client certificate from the
// client root CA whose key is registered to an active user, a Bearer or SessionToken session, or
// HTTP Basic. Passwords and tokens are never logged.
import { ApiError, type Principal } from '@orca/api';
import type { CertificateAuthorityService } from '@orca/cluster';
import { parseCertificate, publicKeyFingerprint, verifyCertificate } from '@orca/pki';
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import { getAccount, type AccountRecord } from './accounts.js';
import { Directory, isValidName } from './directory.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { Sessions } from './sessions.js';

export interface CredentialRequest {
  /** The Authorization header, if any. */
  authorization?: string;
  /** The TLS client certificate (PEM), if one was presented. */
  peerCertificatePem?: string;
}

export interface AuthLog {
  warn(message: string): void;
}

let dummy: Promise<string> | undefined;
const dummyHash = (): Promise<string> => (dummy ??= hashPassword(randomUUID()));

export const INVALID_CREDENTIALS = 'Invalid username or password.';
const unauthorized = (message = 'authentication required') => new ApiError(401, 'UNAUTHORIZED', message);

/** Directory.ownerOfKey, or the same answer from a watched copy (WatchedAccounts). */
export interface KeyOwners {
  ownerOfKey(
    name: string,
    keyId: string,
  ): Promise<Pick<AccountRecord, 'id' | 'name' | 'isAdmin'> | undefined>;
}

const principalOf = (
  account: Pick<AccountRecord, 'id' | 'name' | 'isAdmin'>,
  via: Principal['via'],
): Principal => ({
  id: account.id,
  name: account.name,
  isAdmin: account.isAdmin,
  via,
});

const VERIFIED_CERTIFICATE_TTL_MS = 60_000;
const VERIFIED_CERTIFICATES_MAX = 1_000;

export class Authenticator {
  readonly sessions: Sessions;
  readonly directory: Directory;
  private readonly verifiedCertificates = new Map<
    string,
    { bundle: string; name: string; fingerprint: string; until: number }
  >();

  constructor(
    private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly log: AuthLog = { warn: () => undefined },
    now?: () => number,
    /** Where "is this key registered to an active user" is answered: the directory, or WatchedAccounts. */
    private readonly keyOwners?: KeyOwners,
  ) {
    this.sessions = new Sessions(store, now);
    this.directory = new Directory(store);
  }

  /** Checks a username and password (with lockout); 401 or 429 on failure. */
  async login(username: unknown, password: unknown): Promise<AccountRecord> {
    if (typeof username !== 'string' || typeof password !== 'string' || !isValidName(username))
      throw unauthorized(INVALID_CREDENTIALS);
    await this.sessions.checkLock(username);
    const account = await getAccount(this.store, username);
    // Unknown names cost one scrypt too, so timing does not tell which accounts exist.
    const hash = account?.passwordHash && !account.isOrg ? account.passwordHash : await dummyHash();
    const ok = (await verifyPassword(password, hash)) && hash !== (await dummyHash());
    if (!ok || !account) {
      if (account && (await this.sessions.recordFailure(username)))
        this.log.warn(`account ${username} locked after repeated failed logins`);
      throw unauthorized(INVALID_CREDENTIALS);
    }
    if (!account.isActive) throw unauthorized('This account is inactive.');
    await this.sessions.clearFailures(username);
    return account;
  }

  /** The request's principal; throws 401 when credentials are missing or wrong. */
  async authenticate(request: CredentialRequest): Promise<Principal> {
    const principal = await this.tryAuthenticate(request);
    if (!principal) throw unauthorized();
    return principal;
  }

  /** Like authenticate, but undefined when no credentials were presented at all. */
  async tryAuthenticate(request: CredentialRequest): Promise<Principal | undefined> {
    const header = request.authorization?.trim();
    if (header) {
      const space = header.indexOf(' ');
      const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
      const value = space < 0 ? '' : header.slice(space + 1).trim();
      if (scheme === 'bearer' || scheme === 'sessiontoken') {
        const session = await this.sessions.resolve(value);
        const account = session ? await getAccount(this.store, session.name) : undefined;
        if (!session || !account || account.id !== session.accountId || !account.isActive)
          throw unauthorized('invalid or expired token');
        return principalOf(account, scheme === 'bearer' ? 'token' : 'session');
      }
      if (scheme === 'basic') {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) throw unauthorized(INVALID_CREDENTIALS);
        return principalOf(await this.login(decoded.slice(0, colon), decoded.slice(colon + 1)), 'password');
      }
      throw unauthorized('unsupported authorization scheme');
    }
    if (request.peerCertificatePem) return this.certificatePrincipal(request.peerCertificatePem);
    return undefined;
  }

  /** A client-root certificate whose key is registered to an active user; 401 otherwise. */
  async certificatePrincipal(pem: string): Promise<Principal> {
    const { name, fingerprint } = await this.verifiedCertificate(pem);
    // Looked up on every request: a removed key or a deactivated account applies at once.
    const account = await (this.keyOwners ?? this.directory).ownerOfKey(name, fingerprint);
    if (!account) throw unauthorized('client certificate is not registered to an active account');
    return principalOf(account, 'certificate');
  }

  /**
   * The chain check and the parse cost milliseconds and a client sends the same certificate with
   * every request: a certificate that verified against the current client root bundle is
   * remembered for a minute, never past its notAfter; a changed bundle or a failure is not cached.
   */
  private async verifiedCertificate(pem: string): Promise<{ name: string; fingerprint: string }> {
    const bundle = (await this.cas.clientAuthority()).bundlePem;
    const now = Date.now();
    const hit = this.verifiedCertificates.get(pem);
    if (hit && hit.bundle === bundle && now < hit.until) return hit;
    try {
      verifyCertificate(pem, bundle);
    } catch {
      throw unauthorized('client certificate not issued by the client root CA');
    }
    const cert = parseCertificate(pem);
    const verified = {
      bundle,
      name: cert.subject.CN ?? '',
      fingerprint: publicKeyFingerprint(cert.publicKeySpkiPem),
      until: Math.min(now + VERIFIED_CERTIFICATE_TTL_MS, cert.notAfter.getTime()),
    };
    if (this.verifiedCertificates.size >= VERIFIED_CERTIFICATES_MAX) this.verifiedCertificates.clear();
    this.verifiedCertificates.set(pem, verified);
    return verified;
  }
}

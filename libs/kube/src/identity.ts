// Who a request to the front door is: a client bundle certificate, a UCP session/Bearer token or
// an OpenID Connect ID token from orca's provider. The answer is what the apiserver is told in
// X-Remote-User / X-Remote-Group.
import { ApiError } from '@orca/api';
import { teamGroupsOf, type Authenticator, type Directory, type WatchedAccounts } from '@orca/identity';

/** The group admins carry: the apiserver's bootstrap RBAC binds it to cluster-admin. */
export const ADMIN_GROUP = 'system:masters';
export const AUTHENTICATED_GROUP = 'system:authenticated';

export interface KubeIdentity {
  accountId: string;
  user: string;
  groups: string[];
  isAdmin: boolean;
}

export interface IdTokenVerifier {
  verifyIdToken(token: string, audience?: string): Record<string, unknown>;
  /** The cluster's issuer (the same on every manager; an admin may change it). */
  readonly issuer?: string;
}

const unauthorized = (message: string) => new ApiError(401, 'UNAUTHORIZED', message);
const looksLikeJwt = (token: string) => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);

export class KubeAuthenticator {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly oidc: IdTokenVerifier,
    /** The client id ID tokens must be issued for (the apiserver's --oidc-client-id). */
    private readonly audience = 'kubernetes',
    /** Watched accounts and memberships (watchedAccounts(store)); without, the directory is read. */
    private readonly accounts?: WatchedAccounts,
  ) {}

  private get directory(): Directory {
    return this.authenticator.directory;
  }

  /** The identity, or a 401 ApiError. */
  async authenticate(request: {
    authorization?: string;
    peerCertificatePem?: string;
  }): Promise<KubeIdentity> {
    const header = request.authorization?.trim();
    if (header) {
      const [scheme, token = ''] = header.split(/\s+/, 2);
      if (scheme.toLowerCase() === 'bearer' && looksLikeJwt(token)) return this.fromIdToken(token);
      const principal = await this.authenticator.tryAuthenticate({ authorization: header });
      if (!principal) throw unauthorized('authentication required');
      return this.identityOf(principal.id, principal.name, principal.isAdmin);
    }
    if (request.peerCertificatePem) {
      const principal = await this.authenticator.certificatePrincipal(request.peerCertificatePem);
      return this.identityOf(principal.id, principal.name, principal.isAdmin);
    }
    throw unauthorized('authentication required');
  }

  private async fromIdToken(token: string): Promise<KubeIdentity> {
    const claims = this.oidc.verifyIdToken(token, this.audience);
    // The account as it is now (not as the token says): deactivation and team changes apply at once.
    const account =
      typeof claims.sub !== 'string'
        ? undefined
        : this.accounts
          ? await this.accounts.record(claims.sub)
          : await this.directory.record(claims.sub).catch(() => undefined);
    if (!account || account.isOrg || !account.isActive)
      throw unauthorized('the ID token does not name an active account');
    return this.identityOf(account.id, account.name, account.isAdmin);
  }

  private async identityOf(accountId: string, user: string, isAdmin: boolean): Promise<KubeIdentity> {
    // Team groups named like Kubernetes' own (an org called "system") must not reach the apiserver.
    const all = this.accounts
      ? (await this.accounts.groupsOf(accountId)).teamGroups
      : await teamGroupsOf(this.directory, accountId);
    const teams = all.filter((g) => !g.startsWith('system:'));
    const groups = [...teams, AUTHENTICATED_GROUP];
    if (isAdmin) groups.push(ADMIN_GROUP);
    return { accountId, user, groups, isAdmin };
  }
}

// Who a request to the front door is: a client bundle certificate, a UCP session/Bearer token or
// an OpenID Connect ID token from orca's provider. The answer is what the apiserver is told in
// X-Remote-User / X-Remote-Group.
import { ApiError } from '@orca/api';
import {
  ACCOUNTS_PREFIX,
  keys as directoryKeys,
  teamGroupsOf,
  type AccountRecord,
  type Authenticator,
  type Directory,
  type TeamRecord,
} from '@orca/identity';
import { PrefixMirror, type MirrorLog } from '@orca/rbac';
import type { Store } from '@orca/store';

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
}

const unauthorized = (message: string) => new ApiError(401, 'UNAUTHORIZED', message);
const looksLikeJwt = (token: string) => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);

export interface AccountGroups {
  teamIds: string[];
  orgIds: string[];
  /** `<org>:<team>` for each team, sorted (as teamGroupsOf names them). */
  teamGroups: string[];
}

const NO_GROUPS: AccountGroups = { teamIds: [], orgIds: [], teamGroups: [] };
// The directory's key prefixes (keys.orgMembers(org) is `<prefix><org>/`).
const prefixOf = (key: string) => key.replace(/\/+$/, '/');
const ORG_MEMBERS = prefixOf(directoryKeys.orgMembers(''));
const TEAMS = prefixOf(directoryKeys.teams(''));
const TEAM_MEMBERS = prefixOf(directoryKeys.teamMembers('', ''));
const byKey = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * eNZi accounts and their org and team memberships, kept in memory by store watches: the
 * authorization webhook and the front door need them on every request. Same answers as the
 * Directory's record()/groupsOf()/teamGroupsOf(); a change is seen when its watch event arrives
 * (a broken watch makes readers re-list, see PrefixMirror).
 */
type AccountSummary = Omit<AccountRecord, 'passwordHash'>;

export class WatchedAccounts {
  private readonly accounts: PrefixMirror<AccountSummary>;
  private readonly orgMembers: PrefixMirror<true>;
  private readonly teams: PrefixMirror<TeamRecord>;
  private readonly teamMembers: PrefixMirror<true>;
  private view?: {
    generations: number;
    byName: Map<string, AccountSummary>;
    byId: Map<string, AccountSummary>;
    /** Orgs in name order, each with its teams in name order. */
    orgs: { org: AccountSummary; teams: TeamRecord[] }[];
    groups: Map<string, AccountGroups>;
  };

  constructor(
    private readonly store: Store,
    log?: MirrorLog,
  ) {
    const json = <T>(_key: string, value: string) => JSON.parse(value) as T;
    // Password hashes are not kept: nothing here needs them.
    const summary = (_key: string, value: string): AccountSummary => {
      const { passwordHash: _hash, ...account } = JSON.parse(value) as AccountRecord;
      return account;
    };
    this.accounts = new PrefixMirror(store, ACCOUNTS_PREFIX, summary, log);
    this.orgMembers = new PrefixMirror(store, ORG_MEMBERS, () => true as const, log);
    this.teams = new PrefixMirror(store, TEAMS, json<TeamRecord>, log);
    this.teamMembers = new PrefixMirror(store, TEAM_MEMBERS, () => true as const, log);
  }

  private async current() {
    await Promise.all([
      this.accounts.sync(),
      this.orgMembers.sync(),
      this.teams.sync(),
      this.teamMembers.sync(),
    ]);
    // Each mirror's generation only grows: their sum changes whenever one of them does.
    const generations =
      this.accounts.generation +
      this.orgMembers.generation +
      this.teams.generation +
      this.teamMembers.generation;
    if (this.view?.generations === generations) return this.view;
    const byName = new Map<string, AccountSummary>();
    const byId = new Map<string, AccountSummary>();
    const orgs: { org: AccountSummary; teams: TeamRecord[] }[] = [];
    const teamsOf = new Map<string, TeamRecord[]>();
    for (const [, account] of [...this.accounts.entries()].sort(byKey)) {
      byName.set(account.name, account);
      byId.set(account.id.toLowerCase(), account);
      if (account.isOrg) {
        const teams: TeamRecord[] = [];
        teamsOf.set(account.name, teams);
        orgs.push({ org: account, teams });
      }
    }
    for (const [key, team] of [...this.teams.entries()].sort(byKey)) {
      const org = key.slice(TEAMS.length, key.indexOf('/', TEAMS.length));
      teamsOf.get(org)?.push(team);
    }
    this.view = { generations, byName, byId, orgs, groups: new Map() };
    return this.view;
  }

  /** An account by name or id (Directory.record), undefined when none. */
  async record(nameOrId: string): Promise<AccountSummary | undefined> {
    const view = await this.current();
    return view.byName.get(nameOrId) ?? view.byId.get(nameOrId.toLowerCase());
  }

  /** An account by name only (getAccount). */
  async byName(name: string): Promise<AccountSummary | undefined> {
    return (await this.current()).byName.get(name);
  }

  /** The account's orgs and teams (Directory.groupsOf), and its `<org>:<team>` groups. */
  async groupsOf(accountId: string): Promise<AccountGroups> {
    const view = await this.current();
    const known = view.groups.get(accountId);
    if (known) return known;
    const user = view.byName.get(accountId) ?? view.byId.get(accountId.toLowerCase());
    let groups = NO_GROUPS;
    if (user && !user.isOrg) {
      groups = { teamIds: [], orgIds: [], teamGroups: [] };
      const orgMembers = this.orgMembers.entries();
      const teamMembers = this.teamMembers.entries();
      for (const { org, teams } of view.orgs) {
        if (!orgMembers.has(`${ORG_MEMBERS}${org.name}/${user.name}`)) continue;
        groups.orgIds.push(org.id);
        for (const team of teams) {
          if (!teamMembers.has(`${TEAM_MEMBERS}${org.name}/${team.name}/${user.name}`)) continue;
          groups.teamIds.push(team.id);
          groups.teamGroups.push(`${org.name}:${team.name}`);
        }
      }
      groups.teamGroups.sort();
    }
    view.groups.set(accountId, groups);
    return groups;
  }

  /** Stops the watches (watchedAccounts(store) makes a new copy afterwards). */
  async close(): Promise<void> {
    if (watched.get(this.store) === this) watched.delete(this.store);
    await Promise.all([this.accounts, this.orgMembers, this.teams, this.teamMembers].map((m) => m.close()));
  }
}

// One watched copy per store object, shared by the webhook, admission and the front door.
const watched = new WeakMap<Store, WatchedAccounts>();

export function watchedAccounts(store: Store): WatchedAccounts {
  let copy = watched.get(store);
  if (!copy) watched.set(store, (copy = new WatchedAccounts(store)));
  return copy;
}

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

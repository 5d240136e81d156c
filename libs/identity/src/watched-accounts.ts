// eNZi accounts, registered public keys and org/team memberships kept in memory by store watches
// (PrefixMirror, libs/store): the questions every request to the Docker front door, the Kubernetes
// front door and the Kubernetes webhooks asks (is this key still registered to an active account,
// who is this account, which orgs and teams is it in) are answered without store reads. Same
// answers as the Directory's ownerOfKey/record/groupsOf and teamGroupsOf. Revocation still applies
// at once: in the process that made it, a deleted key, a deactivated or deleted account or a
// membership change is waited for by the next answer (the store records its own writes for the
// copies: read-your-writes, libs/store mirror-writes.ts); other processes' changes reach the copy
// with their watch event; and while a watch is broken (compaction, failure) every read re-lists the
// store instead of answering from a copy that may miss a change.
import { PrefixMirror, type MirrorLog, type Store } from '@orca/store';
import { ACCOUNTS_PREFIX, accountKey, type AccountRecord } from './accounts.js';
import { keys, type TeamRecord } from './directory.js';

/** An account as kept in memory: everything but the password hash (nothing here needs it). */
export type AccountSummary = Omit<AccountRecord, 'passwordHash'>;

export interface AccountGroups {
  teamIds: string[];
  orgIds: string[];
  /** `<org>:<team>` for each team, sorted (as teamGroupsOf names them). */
  teamGroups: string[];
}

const NO_GROUPS: AccountGroups = { teamIds: [], orgIds: [], teamGroups: [] };
// The directory's key prefixes (keys.orgMembers(org) is `<prefix><org>/`).
const prefixOf = (key: string) => key.replace(/\/+$/, '/');
const PUBLIC_KEYS = prefixOf(keys.publicKeys(''));
const ORG_MEMBERS = prefixOf(keys.orgMembers(''));
const TEAMS = prefixOf(keys.teams(''));
const TEAM_MEMBERS = prefixOf(keys.teamMembers('', ''));
const byKey = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
const present = () => true as const;

interface AccountsView {
  generations: number;
  byName: Map<string, AccountSummary>;
  /** By lower-cased id. */
  byId: Map<string, AccountSummary>;
  /** Orgs in name order, each with its teams in name order. */
  orgs: { org: AccountSummary; teams: TeamRecord[] }[];
  groups: Map<string, AccountGroups>;
}

/**
 * One per store object (watchedAccounts(store)), shared by every hot path of the process. The
 * prefixes are listed and watched on first use: a process that never checks keys holds no watch
 * on them.
 */
export class WatchedAccounts {
  private readonly accounts: PrefixMirror<AccountSummary>;
  private readonly publicKeys: PrefixMirror<true>;
  private readonly orgMembers: PrefixMirror<true>;
  private readonly teams: PrefixMirror<TeamRecord>;
  private readonly teamMembers: PrefixMirror<true>;
  /** What account and membership answers are derived from. */
  private readonly viewMirrors: PrefixMirror<unknown>[];
  private view?: AccountsView;

  constructor(
    private readonly store: Store,
    log?: MirrorLog,
  ) {
    const summary = (_key: string, value: string): AccountSummary => {
      const { passwordHash: _hash, ...account } = JSON.parse(value) as AccountRecord;
      return account;
    };
    this.accounts = new PrefixMirror(store, ACCOUNTS_PREFIX, summary, log);
    this.publicKeys = new PrefixMirror(store, PUBLIC_KEYS, present, log);
    this.orgMembers = new PrefixMirror(store, ORG_MEMBERS, present, log);
    this.teams = new PrefixMirror(store, TEAMS, (_key, value) => JSON.parse(value) as TeamRecord, log);
    this.teamMembers = new PrefixMirror(store, TEAM_MEMBERS, present, log);
    this.viewMirrors = [this.accounts, this.orgMembers, this.teams, this.teamMembers];
  }

  private async current(): Promise<AccountsView> {
    // Hot path: all watched and current, no promise per mirror.
    if (!this.viewMirrors.every((m) => m.isCurrent()))
      await Promise.all(this.viewMirrors.map((m) => m.sync()));
    // Each mirror's generation only grows: their sum changes whenever one of them does.
    let generations = 0;
    for (const mirror of this.viewMirrors) generations += mirror.generation;
    if (this.view?.generations === generations) return this.view;
    const byName = new Map<string, AccountSummary>();
    const byId = new Map<string, AccountSummary>();
    const orgs: AccountsView['orgs'] = [];
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

  /** The active user whose public key `keyId` is registered (Directory.ownerOfKey). */
  async ownerOfKey(name: string, keyId: string): Promise<AccountSummary | undefined> {
    if (!this.accounts.isCurrent() || !this.publicKeys.isCurrent())
      await Promise.all([this.accounts.sync(), this.publicKeys.sync()]);
    const account = this.accounts.entries().get(accountKey(name));
    if (!account || account.isOrg || !account.isActive || account.name !== name) return undefined;
    return this.publicKeys.entries().has(keys.publicKey(name, keyId)) ? account : undefined;
  }

  /** The account's orgs and teams by id (Directory.groupsOf), and its `<org>:<team>` groups. */
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

  /** Stops the watches; watchedAccounts(store) makes a new copy afterwards. */
  async close(): Promise<void> {
    if (shared.get(this.store) === this) shared.delete(this.store);
    await Promise.all(
      [this.accounts, this.publicKeys, this.orgMembers, this.teams, this.teamMembers].map((m) => m.close()),
    );
  }
}

// One copy per store object: the front doors and the webhooks of a process share it.
const shared = new WeakMap<Store, WatchedAccounts>();

/** The process's watched copy for `store` (made on first use; `log` is used by the one that makes it). */
export function watchedAccounts(store: Store, log?: MirrorLog): WatchedAccounts {
  let copy = shared.get(store);
  if (!copy) shared.set(store, (copy = new WatchedAccounts(store, log)));
  return copy;
}

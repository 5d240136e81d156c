// In-memory copies of what every bundle request asks the store (is this key still registered to an
// active account, and which orgs and teams is the account in), kept current by store watches, so
// the Docker front door does not pay several store round trips per request. Revocation still
// applies at once: a deleted key, a deactivated or deleted account, a membership change reaches
// the copy with its watch event, and while a watch is broken (compaction, failure) every read
// re-lists the store instead of answering from a copy that may miss a change.
import type { Store, Watch } from '@orca/store';
import { ACCOUNTS_PREFIX, type AccountRecord } from './accounts.js';
import { keys, type TeamRecord } from './directory.js';

export interface IdentityCacheLog {
  warn(message: string): void;
}

const V1 = '/orca/v1/';

/** One store prefix in memory: listed on first use and after any watch failure, then watched. */
export class WatchedPrefix<T> {
  private values = new Map<string, T>();
  private healthy = false;
  private closed = false;
  private loading?: Promise<void>;
  private watch?: Watch;
  /** Identifies the current listing and its watch: events of a replaced watch are ignored. */
  private token?: object;
  /** Bumped on every change, so derived views know when to rebuild. */
  generation = 0;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    /** The value kept for a key (relative to the prefix); undefined: not kept. */
    private readonly decode: (key: string, value: string) => T | undefined,
    private readonly log?: IdentityCacheLog,
  ) {}

  /** The current copy (do not keep it across awaits); rejects when the store cannot answer. */
  async entries(): Promise<ReadonlyMap<string, T>> {
    if (this.closed) throw new Error(`the ${this.prefix} copy is closed`);
    if (!this.healthy) await (this.loading ??= this.load().finally(() => (this.loading = undefined)));
    return this.values;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.healthy = false;
    this.token = undefined;
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch(() => undefined);
  }

  private async load(): Promise<void> {
    const previous = this.watch;
    this.watch = undefined;
    this.token = undefined;
    await previous?.close().catch(() => undefined);
    const listed = await this.store.range(this.prefix);
    const values = new Map<string, T>();
    for (const kv of listed.kvs) this.keep(values, kv.key, kv.value);
    const token = {};
    this.token = token;
    // In place before the watch exists: its first events may come before store.watch resolves.
    this.values = values;
    this.generation++;
    const watch = await this.store.watch(this.prefix, listed.revision + 1, {
      onEvents: (events) => {
        if (this.token !== token) return;
        for (const event of events) {
          if (event.type === 'put') this.keep(this.values, event.kv.key, event.kv.value);
          else this.values.delete(event.key.slice(this.prefix.length));
        }
        this.generation++;
      },
      onCompacted: () => this.broken(token, 'its revision was compacted'),
      onError: (error) => this.broken(token, error.message),
    });
    if (this.token !== token || this.closed) {
      await watch.close().catch(() => undefined);
      return;
    }
    this.watch = watch;
    this.healthy = true;
  }

  private keep(values: Map<string, T>, key: string, value: string): void {
    const relative = key.slice(this.prefix.length);
    let decoded: T | undefined;
    try {
      decoded = this.decode(relative, value);
    } catch {
      decoded = undefined;
    }
    if (decoded === undefined) values.delete(relative);
    else values.set(relative, decoded);
  }

  /** The watch cannot be trusted any more: the next read lists the store again. */
  private broken(token: object, why: string): void {
    if (this.token !== token) return;
    this.healthy = false;
    this.token = undefined;
    this.log?.warn(`identity cache: watch on ${this.prefix} stopped (${why}); re-listing on next use`);
  }
}

type AccountSummary = Pick<AccountRecord, 'id' | 'name' | 'isOrg' | 'isAdmin' | 'isActive'>;

const present = (): true => true;

/**
 * The answers of Directory.ownerOfKey and Directory.groupsOf from watched copies of the accounts,
 * public keys, org members, teams and team members. Opt-in (it holds five watches): one per
 * long-lived process that authenticates at request rate.
 */
export class IdentityCache {
  private readonly accounts: WatchedPrefix<AccountSummary>;
  private readonly publicKeys: WatchedPrefix<true>;
  private readonly orgMembers: WatchedPrefix<true>;
  private readonly teams: WatchedPrefix<Pick<TeamRecord, 'id' | 'name'>>;
  private readonly teamMembers: WatchedPrefix<true>;
  private groups?: { generation: string; byAccount: Map<string, { teamIds: string[]; orgIds: string[] }> };

  constructor(store: Store, log?: IdentityCacheLog) {
    this.accounts = new WatchedPrefix(
      store,
      ACCOUNTS_PREFIX,
      (_key, value) => {
        const { id, name, isOrg, isAdmin, isActive } = JSON.parse(value) as AccountRecord;
        return { id, name, isOrg, isAdmin, isActive };
      },
      log,
    );
    this.publicKeys = new WatchedPrefix(store, `${V1}publickeys/`, present, log);
    this.orgMembers = new WatchedPrefix(store, `${V1}orgmembers/`, present, log);
    this.teams = new WatchedPrefix(
      store,
      `${V1}teams/`,
      (_key, value) => {
        const { id, name } = JSON.parse(value) as TeamRecord;
        return { id, name };
      },
      log,
    );
    this.teamMembers = new WatchedPrefix(store, `${V1}teammembers/`, present, log);
  }

  /** The active user whose public key `keyId` is registered (Directory.ownerOfKey). */
  async ownerOfKey(name: string, keyId: string): Promise<AccountSummary | undefined> {
    const [accounts, publicKeys] = await Promise.all([this.accounts.entries(), this.publicKeys.entries()]);
    const account = accounts.get(name);
    if (!account || account.isOrg || !account.isActive) return undefined;
    const relativeKey = keys.publicKey(name, keyId).slice(`${V1}publickeys/`.length);
    return publicKeys.has(relativeKey) ? account : undefined;
  }

  /** The orgs and teams a user belongs to, by id (Directory.groupsOf). */
  async groupsOf(accountId: string): Promise<{ teamIds: string[]; orgIds: string[] }> {
    const [accounts, orgMembers, teams, teamMembers] = await Promise.all([
      this.accounts.entries(),
      this.orgMembers.entries(),
      this.teams.entries(),
      this.teamMembers.entries(),
    ]);
    const generation = [this.accounts, this.orgMembers, this.teams, this.teamMembers]
      .map((p) => p.generation)
      .join('/');
    if (this.groups?.generation !== generation) this.groups = { generation, byAccount: new Map() };
    const known = this.groups.byAccount.get(accountId);
    if (known) return known;
    const user = [...accounts.values()].find((a) => a.id === accountId);
    const groups: { teamIds: string[]; orgIds: string[] } = { teamIds: [], orgIds: [] };
    if (user && !user.isOrg) {
      for (const org of accounts.values()) {
        if (!org.isOrg || !orgMembers.has(`${org.name}/${user.name}`)) continue;
        groups.orgIds.push(org.id);
        for (const [key, team] of teams) {
          if (key.startsWith(`${org.name}/`) && teamMembers.has(`${org.name}/${team.name}/${user.name}`))
            groups.teamIds.push(team.id);
        }
      }
    }
    this.groups.byAccount.set(accountId, groups);
    return groups;
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.accounts, this.publicKeys, this.orgMembers, this.teams, this.teamMembers].map((p) => p.close()),
    );
  }
}

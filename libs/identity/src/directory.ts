// The eNZi directory: users, organizations, org membership, teams and team membership, and account
// public keys, all in the store (layout in docs/architecture.md, State). Names are validated before
// they become key segments, so a name can never reach outside its own prefix.
import { ApiError } from '@orca/api';
import { publicKeyFingerprint } from '@orca/pki';
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import { ACCOUNTS_PREFIX, accountKey, getAccount, type AccountRecord } from './accounts.js';
import { hashPassword, verifyPassword } from './passwords.js';

export const DEFAULT_ORG = 'docker-datacenter';
const V1 = '/orca/v1/';
export const keys = {
  accountId: (id: string) => `${V1}accountids/${id}`,
  orgMember: (org: string, user: string) => `${V1}orgmembers/${org}/${user}`,
  orgMembers: (org: string) => `${V1}orgmembers/${org}/`,
  team: (org: string, team: string) => `${V1}teams/${org}/${team}`,
  teams: (org: string) => `${V1}teams/${org}/`,
  teamMember: (org: string, team: string, user: string) => `${V1}teammembers/${org}/${team}/${user}`,
  teamMembers: (org: string, team: string) => `${V1}teammembers/${org}/${team}/`,
  publicKey: (user: string, id: string) => `${V1}publickeys/${user}/${id}`,
  publicKeys: (user: string) => `${V1}publickeys/${user}/`,
};

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name) && !name.includes('..');
}

const bad = (message: string) => new ApiError(400, 'INVALID_REQUEST', message);
const notFound = (what: string) => new ApiError(404, 'NOT_FOUND', `${what} not found`);

export interface Account {
  id: string;
  name: string;
  fullName: string;
  isOrg: boolean;
  isAdmin: boolean;
  isActive: boolean;
  isImported: boolean;
  membersCount: number;
  teamsCount: number;
}

export interface TeamRecord {
  id: string;
  orgID: string;
  name: string;
  description: string;
}

export interface Team extends TeamRecord {
  membersCount: number;
}

export interface PublicKeyRecord {
  id: string;
  accountID: string;
  publicKey: string;
  label: string;
  certificates: { label: string; cert: string }[];
}

interface MembershipRecord {
  isAdmin: boolean;
}

export interface Page {
  start?: string;
  limit?: string | number;
}

/** Validates a JSON body is an object and reads typed optional fields from it. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function optional<T extends 'string' | 'boolean'>(
  body: Record<string, unknown>,
  field: string,
  type: T,
): (T extends 'string' ? string : boolean) | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw bad(`${field} must be a ${type}`);
  return value as T extends 'string' ? string : boolean;
}

export function parseLimit(raw: unknown): number {
  if (raw === undefined || raw === '') return DEFAULT_LIMIT;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw bad('limit must be a positive integer');
  return Math.min(n, MAX_LIMIT);
}

/** Pages a sorted list by an inclusive start marker: the page starts at the item whose marker equals start (or the first after it). */
export function paginate<T>(
  items: T[],
  marker: (item: T) => string,
  page: Page,
  after: (item: T, start: string) => boolean = (item, start) => marker(item) >= start,
): { items: T[]; nextPageStart: string } {
  const limit = parseLimit(page.limit);
  let from = 0;
  if (page.start) {
    const exact = items.findIndex((item) => marker(item) === page.start);
    from = exact >= 0 ? exact : items.findIndex((item) => after(item, page.start as string));
    if (from < 0) from = items.length;
  }
  const slice = items.slice(from, from + limit);
  const next = items[from + limit];
  return { items: slice, nextPageStart: next ? marker(next) : '' };
}

const FILTERS = ['all', 'users', 'orgs', 'admins', 'non-admins', 'active-users', 'inactive-users'] as const;

export class Directory {
  constructor(private readonly store: Store) {}

  // ---- accounts ----

  private async readJson<T>(key: string): Promise<T | undefined> {
    const kv = await this.store.get(key);
    return kv ? (JSON.parse(kv.value) as T) : undefined;
  }

  private async values<T>(prefix: string): Promise<T[]> {
    const { kvs } = await this.store.range(prefix);
    return kvs.map((kv) => JSON.parse(kv.value) as T);
  }

  /** Creates the default org every new user joins, when missing (idempotent, safe on every start). */
  async ensureDefaultOrg(): Promise<void> {
    await this.createRecord(
      {
        id: randomUUID(),
        name: DEFAULT_ORG,
        fullName: '',
        isOrg: true,
        isAdmin: false,
        isActive: true,
        isImported: false,
        createdAt: new Date().toISOString(),
      },
      true,
    );
    const admin = await getAccount(this.store, 'admin');
    if (admin) {
      await this.ensureIdIndex(admin);
      // The first admin is a member (and admin) of the default org, as in UCP.
      await this.store.txn(
        [{ key: keys.orgMember(DEFAULT_ORG, 'admin'), target: 'createRevision', op: '=', value: 0 }],
        [
          {
            type: 'put',
            key: keys.orgMember(DEFAULT_ORG, 'admin'),
            value: JSON.stringify({ isAdmin: true }),
          },
        ],
      );
    }
  }

  private async ensureIdIndex(record: AccountRecord): Promise<void> {
    await this.store.txn(
      [{ key: keys.accountId(record.id), target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key: keys.accountId(record.id), value: record.name }],
    );
  }

  private async createRecord(record: AccountRecord, quiet = false): Promise<boolean> {
    // Create-if-absent: two controllers creating the same name cannot both win.
    const result = await this.store.txn(
      [{ key: accountKey(record.name), target: 'createRevision', op: '=', value: 0 }],
      [
        { type: 'put', key: accountKey(record.name), value: JSON.stringify(record) },
        { type: 'put', key: keys.accountId(record.id), value: record.name },
      ],
    );
    if (!result.succeeded && !quiet)
      throw new ApiError(409, 'ACCOUNT_EXISTS', 'an account with this name already exists');
    return result.succeeded;
  }

  /** An account record by name or id; 404 when neither matches. */
  async record(nameOrId: string): Promise<AccountRecord> {
    if (isValidName(nameOrId)) {
      const byName = await getAccount(this.store, nameOrId);
      if (byName) return byName;
    }
    if (UUID.test(nameOrId)) {
      const name = await this.store.get(keys.accountId(nameOrId.toLowerCase()));
      const byId = name ? await getAccount(this.store, name.value) : undefined;
      if (byId) return byId;
    }
    throw notFound('account');
  }

  async user(nameOrId: string): Promise<AccountRecord> {
    const record = await this.record(nameOrId);
    if (record.isOrg) throw notFound('user');
    return record;
  }

  async org(nameOrId: string): Promise<AccountRecord> {
    const record = await this.record(nameOrId);
    if (!record.isOrg) throw notFound('organization');
    return record;
  }

  async view(record: AccountRecord): Promise<Account> {
    let membersCount = 0;
    let teamsCount = 0;
    if (record.isOrg) {
      membersCount = (await this.store.range(keys.orgMembers(record.name), { keysOnly: true })).count;
      teamsCount = (await this.store.range(keys.teams(record.name), { keysOnly: true })).count;
    }
    return {
      id: record.id,
      name: record.name,
      fullName: record.fullName,
      isOrg: record.isOrg,
      isAdmin: record.isOrg ? false : record.isAdmin,
      isActive: record.isOrg ? true : record.isActive,
      isImported: record.isImported,
      membersCount,
      teamsCount,
    };
  }

  async account(nameOrId: string): Promise<Account> {
    return this.view(await this.record(nameOrId));
  }

  async list(query: Record<string, unknown>): Promise<{
    accounts: Account[];
    nextPageStart: string;
    resourceCount: number;
    usersCount: number;
    orgsCount: number;
  }> {
    const filter = (query.filter ?? 'all') as string;
    if (!(FILTERS as readonly string[]).includes(filter)) throw bad(`unknown filter ${filter}`);
    const order = typeof query.order === 'string' && query.order !== '' ? query.order : 'name';
    const match = /^([+-]?)(name|fullName)$/.exec(order);
    if (!match) throw bad('order must be name or fullName, optionally prefixed with + or -');
    const descending = match[1] === '-';
    const field = match[2] as 'name' | 'fullName';
    const contains = typeof query.contains === 'string' ? query.contains.toLowerCase() : '';
    const all = await this.values<AccountRecord>(ACCOUNTS_PREFIX);
    const selected = all.filter((a) => {
      if (
        contains &&
        !a.name.toLowerCase().includes(contains) &&
        !a.fullName.toLowerCase().includes(contains)
      )
        return false;
      switch (filter) {
        case 'users':
          return !a.isOrg;
        case 'orgs':
          return a.isOrg;
        case 'admins':
          return !a.isOrg && a.isAdmin;
        case 'non-admins':
          return !a.isOrg && !a.isAdmin;
        case 'active-users':
          return !a.isOrg && a.isActive;
        case 'inactive-users':
          return !a.isOrg && !a.isActive;
        default:
          return true;
      }
    });
    const sortKey = (a: AccountRecord) => (field === 'name' ? a.name : `${a.fullName}\u0000${a.name}`);
    selected.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
    if (descending) selected.reverse();
    const start = typeof query.start === 'string' ? query.start : undefined;
    const page = paginate(
      selected,
      (a) => a.name,
      { start, limit: query.limit as string },
      (a, s) => (field === 'name' ? (descending ? a.name <= s : a.name >= s) : false),
    );
    return {
      accounts: await Promise.all(page.items.map((a) => this.view(a))),
      nextPageStart: page.nextPageStart,
      resourceCount: selected.length,
      usersCount: selected.filter((a) => !a.isOrg).length,
      orgsCount: selected.filter((a) => a.isOrg).length,
    };
  }

  async create(body: unknown): Promise<Account> {
    const form = objectBody(body);
    const name = form.name;
    if (!isValidName(name)) throw bad('name must be 1-100 letters, digits, ".", "_" or "-"');
    const isOrg = optional(form, 'isOrg', 'boolean') ?? false;
    const password = optional(form, 'password', 'string');
    const fullName = optional(form, 'fullName', 'string') ?? '';
    const isAdmin = optional(form, 'isAdmin', 'boolean') ?? false;
    const isActive = optional(form, 'isActive', 'boolean') ?? true;
    if (optional(form, 'searchLDAP', 'boolean')) throw bad('LDAP is not configured');
    if (!isOrg && (!password || password.length < 8)) throw bad('password must be at least 8 characters');
    if (fullName.length > 200) throw bad('fullName is too long');
    const record: AccountRecord = {
      id: randomUUID(),
      name,
      fullName,
      isOrg,
      isAdmin: isOrg ? false : isAdmin,
      isActive: isOrg ? true : isActive,
      isImported: false,
      ...(isOrg ? {} : { passwordHash: await hashPassword(password as string) }),
      createdAt: new Date().toISOString(),
    };
    await this.createRecord(record);
    if (!isOrg) {
      await this.ensureDefaultOrg();
      await this.store.put(keys.orgMember(DEFAULT_ORG, name), JSON.stringify({ isAdmin: false }));
    }
    return this.view(record);
  }

  private async save(record: AccountRecord): Promise<void> {
    await this.store.put(accountKey(record.name), JSON.stringify(record));
  }

  async update(nameOrId: string, body: unknown): Promise<Account> {
    const form = objectBody(body);
    const record = await this.record(nameOrId);
    const fullName = optional(form, 'fullName', 'string');
    const isActive = optional(form, 'isActive', 'boolean');
    const isAdmin = optional(form, 'isAdmin', 'boolean');
    if (fullName !== undefined) record.fullName = fullName.slice(0, 200);
    if (!record.isOrg) {
      if (isActive !== undefined) record.isActive = isActive;
      if (isAdmin !== undefined) record.isAdmin = isAdmin;
      if (!(record.isAdmin && record.isActive)) await this.keepAnAdmin(record.name);
    }
    await this.save(record);
    return this.view(record);
  }

  /** Refuses a change that would leave no active admin (nobody could manage the cluster). */
  private async keepAnAdmin(losing: string): Promise<void> {
    const others = (await this.values<AccountRecord>(ACCOUNTS_PREFIX)).filter(
      (a) => !a.isOrg && a.isAdmin && a.isActive && a.name !== losing,
    );
    if (others.length === 0) throw new ApiError(409, 'LAST_ADMIN', 'this is the last active administrator');
  }

  async remove(nameOrId: string): Promise<void> {
    const record = await this.record(nameOrId);
    if (!record.isOrg && record.isAdmin && record.isActive) await this.keepAnAdmin(record.name);
    await this.store.delete(accountKey(record.name));
    await this.store.delete(keys.accountId(record.id));
    if (record.isOrg) {
      await this.store.deletePrefix(keys.orgMembers(record.name));
      await this.store.deletePrefix(keys.teams(record.name));
      await this.store.deletePrefix(`${V1}teammembers/${record.name}/`);
      await this.store.delete(`${V1}syncconfig/orgs/${record.name}`);
      await this.store.deletePrefix(`${V1}syncconfig/teams/${record.name}/`);
    } else {
      await this.store.deletePrefix(keys.publicKeys(record.name));
      for (const org of await this.values<AccountRecord>(ACCOUNTS_PREFIX)) {
        if (!org.isOrg) continue;
        await this.store.delete(keys.orgMember(org.name, record.name));
        for (const team of await this.values<TeamRecord>(keys.teams(org.name)))
          await this.store.delete(keys.teamMember(org.name, team.name, record.name));
      }
    }
  }

  async changePassword(
    nameOrId: string,
    body: unknown,
    callerIsAdmin: boolean,
    self: boolean,
  ): Promise<Account> {
    const form = objectBody(body);
    const record = await this.user(nameOrId);
    const oldPassword = optional(form, 'oldPassword', 'string');
    const newPassword = optional(form, 'newPassword', 'string');
    if (!newPassword || newPassword.length < 8) throw bad('newPassword must be at least 8 characters');
    // Admins may reset another user's password without the old one; everyone else proves it.
    if (self || !callerIsAdmin) {
      if (oldPassword === undefined) throw bad('oldPassword is required');
      if (!record.passwordHash || !(await verifyPassword(oldPassword, record.passwordHash)))
        throw new ApiError(403, 'INVALID_PASSWORD', 'the old password is not correct');
    }
    record.passwordHash = await hashPassword(newPassword);
    await this.save(record);
    return this.view(record);
  }

  // ---- org membership ----

  async membership(org: string, user: string): Promise<MembershipRecord | undefined> {
    return this.readJson<MembershipRecord>(keys.orgMember(org, user));
  }

  async orgsOf(nameOrId: string, page: Page) {
    const user = await this.user(nameOrId);
    const orgs = (await this.values<AccountRecord>(ACCOUNTS_PREFIX)).filter((a) => a.isOrg);
    const memberOrgs: { org: Account; isAdmin: boolean }[] = [];
    for (const org of orgs) {
      const m = await this.membership(org.name, user.name);
      if (m) memberOrgs.push({ org: await this.view(org), isAdmin: m.isAdmin });
    }
    const p = paginate(memberOrgs, (m) => m.org.name, page);
    return { memberOrgs: p.items, nextPageStart: p.nextPageStart };
  }

  private async membersOf(prefix: string, query: Record<string, unknown>) {
    const filter = (query.filter ?? 'all') as string;
    if (!['all', 'admins', 'non-admins'].includes(filter)) throw bad(`unknown filter ${filter}`);
    const { kvs } = await this.store.range(prefix);
    const members: { member: Account; isAdmin: boolean }[] = [];
    for (const kv of kvs) {
      const { isAdmin } = JSON.parse(kv.value) as MembershipRecord;
      if ((filter === 'admins' && !isAdmin) || (filter === 'non-admins' && isAdmin)) continue;
      const account = await getAccount(this.store, kv.key.slice(prefix.length));
      if (account) members.push({ member: await this.view(account), isAdmin });
    }
    const p = paginate(members, (m) => m.member.name, {
      start: query.start as string,
      limit: query.limit as string,
    });
    return { members: p.items, nextPageStart: p.nextPageStart, resourceCount: members.length };
  }

  async orgMembers(orgRef: string, query: Record<string, unknown>) {
    const org = await this.org(orgRef);
    return this.membersOf(keys.orgMembers(org.name), query);
  }

  async orgMember(orgRef: string, memberRef: string) {
    const org = await this.org(orgRef);
    const user = await this.user(memberRef);
    const m = await this.membership(org.name, user.name);
    if (!m) throw notFound('membership');
    return { member: await this.view(user), isAdmin: m.isAdmin };
  }

  async setOrgMember(orgRef: string, memberRef: string, body: unknown) {
    const form = body === undefined || body === null ? {} : objectBody(body);
    const org = await this.org(orgRef);
    const user = await this.user(memberRef);
    const current = await this.membership(org.name, user.name);
    const isAdmin = optional(form, 'isAdmin', 'boolean') ?? current?.isAdmin ?? false;
    await this.store.put(keys.orgMember(org.name, user.name), JSON.stringify({ isAdmin }));
    return { member: await this.view(user), isAdmin };
  }

  async removeOrgMember(orgRef: string, memberRef: string): Promise<void> {
    const org = await this.org(orgRef);
    const user = await this.user(memberRef);
    if (!(await this.membership(org.name, user.name))) throw notFound('membership');
    await this.store.delete(keys.orgMember(org.name, user.name));
    for (const team of await this.values<TeamRecord>(keys.teams(org.name)))
      await this.store.delete(keys.teamMember(org.name, team.name, user.name));
  }

  async memberTeams(orgRef: string, memberRef: string, page: Page) {
    const org = await this.org(orgRef);
    const user = await this.user(memberRef);
    if (!(await this.membership(org.name, user.name))) throw notFound('membership');
    const memberTeams: { team: Team; isAdmin: boolean }[] = [];
    for (const team of await this.values<TeamRecord>(keys.teams(org.name))) {
      const m = await this.readJson<MembershipRecord>(keys.teamMember(org.name, team.name, user.name));
      if (m) memberTeams.push({ team: await this.teamView(org.name, team), isAdmin: m.isAdmin });
    }
    const p = paginate(memberTeams, (m) => m.team.name, page);
    return { memberTeams: p.items, nextPageStart: p.nextPageStart };
  }

  /**
   * The orgs and teams an account belongs to, by id: what RBAC needs to add up grants given to
   * a user's teams and orgs (structurally rbac's SubjectDirectory.groupsOf).
   */
  async groupsOf(accountId: string): Promise<{ teamIds: string[]; orgIds: string[] }> {
    const user = await this.record(accountId).catch(() => undefined);
    if (!user || user.isOrg) return { teamIds: [], orgIds: [] };
    const orgIds: string[] = [];
    const teamIds: string[] = [];
    for (const org of (await this.values<AccountRecord>(ACCOUNTS_PREFIX)).filter((a) => a.isOrg)) {
      if (!(await this.membership(org.name, user.name))) continue;
      orgIds.push(org.id);
      for (const team of await this.values<TeamRecord>(keys.teams(org.name))) {
        if (await this.readJson(keys.teamMember(org.name, team.name, user.name))) teamIds.push(team.id);
      }
    }
    return { teamIds, orgIds };
  }

  /** What a grant subject id names: a user, an org or a team (for the grants listing). */
  async describe(id: string): Promise<{ subject_type: string; account?: Account; team?: Team } | undefined> {
    const account = await this.record(id).catch(() => undefined);
    if (account) return { subject_type: account.isOrg ? 'org' : 'user', account: await this.view(account) };
    for (const org of (await this.values<AccountRecord>(ACCOUNTS_PREFIX)).filter((a) => a.isOrg)) {
      const team = (await this.values<TeamRecord>(keys.teams(org.name))).find((t) => t.id === id);
      if (team) return { subject_type: 'team', team: await this.teamView(org.name, team) };
    }
    return undefined;
  }

  // ---- teams ----

  private async teamView(org: string, team: TeamRecord): Promise<Team> {
    const membersCount = (await this.store.range(keys.teamMembers(org, team.name), { keysOnly: true })).count;
    return { ...team, membersCount };
  }

  async teamRecord(orgRef: string, teamRef: string): Promise<{ org: AccountRecord; team: TeamRecord }> {
    const org = await this.org(orgRef);
    if (isValidName(teamRef)) {
      const byName = await this.readJson<TeamRecord>(keys.team(org.name, teamRef));
      if (byName) return { org, team: byName };
    }
    const byId = (await this.values<TeamRecord>(keys.teams(org.name))).find((t) => t.id === teamRef);
    if (!byId) throw notFound('team');
    return { org, team: byId };
  }

  async teams(orgRef: string, page: Page) {
    const org = await this.org(orgRef);
    const all = await this.values<TeamRecord>(keys.teams(org.name));
    const p = paginate(all, (t) => t.name, page);
    return {
      teams: await Promise.all(p.items.map((t) => this.teamView(org.name, t))),
      nextPageStart: p.nextPageStart,
      resourceCount: all.length,
    };
  }

  async team(orgRef: string, teamRef: string): Promise<Team> {
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    return this.teamView(org.name, team);
  }

  async createTeam(orgRef: string, body: unknown): Promise<Team> {
    const form = objectBody(body);
    const org = await this.org(orgRef);
    if (!isValidName(form.name)) throw bad('name must be 1-100 letters, digits, ".", "_" or "-"');
    const description = optional(form, 'description', 'string') ?? '';
    const team: TeamRecord = { id: randomUUID(), orgID: org.id, name: form.name, description };
    const result = await this.store.txn(
      [{ key: keys.team(org.name, team.name), target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key: keys.team(org.name, team.name), value: JSON.stringify(team) }],
    );
    if (!result.succeeded) throw new ApiError(409, 'TEAM_EXISTS', 'a team with this name already exists');
    return this.teamView(org.name, team);
  }

  async updateTeam(orgRef: string, teamRef: string, body: unknown): Promise<Team> {
    const form = objectBody(body);
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    const description = optional(form, 'description', 'string');
    if (form.name !== undefined && form.name !== team.name) throw bad('a team cannot be renamed');
    if (description !== undefined) team.description = description;
    await this.store.put(keys.team(org.name, team.name), JSON.stringify(team));
    return this.teamView(org.name, team);
  }

  async removeTeam(orgRef: string, teamRef: string): Promise<void> {
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    await this.store.delete(keys.team(org.name, team.name));
    await this.store.deletePrefix(keys.teamMembers(org.name, team.name));
    await this.store.delete(`${V1}syncconfig/teams/${org.name}/${team.name}`);
  }

  async teamMembers(orgRef: string, teamRef: string, query: Record<string, unknown>) {
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    return this.membersOf(keys.teamMembers(org.name, team.name), query);
  }

  async teamMember(orgRef: string, teamRef: string, memberRef: string) {
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    const user = await this.user(memberRef);
    const m = await this.readJson<MembershipRecord>(keys.teamMember(org.name, team.name, user.name));
    if (!m) throw notFound('membership');
    return { member: await this.view(user), isAdmin: m.isAdmin };
  }

  async setTeamMember(orgRef: string, teamRef: string, memberRef: string, body: unknown) {
    const form = body === undefined || body === null ? {} : objectBody(body);
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    const user = await this.user(memberRef);
    const key = keys.teamMember(org.name, team.name, user.name);
    const current = await this.readJson<MembershipRecord>(key);
    const isAdmin = optional(form, 'isAdmin', 'boolean') ?? current?.isAdmin ?? false;
    // Team members are org members: add to the org first when needed (as eNZi does).
    if (!(await this.membership(org.name, user.name)))
      await this.store.put(keys.orgMember(org.name, user.name), JSON.stringify({ isAdmin: false }));
    await this.store.put(key, JSON.stringify({ isAdmin }));
    return { member: await this.view(user), isAdmin };
  }

  async removeTeamMember(orgRef: string, teamRef: string, memberRef: string): Promise<void> {
    const { org, team } = await this.teamRecord(orgRef, teamRef);
    const user = await this.user(memberRef);
    const deleted = await this.store.delete(keys.teamMember(org.name, team.name, user.name));
    if (deleted.deleted === 0) throw notFound('membership');
  }

  // ---- public keys ----

  async publicKeys(userRef: string, page: Page) {
    const user = await this.user(userRef);
    const all = await this.values<PublicKeyRecord>(keys.publicKeys(user.name));
    const p = paginate(all, (k) => k.id, page);
    return { accountPublicKeys: p.items, nextPageStart: p.nextPageStart };
  }

  async addPublicKey(userRef: string, body: unknown): Promise<PublicKeyRecord> {
    const form = objectBody(body);
    const user = await this.user(userRef);
    const pem = optional(form, 'publicKey', 'string');
    if (!pem) throw bad('publicKey is required');
    const label = optional(form, 'label', 'string') ?? '';
    let id: string;
    try {
      id = publicKeyFingerprint(pem);
    } catch {
      throw bad('publicKey is not a PEM public key');
    }
    const certificates = Array.isArray(form.certificates)
      ? form.certificates.map((c: unknown) => {
          const cert = c as Record<string, unknown>;
          if (typeof cert?.cert !== 'string') throw bad('each certificate needs a cert');
          return { label: typeof cert.label === 'string' ? cert.label : '', cert: cert.cert };
        })
      : [];
    const record: PublicKeyRecord = {
      id,
      accountID: user.id,
      publicKey: pem.trim() + '\n',
      label: label.slice(0, 200),
      certificates,
    };
    const result = await this.store.txn(
      [{ key: keys.publicKey(user.name, id), target: 'createRevision', op: '=', value: 0 }],
      [{ type: 'put', key: keys.publicKey(user.name, id), value: JSON.stringify(record) }],
    );
    if (!result.succeeded)
      throw new ApiError(409, 'PUBLIC_KEY_EXISTS', 'this public key is already registered');
    return record;
  }

  private async keyRecord(userRef: string, keyId: string) {
    const user = await this.user(userRef);
    if (!/^[0-9a-f]{64}$/.test(keyId)) throw notFound('public key');
    const record = await this.readJson<PublicKeyRecord>(keys.publicKey(user.name, keyId));
    if (!record) throw notFound('public key');
    return { user, record };
  }

  async updatePublicKey(userRef: string, keyId: string, body: unknown): Promise<PublicKeyRecord> {
    const form = objectBody(body);
    const { user, record } = await this.keyRecord(userRef, keyId);
    const label = optional(form, 'label', 'string');
    if (label !== undefined) record.label = label.slice(0, 200);
    await this.store.put(keys.publicKey(user.name, keyId), JSON.stringify(record));
    return record;
  }

  async removePublicKey(userRef: string, keyId: string): Promise<void> {
    const { user } = await this.keyRecord(userRef, keyId);
    await this.store.delete(keys.publicKey(user.name, keyId));
  }

  /** The active user owning a registered public key, or undefined. */
  async ownerOfKey(name: string, keyId: string): Promise<AccountRecord | undefined> {
    if (!isValidName(name)) return undefined;
    const account = await getAccount(this.store, name);
    if (!account || account.isOrg || !account.isActive) return undefined;
    return (await this.store.get(keys.publicKey(name, keyId))) ? account : undefined;
  }
}

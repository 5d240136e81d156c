// LDAP member sync options of an org's admins and of a team (forms/responses.MemberSyncOpts).
// orca has no LDAP client, so these are kept and returned only: backup/restore scripts read and
// write them, and a later LDAP sync would act on them.
import { ApiError } from '@orca/api';
import type { Store } from '@orca/store';
import { objectBody, type Directory } from './directory.js';

export interface MemberSyncOpts {
  enableSync: boolean;
  selectGroupMembers: boolean;
  groupDN: string;
  groupMemberAttr: string;
  searchBaseDN: string;
  searchScopeSubtree: boolean;
  searchFilter: string;
}

const DEFAULTS: MemberSyncOpts = {
  enableSync: false,
  selectGroupMembers: false,
  groupDN: '',
  groupMemberAttr: '',
  searchBaseDN: '',
  searchScopeSubtree: false,
  searchFilter: '',
};
const BOOLEANS = ['enableSync', 'selectGroupMembers', 'searchScopeSubtree'] as const;
const STRINGS = ['groupDN', 'groupMemberAttr', 'searchBaseDN', 'searchFilter'] as const;

export const syncConfigKeys = {
  org: (org: string) => `/orca/v1/syncconfig/orgs/${org}`,
  team: (org: string, team: string) => `/orca/v1/syncconfig/teams/${org}/${team}`,
  teams: (org: string) => `/orca/v1/syncconfig/teams/${org}/`,
};

/** Every field is required (the form's `required` list); unknown fields are ignored, as eNZi's forms do. */
export function parseMemberSyncOpts(body: unknown): MemberSyncOpts {
  const form = objectBody(body);
  const opts = { ...DEFAULTS };
  for (const field of BOOLEANS) {
    if (typeof form[field] !== 'boolean')
      throw new ApiError(400, 'INVALID_REQUEST', `${field} must be a boolean`);
    opts[field] = form[field] as boolean;
  }
  for (const field of STRINGS) {
    const value = form[field];
    if (typeof value !== 'string' || value.length > 4096)
      throw new ApiError(400, 'INVALID_REQUEST', `${field} must be a string`);
    opts[field] = value;
  }
  return opts;
}

async function read(store: Store, key: string): Promise<MemberSyncOpts> {
  const kv = await store.get(key);
  return kv ? { ...DEFAULTS, ...(JSON.parse(kv.value) as Partial<MemberSyncOpts>) } : { ...DEFAULTS };
}

export async function orgAdminSyncConfig(store: Store, directory: Directory, orgRef: string) {
  const org = await directory.org(orgRef);
  return read(store, syncConfigKeys.org(org.name));
}

export async function setOrgAdminSyncConfig(
  store: Store,
  directory: Directory,
  orgRef: string,
  body: unknown,
) {
  const opts = parseMemberSyncOpts(body);
  const org = await directory.org(orgRef);
  await store.put(syncConfigKeys.org(org.name), JSON.stringify(opts));
  return opts;
}

export async function teamSyncConfig(store: Store, directory: Directory, orgRef: string, teamRef: string) {
  const { org, team } = await directory.teamRecord(orgRef, teamRef);
  return read(store, syncConfigKeys.team(org.name, team.name));
}

export async function setTeamSyncConfig(
  store: Store,
  directory: Directory,
  orgRef: string,
  teamRef: string,
  body: unknown,
) {
  const opts = parseMemberSyncOpts(body);
  const { org, team } = await directory.teamRecord(orgRef, teamRef);
  await store.put(syncConfigKeys.team(org.name, team.name), JSON.stringify(opts));
  return opts;
}

// The groups an account carries outside UCP (OIDC `groups` claim, Kubernetes X-Remote-Group):
// `<org>:<team>` for each team it is in, as UCP named team subjects for Kubernetes.
import type { Directory } from './directory.js';

export async function teamGroupsOf(directory: Directory, accountId: string): Promise<string[]> {
  const { teamIds, orgIds } = await directory.groupsOf(accountId);
  const orgNames = new Map<string, string>();
  for (const orgId of orgIds) {
    const described = await directory.describe(orgId);
    if (described?.account) orgNames.set(orgId, described.account.name);
  }
  const groups: string[] = [];
  for (const teamId of teamIds) {
    const team = (await directory.describe(teamId))?.team;
    const org = team && orgNames.get(team.orgID);
    if (team && org) groups.push(`${org}:${team.name}`);
  }
  return groups.sort();
}

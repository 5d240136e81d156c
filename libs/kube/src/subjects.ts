// POST /api/authz/resolve-rbac-subjects (UCP 3.1's UCPAuthorization admission plugin): RoleBinding
// subjects written with names become UCP's unique ids: User `<name>` → the account id, Group
// `<org>:<team>` → `team:<org-id>:<team-id>`, Group `<org>` → `org:<org-id>`. Kubernetes' own
// names (system:*), service accounts and names that are already ids pass unchanged.
import { ApiError } from '@orca/api';
import type { Directory } from '@orca/identity';

export interface Subject {
  kind: string;
  apiGroup?: string;
  name: string;
  namespace?: string;
}

const bad = (message: string) => new ApiError(400, 'INVALID_JSON', message);

export function parseSubjects(body: unknown): Subject[] {
  if (!Array.isArray(body)) throw bad('the body must be a JSON array of RBAC subjects');
  return body.map((item, i) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw bad(`subject ${i} is not an object`);
    const s = item as Record<string, unknown>;
    for (const key of ['kind', 'name'] as const)
      if (typeof s[key] !== 'string' || s[key] === '')
        throw bad(`subject ${i}: ${key} must be a non-empty string`);
    for (const key of ['apiGroup', 'namespace'] as const)
      if (s[key] !== undefined && typeof s[key] !== 'string')
        throw bad(`subject ${i}: ${key} must be a string`);
    return s as unknown as Subject;
  });
}

export async function resolveRbacSubjects(
  directory: Directory,
  body: unknown,
): Promise<{ subjects: Subject[]; errors: string[] }> {
  const subjects: Subject[] = [];
  const errors: string[] = [];
  for (const subject of parseSubjects(body)) {
    const { kind, name } = subject;
    if (kind === 'ServiceAccount' || name.startsWith('system:')) {
      subjects.push(subject);
      continue;
    }
    if (kind === 'User') {
      const account = await directory.record(name).catch(() => undefined);
      if (account && !account.isOrg) subjects.push({ ...subject, name: account.id });
      else errors.push(`user "${name}" not found`);
      continue;
    }
    if (kind === 'Group') {
      const [orgName, teamName, extra] = name.split(':');
      const org = await directory.record(orgName).catch(() => undefined);
      if (!org || !org.isOrg || extra !== undefined) {
        errors.push(`group "${name}" does not name an organization or a team`);
        continue;
      }
      if (teamName === undefined) {
        subjects.push({ ...subject, name: `org:${org.id}` });
        continue;
      }
      const team = await directory.teamRecord(org.name, teamName).catch(() => undefined);
      if (team) subjects.push({ ...subject, name: `team:${org.id}:${team.team.id}` });
      else errors.push(`team "${name}" not found`);
      continue;
    }
    errors.push(`subject kind "${kind}" is not User, Group or ServiceAccount`);
  }
  return { subjects, errors };
}

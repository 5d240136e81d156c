// DTR's permission model, decided in one place (permission-levels.md; reference §1.5):
//   - an admin may do everything; a user owns the namespace named after them;
//   - an org's admins administer every repository in it;
//   - teams get read-only, read-write or admin on one repository or on a whole org namespace;
//     levels add up (the highest wins);
//   - everyone, anonymous included, may pull a public repository; private repositories are
//     invisible without at least read access.
// `decideRepositoryAccess` is pure; `RepositoryAccessResolver` gathers its facts from eNZi and
// the registry metadata. libs/rbac's `decide` answers UCP collection grants, a different model.
import type { Directory } from '@orca/identity';
import type { RepositoryName } from './grammar.js';
import type { AccessLevel, RegistryMetadata, RepositoryRecord } from './metadata.js';

export type RepositoryAction = 'pull' | 'push' | 'delete' | '*';

export interface AccessSubject {
  id: string;
  name: string;
  isAdmin: boolean;
}

export interface AccessFacts {
  /** Undefined for an anonymous request. */
  subject?: AccessSubject;
  /** The namespace account; undefined when no such user or org exists. */
  namespace?: { name: string; isOrg: boolean };
  /** Undefined when the repository does not exist (yet). */
  repository?: Pick<RepositoryRecord, 'visibility'>;
  /** The subject is an admin of the org that owns the namespace. */
  isOrgAdmin: boolean;
  /** Levels the subject's teams hold on this repository or its whole namespace. */
  teamLevels: readonly AccessLevel[];
  /** DTR's createRepositoryOnPush setting. */
  createRepositoryOnPush: boolean;
}

export interface AccessDecision {
  level?: AccessLevel;
  /** What a token may carry for this repository. */
  actions: RepositoryAction[];
  reason: string;
}

const RANK: Record<AccessLevel, number> = { 'read-only': 1, 'read-write': 2, admin: 3 };
const ACTIONS: Record<AccessLevel, RepositoryAction[]> = {
  'read-only': ['pull'],
  'read-write': ['pull', 'push', 'delete'],
  admin: ['pull', 'push', 'delete', '*'],
};

export function highestLevel(levels: readonly (AccessLevel | undefined)[]): AccessLevel | undefined {
  let best: AccessLevel | undefined;
  for (const level of levels) if (level && (!best || RANK[level] > RANK[best])) best = level;
  return best;
}

export function levelAllows(level: AccessLevel | undefined, needed: AccessLevel): boolean {
  return level !== undefined && RANK[level] >= RANK[needed];
}

/** THE repository permission decision. */
export function decideRepositoryAccess(facts: AccessFacts): AccessDecision {
  const { subject, namespace, repository } = facts;
  if (!namespace) return { actions: [], reason: 'no such namespace' };
  let level: AccessLevel | undefined;
  let reason = 'no access';
  if (subject?.isAdmin) [level, reason] = ['admin', 'DTR admin'];
  else if (subject && !namespace.isOrg && subject.name === namespace.name)
    [level, reason] = ['admin', 'namespace owner'];
  else if (subject && namespace.isOrg && facts.isOrgAdmin) [level, reason] = ['admin', 'organization admin'];
  else if (subject) {
    level = highestLevel(facts.teamLevels);
    if (level) reason = `team access ${level}`;
  }
  if (!repository) {
    // A repository that does not exist yet: its namespace administrators see a 404 when pulling,
    // and may create it by pushing when createRepositoryOnPush is on (as a private repository).
    if (level !== 'admin') return { actions: [], reason: 'no such repository' };
    return facts.createRepositoryOnPush
      ? { level, actions: ['pull', 'push'], reason: `${reason}, create on push` }
      : { level, actions: ['pull'], reason: `${reason}, repository does not exist` };
  }
  if (repository.visibility === 'public' && !level) [level, reason] = ['read-only', 'public repository'];
  return { level, actions: level ? ACTIONS[level] : [], reason };
}

/** Loads the facts for a decision from eNZi (accounts, orgs, teams) and the registry metadata. */
export class RepositoryAccessResolver {
  constructor(
    private readonly directory: Directory,
    private readonly metadata: RegistryMetadata,
  ) {}

  async namespace(name: string): Promise<{ name: string; isOrg: boolean } | undefined> {
    const record = await this.directory.record(name).catch(() => undefined);
    // record() accepts ids too: only a match by name is this namespace.
    return record && record.name === name ? { name: record.name, isOrg: record.isOrg } : undefined;
  }

  async facts(subject: AccessSubject | undefined, name: RepositoryName): Promise<AccessFacts> {
    const [namespace, repository, settings] = await Promise.all([
      this.namespace(name.namespace),
      this.metadata.repository(name),
      this.metadata.settings(),
    ]);
    let isOrgAdmin = false;
    const teamLevels: AccessLevel[] = [];
    if (subject && namespace?.isOrg && !subject.isAdmin) {
      isOrgAdmin = (await this.directory.membership(namespace.name, subject.name))?.isAdmin ?? false;
      if (!isOrgAdmin) {
        const { teamIds } = await this.directory.groupsOf(subject.id);
        const mine = new Set(teamIds);
        const grants = [
          ...(await this.metadata.namespaceTeamAccess(namespace.name)),
          ...(repository ? await this.metadata.teamAccess(name) : []),
        ];
        for (const grant of grants) if (mine.has(grant.teamId)) teamLevels.push(grant.accessLevel);
      }
    }
    return {
      subject,
      namespace,
      repository,
      isOrgAdmin,
      teamLevels,
      createRepositoryOnPush: settings.createRepositoryOnPush,
    };
  }

  async decide(subject: AccessSubject | undefined, name: RepositoryName): Promise<AccessDecision> {
    return decideRepositoryAccess(await this.facts(subject, name));
  }
}

// THE decision function: every authorization in orca goes through `decide` (pure) or
// `Authorizer.authorize` (which loads grants, collections and roles from the store).
// Semantics (ucp-api.md §2): admins may do everything; a grant on a collection covers its
// descendants; grants add up across the user, their teams and their orgs; everyone has Scheduler
// on /Shared. A user's private collection /Shared/Private/<name> is reached through the grant made
// when the user is created (`[auth] default_new_user_role`), like any other grant.
import type { Store } from '@orca/store';
import { covers, listCollections, type CollectionRecord } from './collections.js';
import { ALL_NAMESPACES, listGrants, type GrantRecord } from './grants.js';
import { builtinRole, operationNames, toOperations, type Operations, type RoleRecord } from './operations.js';
import { listRoles } from './roles.js';

export interface AuthzSubject {
  /** eNZi account id. */
  id: string;
  /** Account name: identifies the private collection /Shared/Private/<name>. */
  name?: string;
  isAdmin: boolean;
  teamIds: readonly string[];
  orgIds: readonly string[];
}

export type AuthzResource = { collectionPath: string } | { namespace: string };

export interface AuthzRequest {
  subject: AuthzSubject;
  operation: string;
  resource: AuthzResource;
}

export interface AuthzDecision {
  allowed: boolean;
  reason: string;
}

/** What the identity side provides: a user's teams and orgs (and, optionally, who an id is). */
export interface SubjectDirectory {
  groupsOf(accountId: string): Promise<{ teamIds: string[]; orgIds: string[] }>;
  describe?(id: string): Promise<{ subject_type: string; account?: unknown; team?: unknown } | undefined>;
}

/** Everything a decision needs, loaded once. Immutable: decide indexes each snapshot object once. */
export interface AuthzSnapshot {
  grants: readonly GrantRecord[];
  collections: readonly CollectionRecord[];
  roles: ReadonlyMap<string, RoleRecord>;
}

const DEFAULT_GRANT = { path: '/Shared', role: 'scheduler' };

function roleOps(snapshot: AuthzSnapshot, roleId: string): Set<string> {
  const role = snapshot.roles.get(roleId) ?? builtinRole(roleId);
  return role ? operationNames(role.operations) : new Set();
}

/** Operations the subject has on the resource, each with the grant that gives it. */
export function operationsOn(
  subject: AuthzSubject,
  resource: AuthzResource,
  snapshot: AuthzSnapshot,
): Map<string, string> {
  const found = new Map<string, string>();
  const add = (roleId: string, why: string) => {
    for (const op of roleOps(snapshot, roleId)) if (!found.has(op)) found.set(op, why);
  };
  const subjects = new Set([subject.id, ...subject.teamIds, ...subject.orgIds]);
  const byId = new Map(snapshot.collections.map((c) => [c.id, c]));
  for (const grant of snapshot.grants) {
    if (!subjects.has(grant.subjectID)) continue;
    const via = `grant ${grant.subjectID}/${grant.objectID}/${grant.roleID}`;
    if ('collectionPath' in resource) {
      if (grant.type !== 'collection') continue;
      const collection = byId.get(grant.objectID);
      if (collection && covers(collection.path, resource.collectionPath)) add(grant.roleID, via);
    } else if (
      (grant.type === 'namespace' && grant.objectID === resource.namespace) ||
      (grant.type === 'grantobject' && grant.objectID === ALL_NAMESPACES)
    ) {
      add(grant.roleID, via);
    }
  }
  if ('collectionPath' in resource) {
    if (covers(DEFAULT_GRANT.path, resource.collectionPath))
      add(DEFAULT_GRANT.role, 'default Scheduler grant on /Shared');
  }
  return found;
}

/** A grant as the index keeps it: its place in snapshot.grants, and the collection path it covers. */
interface IndexedGrant {
  order: number;
  grant: GrantRecord;
  /** Collection grants: the path (undefined when the collection is gone) and the path + '/'. */
  path?: string;
  pathPrefix?: string;
}

/** What decide needs from a snapshot, built once per snapshot object (snapshots are immutable). */
interface SnapshotIndex {
  bySubject: Map<string, IndexedGrant[]>;
  roleOps: Map<string, ReadonlySet<string>>;
}

const INDEXES = new WeakMap<AuthzSnapshot, SnapshotIndex>();

function indexOf(snapshot: AuthzSnapshot): SnapshotIndex {
  let index = INDEXES.get(snapshot);
  if (index) return index;
  const paths = new Map(snapshot.collections.map((c) => [c.id, c.path]));
  const bySubject = new Map<string, IndexedGrant[]>();
  snapshot.grants.forEach((grant, order) => {
    const path = grant.type === 'collection' ? paths.get(grant.objectID) : undefined;
    const entry: IndexedGrant = {
      order,
      grant,
      path,
      pathPrefix: path === undefined ? undefined : `${path}/`,
    };
    const list = bySubject.get(grant.subjectID);
    if (list) list.push(entry);
    else bySubject.set(grant.subjectID, [entry]);
  });
  index = { bySubject, roleOps: new Map() };
  INDEXES.set(snapshot, index);
  return index;
}

function roleHas(snapshot: AuthzSnapshot, index: SnapshotIndex, roleId: string, operation: string): boolean {
  let ops = index.roleOps.get(roleId);
  if (!ops) {
    ops = roleOps(snapshot, roleId);
    index.roleOps.set(roleId, ops);
  }
  return ops.has(operation);
}

/** Whether one indexed grant gives `operation` on the resource (the same test operationsOn makes). */
function grantGives(
  snapshot: AuthzSnapshot,
  index: SnapshotIndex,
  entry: IndexedGrant,
  operation: string,
  resource: AuthzResource,
): boolean {
  const { grant } = entry;
  if ('collectionPath' in resource) {
    if (grant.type !== 'collection' || entry.path === undefined) return false;
    const path = resource.collectionPath;
    // covers(entry.path, path) without building strings.
    if (entry.path !== '/' && path !== entry.path && !path.startsWith(entry.pathPrefix as string))
      return false;
  } else if (!(
    (grant.type === 'namespace' && grant.objectID === resource.namespace) ||
    (grant.type === 'grantobject' && grant.objectID === ALL_NAMESPACES)
  )) {
    return false;
  }
  return roleHas(snapshot, index, grant.roleID, operation);
}

/** The earliest grant (in snapshot order) of one list that gives the operation, or `best` if earlier. */
function firstGiving(
  snapshot: AuthzSnapshot,
  index: SnapshotIndex,
  grants: readonly IndexedGrant[] | undefined,
  best: IndexedGrant | undefined,
  operation: string,
  resource: AuthzResource,
): IndexedGrant | undefined {
  if (!grants) return best;
  for (const entry of grants) {
    if (best && entry.order >= best.order) return best; // each list is in snapshot order
    if (grantGives(snapshot, index, entry, operation, resource)) return entry;
  }
  return best;
}

/**
 * THE decision. Same answers (and reasons) as looking `operation` up in operationsOn: the first grant
 * in snapshot order that gives it, else the default /Shared grant. Only the subject's own grants are visited, through an index built once per snapshot.
 */
export function decide(request: AuthzRequest, snapshot: AuthzSnapshot): AuthzDecision {
  const { subject, operation, resource } = request;
  if (subject.isAdmin) return { allowed: true, reason: 'administrator' };
  const index = indexOf(snapshot);
  // No closures or arrays per call: walk the subject's, then each team's and org's grant lists.
  let best = firstGiving(snapshot, index, index.bySubject.get(subject.id), undefined, operation, resource);
  for (const id of subject.teamIds)
    best = firstGiving(snapshot, index, index.bySubject.get(id), best, operation, resource);
  for (const id of subject.orgIds)
    best = firstGiving(snapshot, index, index.bySubject.get(id), best, operation, resource);
  const where =
    'collectionPath' in resource
      ? `collection ${resource.collectionPath}`
      : `namespace ${resource.namespace}`;
  let via: string | undefined;
  if (best) via = `grant ${best.grant.subjectID}/${best.grant.objectID}/${best.grant.roleID}`;
  else if ('collectionPath' in resource) {
    if (
      covers(DEFAULT_GRANT.path, resource.collectionPath) &&
      roleHas(snapshot, index, DEFAULT_GRANT.role, operation)
    )
      via = 'default Scheduler grant on /Shared';
  }
  return via
    ? { allowed: true, reason: `${operation} on ${where} by ${via}` }
    : { allowed: false, reason: `no grant gives ${operation} on ${where}` };
}

/** The store-backed decision point, plus the list filters built on it. */
export class Authorizer {
  constructor(
    private readonly store: Store,
    private readonly directory?: SubjectDirectory,
  ) {}

  /** A subject for an account, with its teams and orgs from the directory. */
  async subjectFor(account: { id: string; name?: string; isAdmin: boolean }): Promise<AuthzSubject> {
    const groups = (await this.directory?.groupsOf(account.id)) ?? { teamIds: [], orgIds: [] };
    return { ...account, teamIds: groups.teamIds, orgIds: groups.orgIds };
  }

  async snapshot(subject?: AuthzSubject): Promise<AuthzSnapshot> {
    const ids = subject ? [subject.id, ...subject.teamIds, ...subject.orgIds] : undefined;
    const [grants, collections, roles] = await Promise.all([
      listGrants(this.store, ids),
      listCollections(this.store),
      listRoles(this.store),
    ]);
    return { grants, collections, roles: new Map(roles.map((r) => [r.id, r])) };
  }

  async authorize(request: AuthzRequest): Promise<AuthzDecision> {
    if (request.subject.isAdmin) return { allowed: true, reason: 'administrator' };
    return decide(request, await this.snapshot(request.subject));
  }

  /** Collections on which the subject may do anything at all (admins: all). */
  async viewableCollections(subject: AuthzSubject): Promise<CollectionRecord[]> {
    const snapshot = await this.snapshot(subject);
    if (subject.isAdmin) return [...snapshot.collections];
    return snapshot.collections.filter(
      (c) => operationsOn(subject, { collectionPath: c.path }, snapshot).size > 0,
    );
  }

  /** The effective role on one collection, as role.Role operations. */
  async effectiveOperations(subject: AuthzSubject, collectionId: string): Promise<Operations> {
    const snapshot = await this.snapshot(subject);
    const collection = snapshot.collections.find((c) => c.id === collectionId);
    if (!collection) return {};
    if (subject.isAdmin) return builtinRole('fullcontrol')?.operations ?? {};
    return toOperations(operationsOn(subject, { collectionPath: collection.path }, snapshot).keys());
  }

  /** Every operation the subject has on at least one collection (GET /totalRole). */
  async totalOperations(subject: AuthzSubject): Promise<Operations> {
    const snapshot = await this.snapshot(subject);
    if (subject.isAdmin) return builtinRole('fullcontrol')?.operations ?? {};
    const ops = new Set<string>();
    for (const c of snapshot.collections) {
      for (const op of operationsOn(subject, { collectionPath: c.path }, snapshot).keys()) ops.add(op);
    }
    for (const g of snapshot.grants) {
      if (g.type !== 'collection') {
        const resource = g.type === 'namespace' ? { namespace: g.objectID } : { namespace: '*' };
        for (const op of operationsOn(subject, resource, snapshot).keys()) ops.add(op);
      }
    }
    return toOperations(ops);
  }
}

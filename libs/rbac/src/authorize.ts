// THE decision function: every authorization in orca goes through `decide` (pure) or
// `Authorizer.authorize` (grants, collections and roles from a watched copy of the store).
// Semantics (ucp-api.md §2): admins may do everything; a grant on a collection covers its
// descendants; grants add up across the user, their teams and their orgs; everyone has Scheduler
// on /Shared. A user's private collection /Shared/Private/<name> is reached through the grant made
// when the user is created (`[auth] default_new_user_role`), like any other grant.
import { PrefixMirror, type MirrorLog, type Store } from '@orca/store';
import { BUILTIN_COLLECTIONS, covers, type CollectionRecord } from './collections.js';
import { ALL_NAMESPACES, type GrantRecord } from './grants.js';
import { rbacKeys } from './keys.js';
import {
  BUILTIN_ROLES,
  builtinRole,
  operationNames,
  toOperations,
  type Operations,
  type RoleRecord,
} from './operations.js';

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

/** A grant as the index keeps it, with the collection path it covers. */
interface IndexedGrant {
  grant: GrantRecord;
  via: string;
  /** Collection grants: the path (undefined when the collection is gone) and the path + '/'. */
  path?: string;
  pathPrefix?: string;
}

/** What decisions need from a snapshot, built once per snapshot object (snapshots are immutable). */
interface SnapshotIndex {
  /** Each subject's grants, in snapshot order. */
  bySubject: Map<string, IndexedGrant[]>;
  roleOps: Map<string, ReadonlySet<string>>;
}

const INDEXES = new WeakMap<AuthzSnapshot, SnapshotIndex>();

function indexOf(snapshot: AuthzSnapshot): SnapshotIndex {
  let index = INDEXES.get(snapshot);
  if (index) return index;
  const paths = new Map(snapshot.collections.map((c) => [c.id, c.path]));
  const bySubject = new Map<string, IndexedGrant[]>();
  for (const grant of snapshot.grants) {
    const path = grant.type === 'collection' ? paths.get(grant.objectID) : undefined;
    const entry: IndexedGrant = {
      grant,
      via: `grant ${grant.subjectID}/${grant.objectID}/${grant.roleID}`,
      path,
      pathPrefix: path === undefined ? undefined : `${path}/`,
    };
    const list = bySubject.get(grant.subjectID);
    if (list) list.push(entry);
    else bySubject.set(grant.subjectID, [entry]);
  }
  index = { bySubject, roleOps: new Map() };
  INDEXES.set(snapshot, index);
  return index;
}

function opsOf(snapshot: AuthzSnapshot, index: SnapshotIndex, roleId: string): ReadonlySet<string> {
  let ops = index.roleOps.get(roleId);
  if (!ops) {
    ops = roleOps(snapshot, roleId);
    index.roleOps.set(roleId, ops);
  }
  return ops;
}

/** Whether one indexed grant is on the resource (a collection grant covers descendants). */
function grantCovers(entry: IndexedGrant, resource: AuthzResource): boolean {
  const { grant } = entry;
  if ('collectionPath' in resource) {
    if (grant.type !== 'collection' || entry.path === undefined) return false;
    const path = resource.collectionPath;
    // covers(entry.path, path) without building strings.
    return entry.path === '/' || path === entry.path || path.startsWith(entry.pathPrefix as string);
  }
  return (
    (grant.type === 'namespace' && grant.objectID === resource.namespace) ||
    (grant.type === 'grantobject' && grant.objectID === ALL_NAMESPACES)
  );
}

/**
 * The grant lists that count for a subject, in precedence order: the subject's own grants, then
 * each team's, then each org's (each in snapshot order). Reasons name the first grant found so.
 */
function* grantListsOf(subject: AuthzSubject, index: SnapshotIndex): Generator<readonly IndexedGrant[]> {
  const seen = new Set<string>();
  for (const id of [subject.id, ...subject.teamIds, ...subject.orgIds]) {
    if (seen.has(id)) continue;
    seen.add(id);
    const list = index.bySubject.get(id);
    if (list) yield list;
  }
}

/** The subject's grants (own, teams', orgs'), in precedence order. */
export function grantsOf(subject: AuthzSubject, snapshot: AuthzSnapshot): GrantRecord[] {
  const grants: GrantRecord[] = [];
  for (const list of grantListsOf(subject, indexOf(snapshot))) for (const e of list) grants.push(e.grant);
  return grants;
}

/** Operations the subject has on the resource, each with the (first) grant that gives it. */
export function operationsOn(
  subject: AuthzSubject,
  resource: AuthzResource,
  snapshot: AuthzSnapshot,
): Map<string, string> {
  const index = indexOf(snapshot);
  const found = new Map<string, string>();
  const add = (roleId: string, why: string) => {
    for (const op of opsOf(snapshot, index, roleId)) if (!found.has(op)) found.set(op, why);
  };
  for (const list of grantListsOf(subject, index))
    for (const entry of list) if (grantCovers(entry, resource)) add(entry.grant.roleID, entry.via);
  if ('collectionPath' in resource) {
    if (covers(DEFAULT_GRANT.path, resource.collectionPath))
      add(DEFAULT_GRANT.role, 'default Scheduler grant on /Shared');
  }
  return found;
}

/** The first grant of one list that gives the operation on the resource. */
function firstGiving(
  snapshot: AuthzSnapshot,
  index: SnapshotIndex,
  grants: readonly IndexedGrant[] | undefined,
  operation: string,
  resource: AuthzResource,
): IndexedGrant | undefined {
  if (!grants) return undefined;
  for (const entry of grants)
    if (grantCovers(entry, resource) && opsOf(snapshot, index, entry.grant.roleID).has(operation))
      return entry;
  return undefined;
}

/**
 * THE decision. Same answers (and reasons) as looking `operation` up in operationsOn: the first
 * grant in precedence order (own, teams', orgs') that gives it, else the default /Shared grant.
 * Only the subject's own grants are visited, through an index built once per snapshot.
 */
export function decide(request: AuthzRequest, snapshot: AuthzSnapshot): AuthzDecision {
  const { subject, operation, resource } = request;
  if (subject.isAdmin) return { allowed: true, reason: 'administrator' };
  const index = indexOf(snapshot);
  // No closures or arrays per call: the subject's list, then each team's and org's.
  let best = firstGiving(snapshot, index, index.bySubject.get(subject.id), operation, resource);
  for (let i = 0; !best && i < subject.teamIds.length; i++)
    best = firstGiving(snapshot, index, index.bySubject.get(subject.teamIds[i]), operation, resource);
  for (let i = 0; !best && i < subject.orgIds.length; i++)
    best = firstGiving(snapshot, index, index.bySubject.get(subject.orgIds[i]), operation, resource);
  const where =
    'collectionPath' in resource
      ? `collection ${resource.collectionPath}`
      : `namespace ${resource.namespace}`;
  let via: string | undefined = best?.via;
  if (!via && 'collectionPath' in resource) {
    if (
      covers(DEFAULT_GRANT.path, resource.collectionPath) &&
      opsOf(snapshot, index, DEFAULT_GRANT.role).has(operation)
    )
      via = 'default Scheduler grant on /Shared';
  }
  return via
    ? { allowed: true, reason: `${operation} on ${where} by ${via}` }
    : { allowed: false, reason: `no grant gives ${operation} on ${where}` };
}

/** Where everything a snapshot holds lives in the store (roles, collections, grants). */
export const RBAC_PREFIX = rbacKeys.prefix;

type RbacEntry =
  | { kind: 'grant'; record: GrantRecord }
  | { kind: 'collection'; record: CollectionRecord }
  | { kind: 'role'; record: RoleRecord };

function decodeRbac(key: string, value: string): RbacEntry | undefined {
  if (key.startsWith(rbacKeys.grants)) return { kind: 'grant', record: JSON.parse(value) as GrantRecord };
  if (key.startsWith(rbacKeys.collections))
    return { kind: 'collection', record: JSON.parse(value) as CollectionRecord };
  if (key.startsWith(rbacKeys.roles)) return { kind: 'role', record: JSON.parse(value) as RoleRecord };
  return undefined; // path index, default collections: not part of decisions
}

/** The snapshot of the watched copy, in the order the store lists keys (as listGrants etc. give). */
function buildSnapshot(entries: ReadonlyMap<string, RbacEntry>): AuthzSnapshot {
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const grants: GrantRecord[] = [];
  const collections: CollectionRecord[] = [...BUILTIN_COLLECTIONS];
  const roles = new Map<string, RoleRecord>(BUILTIN_ROLES.map((r) => [r.id, r]));
  for (const [, entry] of sorted) {
    if (entry.kind === 'grant') grants.push(entry.record);
    else if (entry.kind === 'collection') collections.push(entry.record);
    else roles.set(entry.record.id, entry.record);
  }
  return { grants, collections, roles };
}

/**
 * The store-backed decision point, plus the list filters built on it. Grants, collections and roles
 * are served from an in-memory copy kept current by a store watch (see PrefixMirror): a write made
 * through libs/rbac in this process is visible to the next decision; other controllers' writes as
 * soon as their watch event arrives.
 */
export class Authorizer {
  private mirror?: PrefixMirror<RbacEntry>;
  private built?: { generation: number; snapshot: AuthzSnapshot };

  constructor(
    private readonly store: Store,
    private readonly directory?: SubjectDirectory,
    private readonly log?: MirrorLog,
  ) {}

  /** A subject for an account, with its teams and orgs from the directory. */
  async subjectFor(account: { id: string; name?: string; isAdmin: boolean }): Promise<AuthzSubject> {
    const groups = (await this.directory?.groupsOf(account.id)) ?? { teamIds: [], orgIds: [] };
    return { ...account, teamIds: groups.teamIds, orgIds: groups.orgIds };
  }

  /**
   * Everything decisions need (immutable; shared by all callers until the next change). The
   * subject is accepted for callers that name one; the snapshot holds every subject's grants and
   * decide/operationsOn visit only the subject's.
   */
  async snapshot(_subject?: AuthzSubject): Promise<AuthzSnapshot> {
    const mirror = (this.mirror ??= new PrefixMirror(this.store, RBAC_PREFIX, decodeRbac, this.log));
    await mirror.sync(); // waits for this process's own last RBAC write
    if (this.built?.generation !== mirror.generation)
      this.built = { generation: mirror.generation, snapshot: buildSnapshot(mirror.entries()) };
    return this.built.snapshot;
  }

  /** Stops the watch (the next snapshot() starts a new one). */
  async close(): Promise<void> {
    const mirror = this.mirror;
    this.mirror = undefined;
    this.built = undefined;
    await mirror?.close();
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
    for (const g of grantsOf(subject, snapshot)) {
      if (g.type !== 'collection') {
        const resource = g.type === 'namespace' ? { namespace: g.objectID } : { namespace: '*' };
        for (const op of operationsOn(subject, resource, snapshot).keys()) ops.add(op);
      }
    }
    return toOperations(ops);
  }
}

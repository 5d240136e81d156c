// UCP 3.1 mode: grants on namespaces become Kubernetes RBAC. A level-triggered reconcile (run by
// the leader) computes what should exist from the store and makes the apiserver match:
// - every role used by a Kubernetes grant → ClusterRole `ucp:role:<roleId>` (rules from its
//   `Kubernetes <Resource> <Verb>` operations);
// - a grant on a namespace → RoleBinding there; a grant on all namespaces → ClusterRoleBinding;
// - subjects: users by account name (what the front door sends as X-Remote-User), teams as the
//   group `<org>:<team>`, orgs expanded to their members, service accounts as ServiceAccounts.
// Objects carry the label orca.docker.com/managed=true; managed objects nobody wants are deleted,
// changed ones are put back (a changed roleRef is immutable: delete and create).
import { createHash } from 'node:crypto';
import { keys as identityKeys, type Directory } from '@orca/identity';
import {
  ALL_NAMESPACES,
  builtinRole,
  listGrants,
  listRoles,
  operationNames,
  type RoleRecord,
} from '@orca/rbac';
import type { Store } from '@orca/store';
import { KUBE_RESOURCE_NAMES, SERVICE_ACCOUNT_PREFIX } from './authorization.js';
import type { KubeUpstream } from './upstream.js';

export const MANAGED_LABEL = 'orca.docker.com/managed';
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

const API_GROUPS: Readonly<Record<string, string>> = {
  deployments: 'apps',
  replicasets: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  jobs: 'batch',
  cronjobs: 'batch',
  ingresses: 'networking.k8s.io',
  roles: 'rbac.authorization.k8s.io',
  rolebindings: 'rbac.authorization.k8s.io',
  clusterroles: 'rbac.authorization.k8s.io',
  clusterrolebindings: 'rbac.authorization.k8s.io',
};

/** Subresources that come with an operation, as the webhook maps them the other way. */
const SUBRESOURCES: Readonly<Record<string, Record<string, string[]>>> = {
  pods: { get: ['pods/log', 'pods/status'], create: ['pods/exec', 'pods/attach', 'pods/portforward'] },
  deployments: {
    get: ['deployments/scale', 'deployments/status'],
    update: ['deployments/scale'],
    patch: ['deployments/scale'],
  },
};

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** The RBAC rules a UCP role's Kubernetes operations amount to (sorted, one rule per resource). */
export function rulesFor(role: RoleRecord): PolicyRule[] {
  const plural = new Map(Object.entries(KUBE_RESOURCE_NAMES).map(([p, name]) => [name, p]));
  const verbsByResource = new Map<string, Set<string>>();
  for (const op of operationNames(role.operations)) {
    const match = /^Kubernetes (.+) (Get|List|Watch|Create|Update|Patch|Delete)$/.exec(op);
    const resource = match && plural.get(match[1]);
    if (!match || !resource) continue;
    const verb = match[2].toLowerCase();
    const add = (r: string, v: string) => {
      let set = verbsByResource.get(r);
      if (!set) verbsByResource.set(r, (set = new Set()));
      set.add(v);
    };
    add(resource, verb);
    if (verb === 'delete') add(resource, 'deletecollection');
    for (const sub of SUBRESOURCES[resource]?.[verb] ?? []) {
      add(sub, verb);
      // WebSocket exec/attach/port-forward arrive as GET.
      if (verb === 'create') add(sub, 'get');
    }
  }
  return [...verbsByResource.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([resource, verbs]) => ({
      apiGroups: [API_GROUPS[resource.split('/')[0]] ?? ''],
      resources: [resource],
      verbs: [...verbs].sort(),
    }));
}

export interface RbacSubject {
  kind: 'User' | 'Group' | 'ServiceAccount';
  apiGroup?: string;
  name: string;
  namespace?: string;
}

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  rules?: PolicyRule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: RbacSubject[];
}

const short = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);
const labels = { [MANAGED_LABEL]: 'true' };
export const roleName = (roleId: string) => `ucp:role:${roleId}`;

/** The grant subjects as RBAC subjects (empty when the subject no longer exists). */
async function subjectsOf(store: Store, directory: Directory, subjectId: string): Promise<RbacSubject[]> {
  if (subjectId.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    const [namespace, name] = subjectId.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
    return namespace && name ? [{ kind: 'ServiceAccount', name, namespace }] : [];
  }
  const rbacGroup = 'rbac.authorization.k8s.io';
  const described = await directory.describe(subjectId);
  if (described?.subject_type === 'user' && described.account)
    return [{ kind: 'User', apiGroup: rbacGroup, name: described.account.name }];
  if (described?.subject_type === 'team' && described.team) {
    const org = await directory.record(described.team.orgID).catch(() => undefined);
    return org ? [{ kind: 'Group', apiGroup: rbacGroup, name: `${org.name}:${described.team.name}` }] : [];
  }
  if (described?.subject_type === 'org' && described.account) {
    const prefix = identityKeys.orgMembers(described.account.name);
    const { kvs } = await store.range(prefix, { keysOnly: true });
    return kvs
      .map((kv) => kv.key.slice(prefix.length))
      .sort()
      .map((name) => ({ kind: 'User' as const, apiGroup: rbacGroup, name }));
  }
  return [];
}

/** Everything the grants say should exist in the apiserver. */
export async function desiredRbac(store: Store, directory: Directory): Promise<KubeObject[]> {
  const grants = (await listGrants(store)).filter(
    (g) => g.type === 'namespace' || (g.type === 'grantobject' && g.objectID === ALL_NAMESPACES),
  );
  const custom = new Map((await listRoles(store)).map((r) => [r.id, r]));
  const objects: KubeObject[] = [];
  const rolesUsed = new Set<string>();
  for (const grant of grants) {
    const role = custom.get(grant.roleID) ?? builtinRole(grant.roleID);
    if (!role) continue;
    const subjects = await subjectsOf(store, directory, grant.subjectID);
    if (subjects.length === 0) continue;
    rolesUsed.add(role.id);
    const name = `ucp:grant:${short(`${grant.subjectID}/${grant.roleID}`)}`;
    const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName(role.id) };
    objects.push(
      grant.type === 'namespace'
        ? {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name, namespace: grant.objectID, labels },
            roleRef,
            subjects,
          }
        : {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRoleBinding',
            metadata: { name, labels },
            roleRef,
            subjects,
          },
    );
  }
  for (const id of rolesUsed) {
    const role = custom.get(id) ?? builtinRole(id);
    if (!role) continue;
    objects.push({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: roleName(id), labels },
      rules: rulesFor(role),
    });
  }
  return objects;
}

const pathOf = (kind: string, name?: string, namespace?: string): string => {
  const plural = {
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
    RoleBinding: 'rolebindings',
  }[kind];
  const base = namespace ? `${RBAC}/namespaces/${namespace}/${plural}` : `${RBAC}/${plural}`;
  return name ? `${base}/${encodeURIComponent(name)}` : base;
};

const keyOf = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
/** JSON with object keys sorted: the apiserver writes fields in its own order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
const sameContent = (a: KubeObject, b: KubeObject) =>
  canonical([a.rules ?? null, a.roleRef ?? null, a.subjects ?? null]) ===
  canonical([b.rules ?? null, b.roleRef ?? null, b.subjects ?? null]);

export interface SyncResult {
  created: number;
  updated: number;
  deleted: number;
  /** Objects that could not be written this pass (e.g. the namespace does not exist yet). */
  pending: number;
}

/** One reconcile pass: make the apiserver's managed RBAC objects match the grants. */
export async function syncRbac(
  upstream: KubeUpstream,
  store: Store,
  directory: Directory,
): Promise<SyncResult> {
  const desired = await desiredRbac(store, directory);
  const existing: KubeObject[] = [];
  for (const [kind, listPath] of [
    ['ClusterRole', pathOf('ClusterRole')],
    ['ClusterRoleBinding', pathOf('ClusterRoleBinding')],
    ['RoleBinding', `${RBAC}/rolebindings`],
  ] as const) {
    const reply = await upstream.request(
      'GET',
      `${listPath}?labelSelector=${encodeURIComponent(`${MANAGED_LABEL}=true`)}`,
    );
    if (reply.status !== 200) throw new Error(`listing ${kind}s answered ${reply.status}`);
    for (const item of (JSON.parse(reply.body) as { items: KubeObject[] }).items)
      existing.push({ ...item, kind });
  }
  const have = new Map(existing.map((o) => [keyOf(o), o]));
  const want = new Map(desired.map((o) => [keyOf(o), o]));
  const result: SyncResult = { created: 0, updated: 0, deleted: 0, pending: 0 };
  const remove = async (o: KubeObject) => {
    const reply = await upstream.request('DELETE', pathOf(o.kind, o.metadata.name, o.metadata.namespace));
    if (reply.status !== 200 && reply.status !== 404)
      throw new Error(`deleting ${keyOf(o)} answered ${reply.status}`);
  };
  // Roles first, so bindings never point at a missing role; bindings go before their roles.
  const order = (o: KubeObject) => (o.kind === 'ClusterRole' ? 0 : 1);
  for (const o of [...want.values()].sort((a, b) => order(a) - order(b))) {
    const current = have.get(keyOf(o));
    if (current && sameContent(current, o)) continue;
    if (current && canonical(current.roleRef ?? null) !== canonical(o.roleRef ?? null)) {
      await remove(current);
    } else if (current) {
      const reply = await upstream.request('PUT', pathOf(o.kind, o.metadata.name, o.metadata.namespace), {
        ...o,
        metadata: { ...o.metadata, resourceVersion: current.metadata.resourceVersion },
      });
      if (reply.status === 200) result.updated++;
      else result.pending++;
      continue;
    }
    const reply = await upstream.request('POST', pathOf(o.kind, undefined, o.metadata.namespace), o);
    if (reply.status === 201) result.created++;
    else result.pending++;
  }
  for (const o of [...have.values()].sort((a, b) => order(b) - order(a))) {
    if (want.has(keyOf(o))) continue;
    await remove(o);
    result.deleted++;
  }
  return result;
}

// The authorization webhook: answers the apiserver's SubjectAccessReviews (authorization.k8s.io/v1)
// from UCP grants through libs/rbac's one decision function. A verb on a resource in a namespace
// becomes the operation `Kubernetes <Resource> <Verb>` on `{namespace}`; cluster-scoped requests
// and lists across all namespaces need a grant on all namespaces (`kubernetesnamespaces`).
// Kubernetes' own components never get here: the apiserver runs Node,RBAC,Webhook, so bootstrap
// RBAC answers for them first, and this webhook only has to speak for orca's users.
import { watchedAccounts } from '@orca/identity';
import { KUBE_VERBS, type Authorizer, type AuthzSubject } from '@orca/rbac';
import type { Store } from '@orca/store';

/** resource (plural, as the apiserver names it) → UCP's Kubernetes resource name. */
export const KUBE_RESOURCE_NAMES: Readonly<Record<string, string>> = {
  pods: 'Pod',
  nodes: 'Node',
  namespaces: 'Namespace',
  services: 'Service',
  deployments: 'Deployment',
  configmaps: 'Config Map',
  secrets: 'Secret',
  persistentvolumeclaims: 'Persistent Volume Claim',
  roles: 'Role',
  rolebindings: 'Role Binding',
  clusterroles: 'Cluster Role',
  clusterrolebindings: 'Cluster Role Binding',
  replicasets: 'Replica Set',
  statefulsets: 'Stateful Set',
  daemonsets: 'Daemon Set',
  jobs: 'Job',
  cronjobs: 'Cron Job',
  serviceaccounts: 'Service Account',
  events: 'Event',
  endpoints: 'Endpoints',
  ingresses: 'Ingress',
};

/** Cluster-scoped resources: the namespace a client names (kubectl auth can-i does) is ignored. */
const CLUSTER_SCOPED = new Set(['nodes', 'clusterroles', 'clusterrolebindings']);

const VERBS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(KUBE_VERBS.map((v) => [v.toLowerCase(), v])),
  deletecollection: 'Delete',
};

export interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

/**
 * The UCP operation and namespace a request needs, or undefined when no UCP operation covers it
 * (unknown resources, escalate/bind/impersonate): then only administrators may. Subresources take
 * their resource's operation (`pods/log` get → Kubernetes Pod Get, `pods/exec` create → Pod Create).
 */
export function operationFor(
  attrs: ResourceAttributes,
): { operation: string; namespace: string } | undefined {
  const resource = KUBE_RESOURCE_NAMES[attrs.resource ?? ''];
  const verb = VERBS[attrs.verb ?? ''];
  if (!resource || !verb) return undefined;
  // A namespace object is its own namespace; cluster-scoped and all-namespaces requests get ''.
  const namespace =
    attrs.resource === 'namespaces'
      ? (attrs.name ?? '')
      : CLUSTER_SCOPED.has(attrs.resource ?? '')
        ? ''
        : (attrs.namespace ?? '');
  return { operation: `Kubernetes ${resource} ${verb}`, namespace };
}

export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

export interface ReviewSubject {
  subject: AuthzSubject;
  name: string;
}

/** The UCP subject a Kubernetes user name stands for (undefined: not one of orca's subjects). */
export async function subjectOf(
  store: Store,
  /** Unused since accounts come from the watched copy; kept so callers need not change. */
  _authorizer: Authorizer,
  user: string,
): Promise<AuthzSubject | undefined> {
  if (user.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    // Service accounts are grant subjects under their full name, with no teams.
    return { id: user, isAdmin: false, teamIds: [], orgIds: [] };
  }
  if (user.startsWith('system:') || user === '') return undefined;
  // Accounts and memberships from the watched copy: this runs for every request the apiserver makes.
  const accounts = watchedAccounts(store);
  const account = await accounts.byName(user);
  if (!account || account.isOrg || !account.isActive) return undefined;
  const { teamIds, orgIds } = await accounts.groupsOf(account.id);
  return { id: account.id, name: account.name, isAdmin: account.isAdmin, teamIds, orgIds };
}

export class ReviewError extends Error {}

interface SubjectAccessReview {
  apiVersion: string;
  kind: string;
  spec: {
    user?: string;
    groups?: string[];
    resourceAttributes?: ResourceAttributes;
    nonResourceAttributes?: { path?: string; verb?: string };
  };
}

function parseReview(body: unknown): SubjectAccessReview {
  const review = body as Partial<SubjectAccessReview> | null;
  if (!review || typeof review !== 'object' || Array.isArray(review))
    throw new ReviewError('the body is not a SubjectAccessReview object');
  if (
    review.kind !== 'SubjectAccessReview' ||
    !/^authorization\.k8s\.io\/v1(beta1)?$/.test(String(review.apiVersion))
  )
    throw new ReviewError('expected kind SubjectAccessReview, apiVersion authorization.k8s.io/v1');
  const spec = review.spec;
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new ReviewError('spec is missing');
  if (typeof spec.user !== 'string') throw new ReviewError('spec.user must be a string');
  const attrs = spec.resourceAttributes;
  if (attrs !== undefined) {
    if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs))
      throw new ReviewError('spec.resourceAttributes must be an object');
    for (const key of ['namespace', 'verb', 'group', 'resource', 'subresource', 'name'] as const) {
      if (attrs[key] !== undefined && typeof attrs[key] !== 'string')
        throw new ReviewError(`spec.resourceAttributes.${key} must be a string`);
    }
  }
  return review as SubjectAccessReview;
}

export interface AccessDecision {
  allowed: boolean;
  reason: string;
}

export class KubeAccessReviewer {
  constructor(
    private readonly store: Store,
    private readonly authorizer: Authorizer,
    /** `rbac` (UCP 3.1): grants are RoleBindings, so the webhook only speaks for administrators. */
    private readonly mode: 'webhook' | 'rbac' = 'webhook',
  ) {}

  async decide(user: string, attrs: ResourceAttributes | undefined): Promise<AccessDecision> {
    const subject = await subjectOf(this.store, this.authorizer, user);
    if (!subject) return { allowed: false, reason: `${user || 'anonymous'} is not a UCP subject` };
    if (subject.isAdmin) return { allowed: true, reason: 'administrator' };
    if (this.mode === 'rbac')
      return { allowed: false, reason: 'UCP grants are Kubernetes RoleBindings here' };
    if (!attrs) return { allowed: false, reason: 'no UCP operation covers non-resource URLs' };
    const needed = operationFor(attrs);
    if (!needed) return { allowed: false, reason: `no UCP operation covers ${attrs.verb} ${attrs.resource}` };
    return this.authorizer.authorize({
      subject,
      operation: needed.operation,
      resource: { namespace: needed.namespace },
    });
  }

  /** The reply to one review; throws ReviewError (→ 400) for a malformed one. */
  async review(body: unknown): Promise<Record<string, unknown>> {
    const review = parseReview(body);
    const decision = await this.decide(review.spec.user ?? '', review.spec.resourceAttributes);
    return {
      apiVersion: review.apiVersion,
      kind: 'SubjectAccessReview',
      // Not allowed = no opinion: with Node,RBAC,Webhook the apiserver then refuses.
      status: { allowed: decision.allowed, reason: decision.reason },
    };
  }
}

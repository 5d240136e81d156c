// GET /kubernetesNamespaces: the namespaces a user has a grant for (v1.NamespaceList), read from
// the apiserver with orca's admin certificate and filtered through the UCP grants.
import { ApiError } from '@orca/api';
import { operationsOn, type Authorizer, type AuthzSubject } from '@orca/rbac';
import type { KubeUpstream } from './upstream.js';

interface NamespaceList {
  kind?: string;
  apiVersion?: string;
  metadata?: Record<string, unknown>;
  items?: { metadata?: { name?: string } }[];
}

export async function namespacesWithGrants(
  upstream: KubeUpstream,
  authorizer: Authorizer,
  subject: AuthzSubject,
): Promise<NamespaceList> {
  let reply;
  try {
    reply = await upstream.request('GET', '/api/v1/namespaces');
  } catch (error) {
    throw new ApiError(
      503,
      'KUBERNETES_UNAVAILABLE',
      `the Kubernetes API server did not answer: ${(error as Error).message}`,
    );
  }
  if (reply.status !== 200)
    throw new ApiError(503, 'KUBERNETES_UNAVAILABLE', `the Kubernetes API server answered ${reply.status}`);
  const list = JSON.parse(reply.body) as NamespaceList;
  const items = list.items ?? [];
  if (subject.isAdmin) return { ...list, items };
  const snapshot = await authorizer.snapshot(subject);
  return {
    ...list,
    items: items.filter(
      (ns) => operationsOn(subject, { namespace: ns.metadata?.name ?? '' }, snapshot).size > 0,
    ),
  };
}

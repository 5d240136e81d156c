// The internal controller endpoints UCP's admission plugins call (ucp-api.md §4.2), answered from
// orca's accounts, grants and UCP configuration: `isadmin` (UCPAuthorization 3.0,
// UCPAdminServiceAccount), `isfullcontrol` and `volumeaccess` (UCPAuthorization 3.1),
// `managerscheduling` (UCPNodeSelector), and the removal of a deleted service account's "agent"
// (UCPAuthorization 3.1). In orca a service account's only UCP state is the grants naming it as a
// subject, so removing its agent removes those grants: a service account re-created later under
// the same name starts with none.
import { ApiError } from '@orca/api';
import { deleteGrant, listGrants, type Authorizer, type AuthzSubject } from '@orca/rbac';
import type { Store } from '@orca/store';
import type { KubeAdmission } from './admission.js';
import type { KubeNodeSelector } from './admission-node-selector.js';
import { SERVICE_ACCOUNT_PREFIX, subjectOf } from './authorization.js';

const bad = (message: string) => new ApiError(400, 'INVALID_REQUEST', message);

/** A DNS-1123 label: what Kubernetes allows as a namespace (and, with dots, a service account). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SERVICE_ACCOUNT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A query parameter that must be there once, as a non-empty string. */
export function requiredParam(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw bad(`query parameter ${name} is required`);
  return value;
}

/** `system:serviceaccount:<namespace>:<name>`, checked as Kubernetes names them; 400 otherwise. */
export function parseServiceAccountId(id: string): { namespace: string; name: string } {
  const rest = id.startsWith(SERVICE_ACCOUNT_PREFIX) ? id.slice(SERVICE_ACCOUNT_PREFIX.length) : undefined;
  const [namespace, name, ...extra] = rest?.split(':') ?? [];
  if (
    namespace === undefined ||
    name === undefined ||
    extra.length > 0 ||
    namespace.length > 63 ||
    name.length > 253 ||
    !NAMESPACE.test(namespace) ||
    !SERVICE_ACCOUNT_NAME.test(name)
  )
    throw bad(`"${id}" is not system:serviceaccount:<namespace>:<name>`);
  return { namespace, name };
}

/** The body of POST /api/authz/volumeaccess: `{"volumes":["<name>",...]}`; 400 otherwise. */
export function parseVolumeAccessRequest(body: unknown): string[] {
  const volumes =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as { volumes?: unknown }).volumes
      : undefined;
  if (!Array.isArray(volumes) || volumes.some((v) => typeof v !== 'string' || v === ''))
    throw bad('the body must be {"volumes": [<volume name>, ...]}');
  return volumes as string[];
}

export interface VolumeAccess {
  allowed: boolean;
  reason: string;
}

/** The collection a Docker volume is in (its access label), or undefined when no engine has it. */
export type VolumeCollectionLookup = (name: string) => Promise<string | undefined>;

export class UcpAdmissionQueries {
  constructor(
    private readonly store: Store,
    private readonly authorizer: Authorizer,
    private readonly admission: KubeAdmission,
    private readonly nodeSelector: KubeNodeSelector,
    private readonly volumeCollection: VolumeCollectionLookup,
  ) {}

  /** Whether the Kubernetes user is one of orca's active administrators. */
  async isAdmin(user: string): Promise<boolean> {
    return (await subjectOf(this.store, this.authorizer, user))?.isAdmin === true;
  }

  /** Full Control on the namespace (administrators have it everywhere). */
  isFullControl(user: string, namespace: string): Promise<boolean> {
    if (!NAMESPACE.test(namespace)) throw bad(`"${namespace}" is not a namespace name`);
    return this.admission.hasFullControl(user, namespace);
  }

  /** Whether the user's workloads may run on managers ([scheduling_configuration]). */
  managerScheduling(user: string): Promise<boolean> {
    return this.nodeSelector.allowsManagerScheduling(user, []);
  }

  /** Volume Mount on each Docker volume's collection, decided by libs/rbac. */
  async volumeAccess(user: string, volumes: readonly string[]): Promise<Record<string, VolumeAccess>> {
    const subject = await subjectOf(this.store, this.authorizer, user);
    const result: Record<string, VolumeAccess> = {};
    for (const volume of new Set(volumes)) {
      if (!subject) {
        result[volume] = { allowed: false, reason: `${user} is not a UCP subject` };
        continue;
      }
      const collectionPath = await this.volumeCollection(volume);
      if (collectionPath === undefined) {
        result[volume] = { allowed: false, reason: `volume ${volume} does not exist` };
        continue;
      }
      const decision = await this.authorizer.authorize({
        subject,
        operation: 'Volume Mount',
        resource: { collectionPath },
      });
      // UCP answered an empty reason for an allowed volume.
      result[volume] = { allowed: decision.allowed, reason: decision.allowed ? '' : decision.reason };
    }
    return result;
  }

  /**
   * Removes what orca keeps for a deleted service account: the grants naming it, when libs/rbac
   * allows `caller` to delete grants. Idempotent: a service account without grants is no error
   * (UCP's plugin would otherwise block the service account's deletion).
   */
  async deleteAgent(caller: AuthzSubject, id: string): Promise<void> {
    parseServiceAccountId(id);
    const decision = await this.authorizer.authorize({
      subject: caller,
      operation: 'Grant Delete',
      resource: { collectionPath: '/' },
    });
    if (!decision.allowed) throw new ApiError(403, 'FORBIDDEN', decision.reason);
    for (const grant of await listGrants(this.store, [id])) {
      await deleteGrant(this.store, grant.subjectID, grant.objectID, grant.roleID).catch((error: unknown) => {
        // Removed meanwhile by someone else: the outcome wanted.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      });
    }
  }
}

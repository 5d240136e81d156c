// Admission as UCP's UCPAuthorization plugin did it (ucp-api.md §4.2), as a validating webhook:
// privileged containers, host paths, host network/PID/IPC, privilege escalation and added
// capabilities only for administrators or subjects with Full Control on the namespace, and
// non-administrators may run workloads only under the `default` service account.
import { getAccount } from '@orca/identity';
import { ALL_OPERATIONS, decide, type Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';
import { ADMIN_GROUP } from './identity.js';
import { ReviewError, SERVICE_ACCOUNT_PREFIX, subjectOf } from './authorization.js';

export const SERVICE_ACCOUNT_MESSAGE =
  'only docker EE admin users are permitted to use service accounts other than `default`';

interface Container {
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { add?: unknown[] };
  };
}

export interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  serviceAccountName?: string;
  serviceAccount?: string;
  volumes?: { hostPath?: unknown }[];
  containers?: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
}

export interface KubeObject {
  kind?: string;
  metadata?: { name?: string; generateName?: string };
  spec?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The pod spec inside a pod or a workload's pod template. */
export function podSpecOf(object: KubeObject): PodSpec | undefined {
  const spec = object.spec;
  if (!isObject(spec)) return undefined;
  if (object.kind === 'Pod') return spec as PodSpec;
  const template =
    object.kind === 'CronJob' ? (spec.jobTemplate as KubeObject | undefined)?.spec?.template : spec.template;
  return isObject(template) && isObject(template.spec) ? (template.spec as PodSpec) : undefined;
}

/** The privileged options a pod spec asks for, in UCP's words. */
export function privilegedParams(spec: PodSpec): string[] {
  const params = new Set<string>();
  if (spec.hostNetwork === true) params.add('hostNetwork');
  if (spec.hostPID === true) params.add('hostPID');
  if (spec.hostIPC === true) params.add('hostIPC');
  if (Array.isArray(spec.volumes) && spec.volumes.some((v) => isObject(v) && v.hostPath !== undefined))
    params.add('hostPath volumes');
  const containers = [spec.containers, spec.initContainers, spec.ephemeralContainers].flatMap((list) =>
    Array.isArray(list) ? list : [],
  );
  for (const c of containers) {
    const sc = isObject(c) ? c.securityContext : undefined;
    if (!isObject(sc)) continue;
    if (sc.privileged === true) params.add('privileged');
    if (sc.allowPrivilegeEscalation === true) params.add('allowPrivilegeEscalation');
    const caps = isObject(sc.capabilities) ? sc.capabilities.add : undefined;
    if (Array.isArray(caps) && caps.length > 0) params.add('added capabilities');
  }
  return [...params];
}

export interface AdmissionRequest {
  uid: string;
  namespace?: string;
  operation?: string;
  name?: string;
  /** `binding` for a pods/binding, `status` and so on; absent for the resource itself. */
  subResource?: string;
  userInfo?: { username?: string; groups?: string[] };
  object?: KubeObject | null;
}

/** The request of a well-formed AdmissionReview; throws ReviewError (→ 400) for anything else. */
export function parseReview(body: unknown): { apiVersion: string; request: AdmissionRequest } {
  if (!isObject(body)) throw new ReviewError('the body is not an AdmissionReview object');
  if (body.kind !== 'AdmissionReview' || !/^admission\.k8s\.io\/v1(beta1)?$/.test(String(body.apiVersion)))
    throw new ReviewError('expected kind AdmissionReview, apiVersion admission.k8s.io/v1');
  const request = body.request;
  if (!isObject(request)) throw new ReviewError('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '')
    throw new ReviewError('request.uid must be a string');
  for (const field of ['namespace', 'operation', 'name', 'subResource'] as const)
    if (request[field] !== undefined && typeof request[field] !== 'string')
      throw new ReviewError(`request.${field} must be a string`);
  if (request.userInfo !== undefined && !isObject(request.userInfo))
    throw new ReviewError('request.userInfo must be an object');
  if (request.object !== undefined && request.object !== null && !isObject(request.object))
    throw new ReviewError('request.object must be an object');
  return { apiVersion: String(body.apiVersion), request: request as unknown as AdmissionRequest };
}

const KUBE_OPERATIONS = [...ALL_OPERATIONS].filter((op) => op.startsWith('Kubernetes '));

export class KubeAdmission {
  constructor(
    private readonly store: Store,
    private readonly authorizer: Authorizer,
  ) {}

  /** Kubernetes' own components and orca's administrators: everything is allowed. */
  private async isAdministrator(user: string, groups: readonly string[]): Promise<boolean> {
    if (groups.includes(ADMIN_GROUP)) return true;
    if (user.startsWith(`${SERVICE_ACCOUNT_PREFIX}kube-system:`)) return true;
    if (user.startsWith('system:') && !user.startsWith(SERVICE_ACCOUNT_PREFIX) && user !== 'system:anonymous')
      return true;
    const account = await getAccount(this.store, user).catch(() => undefined);
    return !!account && account.isActive && account.isAdmin;
  }

  /** Full Control on the namespace: every Kubernetes operation there (UCP's isfullcontrol). */
  async hasFullControl(user: string, namespace: string): Promise<boolean> {
    const subject = await subjectOf(this.store, this.authorizer, user);
    if (!subject) return false;
    const snapshot = await this.authorizer.snapshot(subject);
    return KUBE_OPERATIONS.every(
      (operation) => decide({ subject, operation, resource: { namespace } }, snapshot).allowed,
    );
  }

  /** Why the request is refused, or undefined when it is admitted. */
  async refusal(request: AdmissionRequest): Promise<string | undefined> {
    const object = request.object;
    if (!object || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return undefined;
    const spec = podSpecOf(object);
    if (!spec) return undefined;
    const user = request.userInfo?.username ?? '';
    const groups = Array.isArray(request.userInfo?.groups) ? request.userInfo.groups : [];
    if (await this.isAdministrator(user, groups)) return undefined;
    const serviceAccount = spec.serviceAccountName || spec.serviceAccount || 'default';
    if (serviceAccount !== 'default') return SERVICE_ACCOUNT_MESSAGE;
    const params = privilegedParams(spec);
    if (params.length === 0) return undefined;
    if (await this.hasFullControl(user, request.namespace ?? '')) return undefined;
    const name = object.metadata?.name || object.metadata?.generateName || request.name || '';
    return `user "${user}" is not an admin and does not have permissions to use ${params.join(', ')} for resource ${name}`;
  }

  /** The reply to one AdmissionReview; throws ReviewError (→ 400) for a malformed one. */
  async review(body: unknown): Promise<Record<string, unknown>> {
    const { apiVersion, request } = parseReview(body);
    const refusal = await this.refusal(request);
    return {
      apiVersion,
      kind: 'AdmissionReview',
      response: refusal
        ? { uid: request.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: refusal } }
        : { uid: request.uid, allowed: true },
    };
  }
}

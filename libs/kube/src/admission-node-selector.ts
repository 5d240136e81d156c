// UCP's UCPNodeSelector admission plugin as a mutating webhook (ucp-api.md §4.2): user workloads
// get a required node affinity `com.docker.ucp.collection.system NotIn [true]`, which keeps them off
// manager nodes (UCP labels managers `com.docker.ucp.collection.system=true`), unless the
// `[scheduling_configuration]` of the UCP configuration lets them there: `enable_admin_ucp_scheduling`
// for administrators, `enable_user_ucp_scheduling` for everyone else. The configuration is read on
// every review, so a config-toml change applies to the next workload without a restart.
//
// As in UCP 3.0, workload controllers' pod templates are mutated too (the pods themselves are then
// created by kube-system's controllers, which are exempt): Deployments, ReplicaSets, StatefulSets,
// DaemonSets, ReplicationControllers, Jobs and CronJobs. Pods and Jobs only on create (their pod
// spec cannot change afterwards). Pods in kube-system and requests of Kubernetes' own components
// (`system:` users, kube-system's service accounts) are left alone.
//
// Unlike UCP 3.0, which appended one more node selector term (terms are ORed, so a user's own term
// could still reach a manager), the requirement is added to every term, and only once. And a pod
// spec whose `nodeName` names a manager is refused for those users: it bypasses the scheduler, so
// no affinity applies to it (a kubelet would refuse it on its node; kwok refuses nothing).
import { keys, kubeNodeName, parseNodeKey, type NodeSpec } from '@orca/cluster';
import { getAccount } from '@orca/identity';
import type { Store } from '@orca/store';
import { readUcpConfig } from '@orca/ucp-config';
import { parseReview, podSpecOf, type AdmissionRequest, type KubeObject } from './admission.js';
import { SERVICE_ACCOUNT_PREFIX } from './authorization.js';
import { ADMIN_GROUP } from './identity.js';

/** The label UCP puts on manager (and DTR) nodes, and the one the node affinity keys on. */
export const SYSTEM_COLLECTION_LABEL = 'com.docker.ucp.collection.system';
export const KUBE_SYSTEM_NAMESPACE = 'kube-system';

interface NodeSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

/** What keeps a pod off managers. */
export const OFF_MANAGERS_REQUIREMENT: Readonly<NodeSelectorRequirement> = Object.freeze({
  key: SYSTEM_COLLECTION_LABEL,
  operator: 'NotIn',
  values: ['true'],
});

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const isOffManagers = (e: unknown): boolean =>
  isObject(e) &&
  e.key === SYSTEM_COLLECTION_LABEL &&
  e.operator === 'NotIn' &&
  Array.isArray(e.values) &&
  e.values.includes('true');

/**
 * The pod spec's affinity with the off-managers requirement in every required node selector term,
 * or undefined when every term has it already.
 */
export function affinityOffManagers(affinity: unknown): JsonObject | undefined {
  const result: JsonObject = isObject(affinity) ? structuredClone(affinity) : {};
  const required = objectAt(
    objectAt(result, 'nodeAffinity'),
    'requiredDuringSchedulingIgnoredDuringExecution',
  );
  const terms = Array.isArray(required.nodeSelectorTerms) ? required.nodeSelectorTerms.filter(isObject) : [];
  // No term at all would match every node: one term with only the requirement.
  if (terms.length === 0) terms.push({});
  let changed = false;
  for (const term of terms) {
    const expressions: unknown[] = Array.isArray(term.matchExpressions) ? term.matchExpressions : [];
    term.matchExpressions = expressions;
    if (expressions.some(isOffManagers)) continue;
    expressions.push({ ...OFF_MANAGERS_REQUIREMENT, values: ['true'] });
    changed = true;
  }
  required.nodeSelectorTerms = terms;
  return changed ? result : undefined;
}

/** The object under `key`, made when missing. */
function objectAt(parent: JsonObject, key: string): JsonObject {
  const value = parent[key];
  if (isObject(value)) return value;
  const made: JsonObject = {};
  parent[key] = made;
  return made;
}

/** Where the pod spec is inside the object, as a JSON pointer. */
function podSpecPointer(object: KubeObject): string {
  if (object.kind === 'Pod') return '/spec';
  if (object.kind === 'CronJob') return '/spec/jobTemplate/spec/template/spec';
  return '/spec/template/spec';
}

/** The node a Binding names (`target`, a Node: the only kind the apiserver binds to). */
function bindingTarget(object: KubeObject): unknown {
  const target = (object as { target?: unknown }).target;
  if (!isObject(target) || (target.kind !== undefined && target.kind !== 'Node')) return undefined;
  return target.name;
}

/** Pods and Jobs only on create (their pod spec cannot change afterwards); workloads also on update. */
function mutable(object: KubeObject, operation: string | undefined): boolean {
  if (operation === 'CREATE') return true;
  return operation === 'UPDATE' && object.kind !== 'Pod' && object.kind !== 'Job';
}

/** The JSONPatch that keeps a workload off managers, or undefined when it stays as it is. */
function offManagersPatch(object: KubeObject): unknown[] | undefined {
  const spec = podSpecOf(object) as { affinity?: unknown } | undefined;
  if (!spec) return undefined;
  const affinity = affinityOffManagers(spec.affinity);
  if (!affinity) return undefined;
  // `add` replaces a member that is there already (RFC 6902 §4.1): one operation either way.
  return [{ op: 'add', path: `${podSpecPointer(object)}/affinity`, value: affinity }];
}

/** Kubernetes' own components: their pods (and the pods they make from templates) are not changed. */
export function isSystemUser(user: string): boolean {
  if (user.startsWith(`${SERVICE_ACCOUNT_PREFIX}${KUBE_SYSTEM_NAMESPACE}:`)) return true;
  return (
    user.startsWith('system:') && !user.startsWith(SERVICE_ACCOUNT_PREFIX) && user !== 'system:anonymous'
  );
}

export class KubeNodeSelector {
  constructor(private readonly store: Store) {}

  private async isAdministrator(user: string, groups: readonly string[]): Promise<boolean> {
    if (groups.includes(ADMIN_GROUP)) return true;
    const account = await getAccount(this.store, user).catch(() => undefined);
    return !!account && account.isActive && account.isAdmin;
  }

  /** Whether the request's workload may run on managers (UCP's /api/authz/managerscheduling). */
  async allowsManagerScheduling(user: string, groups: readonly string[]): Promise<boolean> {
    const scheduling = (await readUcpConfig(this.store)).scheduling_configuration;
    return (await this.isAdministrator(user, groups))
      ? scheduling.enable_admin_ucp_scheduling
      : scheduling.enable_user_ucp_scheduling;
  }

  /**
   * Whether a Kubernetes node is a manager's: FakeNodeLoop gives every manager in the store its
   * Node, labelled com.docker.ucp.collection.system=true, and keeps that label on it. Read from the
   * store so that it answers wherever the webhooks run, with no call back to the apiserver.
   */
  private async isManagerNode(name: string): Promise<boolean> {
    const { kvs } = await this.store.range(keys.nodesPrefix);
    for (const kv of kvs) {
      if (parseNodeKey(kv.key)?.part !== 'spec') continue;
      const node = JSON.parse(kv.value) as NodeSpec;
      if (node.role === 'swarm-manager' && kubeNodeName(node) === name) return true;
    }
    return false;
  }

  /**
   * Whether the request's workload is to be kept off managers: a create (or a workload's update)
   * outside kube-system by a user the scheduling configuration does not let on managers.
   */
  private async keptOffManagers(request: AdmissionRequest, object: KubeObject): Promise<boolean> {
    if (!mutable(object, request.operation)) return false;
    if (request.namespace === KUBE_SYSTEM_NAMESPACE) return false;
    const user = request.userInfo?.username ?? '';
    if (isSystemUser(user)) return false;
    const groups = Array.isArray(request.userInfo?.groups) ? request.userInfo.groups : [];
    return !(await this.allowsManagerScheduling(user, groups));
  }

  /**
   * Why a request kept off managers is refused: its pod spec names a manager node in `nodeName`,
   * or its pods/binding targets one. Undefined when it is admitted (to be patched or not).
   */
  private async refusal(request: AdmissionRequest, object: KubeObject): Promise<string | undefined> {
    // A pods/binding (what the scheduler posts) places a pending pod on a node as nodeName would.
    const binding = request.subResource === 'binding' || object.kind === 'Binding';
    const nodeName = binding
      ? bindingTarget(object)
      : (podSpecOf(object) as { nodeName?: unknown } | undefined)?.nodeName;
    if (typeof nodeName !== 'string' || nodeName === '') return undefined;
    if (!(await this.isManagerNode(nodeName))) return undefined;
    const name =
      (binding && request.name) ||
      object.metadata?.name ||
      object.metadata?.generateName ||
      request.name ||
      '';
    const how = binding
      ? `bind Pod ${name} to manager node "${nodeName}" (pods/binding)`
      : `run ${object.kind ?? 'workload'} ${name} on manager node "${nodeName}" (spec.nodeName)`;
    return `user "${request.userInfo?.username ?? ''}" may not ${how}: the UCP scheduling configuration keeps their workloads off managers`;
  }

  /** The reply to one AdmissionReview; throws ReviewError (→ 400) for a malformed one. */
  async review(body: unknown): Promise<Record<string, unknown>> {
    const { apiVersion, request } = parseReview(body);
    // The object, when the request's workload is to be kept off managers.
    const kept =
      request.object && (await this.keptOffManagers(request, request.object)) ? request.object : undefined;
    const refusal = kept ? await this.refusal(request, kept) : undefined;
    const patch = kept && !refusal ? offManagersPatch(kept) : undefined;
    return {
      apiVersion,
      kind: 'AdmissionReview',
      response: refusal
        ? { uid: request.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: refusal } }
        : patch
          ? {
              uid: request.uid,
              allowed: true,
              patchType: 'JSONPatch',
              patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
            }
          : { uid: request.uid, allowed: true },
    };
  }
}

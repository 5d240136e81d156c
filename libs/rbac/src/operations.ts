// UCP's operation catalogue and the five built-in roles (ucp-api.md §2.2). Operation names are
// "<Resource> <Verb>", grouped by resource type as role.Role's `operations` object.
// The exact per-role lists are not published; these follow define-roles.md's descriptions.

/** role.Role operations: `{ "<Resource>": { "<Resource> <Verb>": [] } }`. */
export type Operations = Record<string, Record<string, unknown[]>>;

const SWARM: Record<string, string[]> = {
  Config: ['View', 'Create', 'Update', 'Delete', 'Use'],
  Container: [
    'View',
    'Create',
    'Start',
    'Stop',
    'Restart',
    'Kill',
    'Pause',
    'Unpause',
    'Update',
    'Rename',
    'Delete',
    'Attach',
    'Exec',
    'Logs',
    'Stats',
    'Top',
    'Changes',
    'Export',
    'Resize',
    'Bind Mount',
    'Privileged',
    'Capabilities',
    'Host Network',
  ],
  Image: ['View', 'Pull', 'Push', 'Build', 'Tag', 'Delete', 'Load', 'Save'],
  Network: ['View', 'Create', 'Delete', 'Connect', 'Disconnect'],
  Node: ['View', 'Schedule', 'Update', 'Delete'],
  Secret: ['View', 'Create', 'Update', 'Delete', 'Use'],
  Service: ['View', 'View Tasks', 'Logs', 'Create', 'Update', 'Delete'],
  Volume: ['View', 'Create', 'Delete', 'Mount'],
};

export const KUBE_RESOURCES = [
  'Pod',
  'Node',
  'Namespace',
  'Service',
  'Deployment',
  'Config Map',
  'Secret',
  'Persistent Volume Claim',
  'Role',
  'Role Binding',
  'Cluster Role',
  'Cluster Role Binding',
  // Workload and plumbing resources kubectl touches (added for the kube authorization webhook).
  'Replica Set',
  'Stateful Set',
  'Daemon Set',
  'Job',
  'Cron Job',
  'Service Account',
  'Event',
  'Endpoints',
  'Ingress',
];
export const KUBE_VERBS = ['Get', 'List', 'Watch', 'Create', 'Update', 'Patch', 'Delete'];

/** Every known operation, by resource type. */
export const CATALOGUE: Record<string, string[]> = Object.fromEntries([
  ...Object.entries(SWARM).map(([type, verbs]) => [type, verbs.map((v) => `${type} ${v}`)]),
  ...KUBE_RESOURCES.map((r) => [`Kubernetes ${r}`, KUBE_VERBS.map((v) => `Kubernetes ${r} ${v}`)]),
]);

export const ALL_OPERATIONS: ReadonlySet<string> = new Set(Object.values(CATALOGUE).flat());

/** The resource type an operation belongs to (undefined for unknown operations). */
export function resourceTypeOf(operation: string): string | undefined {
  for (const [type, ops] of Object.entries(CATALOGUE)) if (ops.includes(operation)) return type;
  return undefined;
}

/** Groups a set of operation names into role.Role's operations object. */
export function toOperations(ops: Iterable<string>): Operations {
  const result: Operations = {};
  for (const op of [...ops].sort()) {
    const type = resourceTypeOf(op);
    if (!type) continue;
    (result[type] ??= {})[op] = [];
  }
  return result;
}

export function operationNames(operations: Operations): Set<string> {
  return new Set(Object.values(operations).flatMap((ops) => Object.keys(ops)));
}

const READ = /( View| View Tasks| Logs| Stats| Top| Changes| Get| List| Watch)$/;
// What Restricted Control leaves out: anything that reaches into the node (define-roles.md).
const NODE_AFFECTING = new Set([
  'Container Exec',
  'Container Attach',
  'Container Bind Mount',
  'Container Privileged',
  'Container Capabilities',
  'Container Host Network',
  'Node Update',
  'Node Delete',
  'Kubernetes Node Create',
  'Kubernetes Node Update',
  'Kubernetes Node Patch',
  'Kubernetes Node Delete',
]);

const all = [...ALL_OPERATIONS];
const viewOnly = all.filter((op) => READ.test(op));
const scheduler = [
  'Node View',
  'Node Schedule',
  ...all.filter((op) => /^Kubernetes Node (Get|List|Watch)$/.test(op)),
];

export interface RoleRecord {
  id: string;
  name: string;
  system_role: boolean;
  operations: Operations;
}

export const BUILTIN_ROLES: readonly RoleRecord[] = [
  { id: 'none', name: 'None', system_role: true, operations: {} },
  { id: 'viewonly', name: 'View Only', system_role: true, operations: toOperations(viewOnly) },
  {
    id: 'restrictedcontrol',
    name: 'Restricted Control',
    system_role: true,
    operations: toOperations(all.filter((op) => !NODE_AFFECTING.has(op))),
  },
  { id: 'scheduler', name: 'Scheduler', system_role: true, operations: toOperations(scheduler) },
  { id: 'fullcontrol', name: 'Full Control', system_role: true, operations: toOperations(all) },
];

export function builtinRole(id: string): RoleRecord | undefined {
  return BUILTIN_ROLES.find((r) => r.id === id);
}

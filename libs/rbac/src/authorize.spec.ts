// The decision function as a table: subjects × grants × collections × operations.
import {
  decide,
  operationsOn,
  type AuthzResource,
  type AuthzSnapshot,
  type AuthzSubject,
} from './authorize.js';
import { BUILTIN_COLLECTIONS, type CollectionRecord } from './collections.js';
import type { GrantRecord } from './grants.js';
import { BUILTIN_ROLES, toOperations, type RoleRecord } from './operations.js';

const coll = (id: string, path: string, parent_ids: string[]): CollectionRecord => ({
  ...BUILTIN_COLLECTIONS[0],
  id,
  name: path.split('/').pop() as string,
  path,
  parent_ids,
});
const collections = [
  ...BUILTIN_COLLECTIONS,
  coll('prod', '/prod', ['swarm']),
  coll('prod-db', '/prod/db', ['swarm', 'prod']),
  coll('mobile', '/Shared/mobile', ['swarm', 'shared']),
  coll('private-molly', '/Shared/Private/molly', ['swarm', 'shared', 'private']),
];
const logs: RoleRecord = {
  id: 'logs-role',
  name: 'logs',
  system_role: false,
  operations: toOperations(['Container Logs']),
};
const grant = (
  subjectID: string,
  objectID: string,
  roleID: string,
  type: GrantRecord['type'] = 'collection',
) => ({
  subjectID,
  objectID,
  roleID,
  type,
});
const snapshot: AuthzSnapshot = {
  collections,
  roles: new Map([...BUILTIN_ROLES, logs].map((r) => [r.id, r])),
  grants: [
    grant('alice', 'prod', 'viewonly'),
    grant('team-dba', 'prod-db', 'restrictedcontrol'),
    grant('org-eng', 'prod', 'logs-role'),
    grant('carol', 'mobile', 'fullcontrol'),
    grant('dave', 'dev', 'fullcontrol', 'namespace'),
    grant('erin', 'kubernetesnamespaces', 'viewonly', 'grantobject'),
    grant('frank', 'swarm', 'none'),
    // What creating molly did: her private collection with the default new-user role.
    grant('u1', 'private-molly', 'restrictedcontrol'),
  ],
};
const user = (id: string, extra: Partial<AuthzSubject> = {}): AuthzSubject => ({
  id,
  isAdmin: false,
  teamIds: [],
  orgIds: [],
  ...extra,
});

describe('decide', () => {
  const cases: [string, AuthzSubject, string, { collectionPath: string } | { namespace: string }, boolean][] =
    [
      [
        'admin may do anything anywhere',
        user('root', { isAdmin: true }),
        'Node Update',
        { collectionPath: '/System' },
        true,
      ],
      [
        'admin on namespaces too',
        user('root', { isAdmin: true }),
        'Kubernetes Pod Delete',
        { namespace: 'x' },
        true,
      ],
      ['grant covers the collection', user('alice'), 'Container View', { collectionPath: '/prod' }, true],
      ['grant covers children', user('alice'), 'Service View', { collectionPath: '/prod/db' }, true],
      [
        'grant covers unknown descendants',
        user('alice'),
        'Volume View',
        { collectionPath: '/prod/db/x' },
        true,
      ],
      [
        'not a sibling sharing a prefix',
        user('alice'),
        'Container View',
        { collectionPath: '/production' },
        false,
      ],
      ['not the parent', user('alice'), 'Container View', { collectionPath: '/' }, false],
      ['view-only cannot create', user('alice'), 'Container Create', { collectionPath: '/prod' }, false],
      [
        'team grant applies',
        user('bob', { teamIds: ['team-dba'] }),
        'Container Create',
        { collectionPath: '/prod/db' },
        true,
      ],
      [
        'restricted control: no exec',
        user('bob', { teamIds: ['team-dba'] }),
        'Container Exec',
        { collectionPath: '/prod/db' },
        false,
      ],
      [
        'org grant applies',
        user('bob', { orgIds: ['org-eng'] }),
        'Container Logs',
        { collectionPath: '/prod/db' },
        true,
      ],
      [
        'grants add up: user + org',
        user('alice', { orgIds: ['org-eng'] }),
        'Container Logs',
        { collectionPath: '/prod' },
        true,
      ],
      [
        'grants add up: user view + team create',
        user('alice', { teamIds: ['team-dba'] }),
        'Container Create',
        { collectionPath: '/prod/db' },
        true,
      ],
      [
        'accumulation does not leak upward',
        user('alice', { teamIds: ['team-dba'] }),
        'Container Create',
        { collectionPath: '/prod' },
        false,
      ],
      ['default Scheduler on /Shared', user('nobody'), 'Node Schedule', { collectionPath: '/Shared' }, true],
      [
        'default Scheduler covers /Shared children',
        user('nobody'),
        'Node View',
        { collectionPath: '/Shared/mobile' },
        true,
      ],
      [
        'default Scheduler is not view of containers',
        user('nobody'),
        'Container View',
        { collectionPath: '/Shared' },
        false,
      ],
      ['no default on /System', user('nobody'), 'Node View', { collectionPath: '/System' }, false],
      ['none role gives nothing', user('frank'), 'Container View', { collectionPath: '/prod' }, false],
      [
        'none does not take the default away',
        user('frank'),
        'Node Schedule',
        { collectionPath: '/Shared' },
        true,
      ],
      [
        'full control under /Shared',
        user('carol'),
        'Container Exec',
        { collectionPath: '/Shared/mobile' },
        true,
      ],
      [
        'own private collection: the default new-user role (restrictedcontrol) creates',
        user('u1', { name: 'molly' }),
        'Container Create',
        { collectionPath: '/Shared/Private/molly' },
        true,
      ],
      [
        'own private collection: restrictedcontrol does not exec',
        user('u1', { name: 'molly' }),
        'Container Exec',
        { collectionPath: '/Shared/Private/molly' },
        false,
      ],
      [
        'a private collection gives nothing without its grant',
        user('u2', { name: 'nina' }),
        'Container View',
        { collectionPath: '/Shared/Private/nina' },
        false,
      ],
      [
        "not another user's private collection",
        user('u1', { name: 'molly' }),
        'Container View',
        { collectionPath: '/Shared/Private/mollyx' },
        false,
      ],
      ['namespace grant', user('dave'), 'Kubernetes Pod Create', { namespace: 'dev' }, true],
      ['namespace grant is per namespace', user('dave'), 'Kubernetes Pod Get', { namespace: 'prod' }, false],
      [
        'collection grants do not cover namespaces',
        user('alice'),
        'Kubernetes Pod Get',
        { namespace: 'prod' },
        false,
      ],
      ['all-namespaces grant object', user('erin'), 'Kubernetes Pod List', { namespace: 'anything' }, true],
      ['all-namespaces view only', user('erin'), 'Kubernetes Pod Delete', { namespace: 'anything' }, false],
      ['unknown operation', user('carol'), 'Container Teleport', { collectionPath: '/Shared/mobile' }, false],
    ];
  it.each(cases)('%s', (_name, subject, operation, resource, allowed) => {
    const decision = decide({ subject, operation, resource }, snapshot);
    expect(decision.allowed).toBe(allowed);
    expect(decision.reason).toEqual(expect.any(String));
  });

  it('says why', () => {
    expect(
      decide(
        { subject: user('alice'), operation: 'Container View', resource: { collectionPath: '/prod' } },
        snapshot,
      ).reason,
    ).toContain('alice/prod/viewonly');
    expect(
      decide(
        { subject: user('alice'), operation: 'Node Update', resource: { collectionPath: '/prod' } },
        snapshot,
      ).reason,
    ).toMatch(/no grant/);
  });
});

describe('built-in roles', () => {
  const ops = (id: string) =>
    new Set(Object.values(BUILTIN_ROLES.find((r) => r.id === id)!.operations).flatMap(Object.keys));
  it('have the UCP ids and are system roles', () => {
    expect(BUILTIN_ROLES.map((r) => r.id)).toEqual([
      'none',
      'viewonly',
      'restrictedcontrol',
      'scheduler',
      'fullcontrol',
    ]);
    expect(BUILTIN_ROLES.every((r) => r.system_role)).toBe(true);
  });
  it('nest: none ⊂ scheduler, viewonly ⊂ restrictedcontrol ⊂ fullcontrol', () => {
    expect(ops('none').size).toBe(0);
    for (const op of ops('viewonly')) expect(ops('restrictedcontrol').has(op)).toBe(true);
    for (const op of ops('restrictedcontrol')) expect(ops('fullcontrol').has(op)).toBe(true);
    expect(ops('scheduler')).toEqual(
      new Set([
        'Node View',
        'Node Schedule',
        'Kubernetes Node Get',
        'Kubernetes Node List',
        'Kubernetes Node Watch',
      ]),
    );
    expect(ops('fullcontrol').has('Kubernetes Pod Get')).toBe(true);
    expect(ops('restrictedcontrol').has('Container Exec')).toBe(false);
  });
});

// decide and operationsOn walk an index of the snapshot; `plainOperations` is the plain statement of
// the rules (precedence: the subject's own grants, then its teams', then its orgs', each in snapshot
// order). On a random snapshot (nested collections, team/org grants, namespace grants, a custom
// role, grants on deleted collections) all must give the same answer and reason for every request.
function plainOperations(
  subject: AuthzSubject,
  resource: AuthzResource,
  snap: AuthzSnapshot,
): Map<string, string> {
  const found = new Map<string, string>();
  const add = (roleId: string, why: string) => {
    const role = snap.roles.get(roleId) ?? BUILTIN_ROLES.find((r) => r.id === roleId);
    for (const ops of Object.values(role?.operations ?? {}))
      for (const op of Object.keys(ops)) if (!found.has(op)) found.set(op, why);
  };
  const within = (ancestor: string, path: string) =>
    ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`);
  for (const id of new Set([subject.id, ...subject.teamIds, ...subject.orgIds])) {
    for (const g of snap.grants) {
      if (g.subjectID !== id) continue;
      const via = `grant ${g.subjectID}/${g.objectID}/${g.roleID}`;
      if ('collectionPath' in resource) {
        const c = snap.collections.find((x) => x.id === g.objectID);
        if (g.type === 'collection' && c && within(c.path, resource.collectionPath)) add(g.roleID, via);
      } else if (
        (g.type === 'namespace' && g.objectID === resource.namespace) ||
        (g.type === 'grantobject' && g.objectID === 'kubernetesnamespaces')
      ) {
        add(g.roleID, via);
      }
    }
  }
  if ('collectionPath' in resource && within('/Shared', resource.collectionPath))
    add('scheduler', 'default Scheduler grant on /Shared');
  return found;
}

describe('decide agrees with operationsOn', () => {
  let state = 7;
  const next = () => (state = (state * 1_664_525 + 1_013_904_223) >>> 0) / 2 ** 32;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const many: CollectionRecord[] = [...collections];
  for (let i = 0; many.length < 120; i++) {
    const parent = pick(many);
    many.push(
      coll(`c${i}`, `${parent.path === '/' ? '' : parent.path}/n${i}`, [...parent.parent_ids, parent.id]),
    );
  }
  const subjects = ['u1', 'u2', 'u3', 't1', 't2', 'o1'];
  const roles = [
    'viewonly',
    'restrictedcontrol',
    'scheduler',
    'fullcontrol',
    'none',
    'logs-role',
    'gone-role',
  ];
  const grants: GrantRecord[] = Array.from({ length: 600 }, () => {
    const r = next();
    if (r < 0.1) return grant(pick(subjects), pick(['dev', 'prod', 'kube-system']), pick(roles), 'namespace');
    if (r < 0.15) return grant(pick(subjects), 'kubernetesnamespaces', pick(roles), 'grantobject');
    if (r < 0.2) return grant(pick(subjects), 'deleted-collection', pick(roles));
    return grant(pick(subjects), pick(many).id, pick(roles));
  });
  const big: AuthzSnapshot = { collections: many, roles: snapshot.roles, grants };
  const ops = [
    'Container View',
    'Container Exec',
    'Container Logs',
    'Service Create',
    'Volume Delete',
    'Node Schedule',
  ];

  it('for 5,000 random requests', () => {
    for (let i = 0; i < 5000; i++) {
      const subject = user(pick(['u1', 'u2', 'u3', 'u4']), {
        name: pick(['u1', 'u2', undefined]),
        teamIds: next() < 0.5 ? ['t1'] : ['t2', 't1'],
        orgIds: next() < 0.5 ? ['o1'] : [],
      });
      const operation = pick(ops);
      const resource: AuthzResource =
        next() < 0.8
          ? {
              collectionPath: pick([
                ...many.map((c) => c.path),
                '/Shared/Private/u1',
                '/Shared/Private/u1/x',
              ]),
            }
          : { namespace: pick(['dev', 'prod', 'other']) };
      const plain = plainOperations(subject, resource, big);
      expect(operationsOn(subject, resource, big)).toEqual(plain);
      const via = plain.get(operation);
      const where =
        'collectionPath' in resource
          ? `collection ${resource.collectionPath}`
          : `namespace ${resource.namespace}`;
      const expected = via
        ? { allowed: true, reason: `${operation} on ${where} by ${via}` }
        : { allowed: false, reason: `no grant gives ${operation} on ${where}` };
      expect(decide({ subject, operation, resource }, big)).toEqual(expected);
    }
  });
});

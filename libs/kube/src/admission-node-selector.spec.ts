// UCPNodeSelector's decisions and patches, against a real embedded store (accounts and config-toml).
import { keys } from '@orca/cluster';
import { Directory } from '@orca/identity';
import { EmbeddedStore } from '@orca/store';
import { parseUcpConfigToml, readUcpConfigRevision, writeUcpConfig } from '@orca/ucp-config';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { affinityOffManagers, isSystemUser, KubeNodeSelector } from './admission-node-selector.js';
import { ReviewError } from './authorization.js';

const OFF = { key: 'com.docker.ucp.collection.system', operator: 'NotIn', values: ['true'] };
const required = (terms: unknown[]) => ({
  nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
});

describe('affinityOffManagers', () => {
  it('adds one term when there is none, keeping the rest of the affinity', () => {
    expect(affinityOffManagers(undefined)).toEqual(required([{ matchExpressions: [OFF] }]));
    const podAffinity = { requiredDuringSchedulingIgnoredDuringExecution: [] };
    expect(affinityOffManagers({ podAffinity })).toEqual({
      podAffinity,
      ...required([{ matchExpressions: [OFF] }]),
    });
    expect(affinityOffManagers(required([]))).toEqual(required([{ matchExpressions: [OFF] }]));
  });

  it('adds the requirement to every term (terms are ORed), once', () => {
    const mine = { key: 'disk', operator: 'In', values: ['ssd'] };
    const fields = { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] };
    const input = required([{ matchExpressions: [mine] }, fields]);
    const output = affinityOffManagers(input);
    expect(output).toEqual(
      required([{ matchExpressions: [mine, OFF] }, { ...fields, matchExpressions: [OFF] }]),
    );
    expect(input).toEqual(required([{ matchExpressions: [mine] }, fields])); // not changed in place
    expect(affinityOffManagers(output)).toBeUndefined();
  });
});

describe('isSystemUser', () => {
  it.each([
    ['system:kube-controller-manager', true],
    ['system:serviceaccount:kube-system:replicaset-controller', true],
    ['system:serviceaccount:apps:robot', false],
    ['system:anonymous', false],
    ['bob', false],
  ])('%s → %s', (user, expected) => expect(isSystemUser(user)).toBe(expected));
});

describe('KubeNodeSelector', () => {
  let dir: string;
  let store: EmbeddedStore;
  let selector: KubeNodeSelector;

  const setScheduling = async (admin: boolean, user: boolean) => {
    const { modRevision } = await readUcpConfigRevision(store);
    const toml = `[scheduling_configuration]\nenable_admin_ucp_scheduling = ${admin}\nenable_user_ucp_scheduling = ${user}`;
    await writeUcpConfig(store, parseUcpConfigToml(toml), modRevision);
  };
  const review = (user: string, object: unknown, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u',
      namespace: 'apps',
      operation: 'CREATE',
      userInfo: { username: user },
      object,
      ...extra,
    },
  });
  const patchOf = async (body: unknown) => {
    const { response } = (await selector.review(body)) as {
      response: { uid: string; allowed: boolean; patch?: string; patchType?: string };
    };
    expect(response).toMatchObject({ uid: 'u', allowed: true });
    return response.patch
      ? (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as unknown)
      : undefined;
  };
  const pod = { kind: 'Pod', spec: { containers: [{ name: 'c' }] } };
  const cronJob = {
    kind: 'CronJob',
    spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c' }] } } } } },
  };
  const deployment = { kind: 'Deployment', spec: { template: { spec: { containers: [{ name: 'c' }] } } } };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-node-selector-unit-'));
    store = new EmbeddedStore({ dir });
    const directory = new Directory(store);
    await directory.create({ name: 'bob', password: 'bob-password' });
    await directory.create({ name: 'ada', password: 'ada-password', isAdmin: true });
    selector = new KubeNodeSelector(store);
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('patches non-admins by default, not admins, and follows changed settings on the next review', async () => {
    const add = (path: string) => [{ op: 'add', path, value: required([{ matchExpressions: [OFF] }]) }];
    expect(await patchOf(review('bob', pod))).toEqual(add('/spec/affinity'));
    expect(await patchOf(review('bob', deployment))).toEqual(add('/spec/template/spec/affinity'));
    expect(await patchOf(review('bob', cronJob))).toEqual(
      add('/spec/jobTemplate/spec/template/spec/affinity'),
    );
    expect(await patchOf(review('ada', pod))).toBeUndefined();
    await setScheduling(false, true);
    expect(await patchOf(review('bob', pod))).toBeUndefined();
    expect(await patchOf(review('ada', pod))).toEqual(add('/spec/affinity'));
    // The admins' group is an admin whatever the account says.
    expect(
      await patchOf(review('x', pod, { userInfo: { username: 'x', groups: ['system:masters'] } })),
    ).toEqual(add('/spec/affinity'));
  });

  it('leaves kube-system, system users, pod and job updates and non-workloads alone', async () => {
    await setScheduling(false, false);
    expect(await patchOf(review('bob', pod, { namespace: 'kube-system' }))).toBeUndefined();
    expect(await patchOf(review('system:serviceaccount:kube-system:job-controller', pod))).toBeUndefined();
    expect(await patchOf(review('bob', pod, { operation: 'UPDATE' }))).toBeUndefined();
    expect(
      await patchOf(review('bob', { ...deployment, kind: 'Job' }, { operation: 'UPDATE' })),
    ).toBeUndefined();
    expect(await patchOf(review('bob', deployment, { operation: 'UPDATE' }))).toBeDefined();
    expect(await patchOf(review('bob', { kind: 'ConfigMap', data: {} }))).toBeUndefined();
    expect(await patchOf(review('bob', pod, { operation: 'DELETE' }))).toBeUndefined();
  });

  it('refuses a pod spec naming a manager node in nodeName for users kept off managers', async () => {
    const spec = (id: string, hostname: string, role: string) => ({
      id,
      role,
      hostname,
      address: '127.0.0.1',
      runtime: 'process',
      facts: {},
      createdAt: new Date().toISOString(),
    });
    await store.put(keys.nodeSpec('m1'), JSON.stringify(spec('m1', 'Manager-One', 'swarm-manager')));
    await store.put(keys.nodeSpec('w1'), JSON.stringify(spec('w1', 'worker-one', 'swarm-worker')));
    const on = (node: string) => ({
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { ...pod.spec, nodeName: node },
    });
    const onTemplate = (node: string) => ({
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { template: { spec: { ...deployment.spec.template.spec, nodeName: node } } },
    });
    const responseOf = async (body: unknown) =>
      ((await selector.review(body)) as { response: Record<string, unknown> }).response;
    const refused = (what: string) => ({
      uid: 'u',
      allowed: false,
      status: {
        code: 403,
        reason: 'Forbidden',
        message: `user "bob" may not ${what}: the UCP scheduling configuration keeps their workloads off managers`,
      },
    });
    // The manager's Kubernetes node name, as FakeNodeLoop names it (kubeNodeName).
    expect(await responseOf(review('bob', on('manager-one')))).toEqual(
      refused('run Pod p on manager node "manager-one" (spec.nodeName)'),
    );
    expect(await responseOf(review('bob', onTemplate('manager-one')))).toMatchObject({
      allowed: false,
      status: { message: expect.stringContaining('Deployment d on manager node "manager-one"') },
    });
    expect(await responseOf(review('bob', onTemplate('manager-one'), { operation: 'UPDATE' }))).toMatchObject(
      { allowed: false },
    );
    // Workers and unknown nodes: admitted (and patched as ever); admins, system users, kube-system too.
    expect(await responseOf(review('bob', on('worker-one')))).toMatchObject({ allowed: true });
    expect(await responseOf(review('bob', on('nowhere')))).toMatchObject({ allowed: true });
    expect(await responseOf(review('ada', on('manager-one')))).toEqual({ uid: 'u', allowed: true });
    expect(
      await responseOf(review('system:serviceaccount:kube-system:daemon-set-controller', on('manager-one'))),
    ).toEqual({ uid: 'u', allowed: true });
    expect(await responseOf(review('bob', on('manager-one'), { namespace: 'kube-system' }))).toEqual({
      uid: 'u',
      allowed: true,
    });
    // A pods/binding to a manager (a pending pod placed by hand, as the scheduler would): refused too.
    const binding = (node: string, kind = 'Node') => ({
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: 'pending' },
      target: { kind, name: node },
    });
    const bind = (user: string, node: string, kind?: string) =>
      review(user, binding(node, kind), { name: 'pending', subResource: 'binding' });
    expect(await responseOf(bind('bob', 'manager-one'))).toEqual(
      refused('bind Pod pending to manager node "manager-one" (pods/binding)'),
    );
    expect(await responseOf(bind('bob', 'worker-one'))).toEqual({ uid: 'u', allowed: true });
    expect(await responseOf(bind('bob', 'manager-one', 'Pod'))).toEqual({ uid: 'u', allowed: true });
    expect(await responseOf(bind('ada', 'manager-one'))).toEqual({ uid: 'u', allowed: true });
    expect(await responseOf(bind('system:kube-scheduler', 'manager-one'))).toEqual({
      uid: 'u',
      allowed: true,
    });
    // A pod's spec cannot change: its updates are not reviewed again.
    expect(await responseOf(review('bob', on('manager-one'), { operation: 'UPDATE' }))).toEqual({
      uid: 'u',
      allowed: true,
    });
    // Once users may run on managers, bob's pod is admitted; then the admins are the ones kept off.
    await setScheduling(false, true);
    expect(await responseOf(review('bob', on('manager-one')))).toEqual({ uid: 'u', allowed: true });
    expect(await responseOf(review('ada', on('manager-one')))).toMatchObject({ allowed: false });
  });

  it('refuses malformed reviews with ReviewError', async () => {
    for (const body of [null, [], {}, { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }])
      await expect(selector.review(body)).rejects.toBeInstanceOf(ReviewError);
    // Fields the decision reads must be what the apiserver sends: strings.
    for (const field of ['namespace', 'operation', 'name', 'subResource'])
      await expect(selector.review(review('bob', pod, { [field]: 7 }))).rejects.toThrow(
        `request.${field} must be a string`,
      );
  });
});

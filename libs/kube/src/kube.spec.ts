// The pure parts of libs/kube: request → UCP operation, pod specs → privileged options, UCP roles →
// RBAC rules, and the headers the front door sends upstream.
import { ConfigError, kubeConfigFrom } from '@orca/config';
import { BUILTIN_ROLES, type RoleRecord } from '@orca/rbac';
import { privilegedParams, podSpecOf } from './admission.js';
import { operationFor } from './authorization.js';
import { extraHeaderKey, isKubeStateChanging, kubeRequestInfo, upstreamHeaders } from './front-door.js';
import { rulesFor } from './rbac-sync.js';

describe('operationFor', () => {
  it.each([
    [{ verb: 'get', resource: 'pods', namespace: 'dev' }, 'Kubernetes Pod Get', 'dev'],
    [
      { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'dev' },
      'Kubernetes Pod Create',
      'dev',
    ],
    [
      { verb: 'deletecollection', resource: 'configmaps', namespace: 'x' },
      'Kubernetes Config Map Delete',
      'x',
    ],
    [
      { verb: 'list', resource: 'deployments', group: 'apps', namespace: '' },
      'Kubernetes Deployment List',
      '',
    ],
    [{ verb: 'list', resource: 'nodes', namespace: 'default' }, 'Kubernetes Node List', ''],
    [{ verb: 'delete', resource: 'namespaces', name: 'team-a' }, 'Kubernetes Namespace Delete', 'team-a'],
  ])('%j → %s on %j', (attrs, operation, namespace) => {
    expect(operationFor(attrs)).toEqual({ operation, namespace });
  });

  it('has no operation for unknown resources or verbs', () => {
    expect(operationFor({ verb: 'get', resource: 'widgets' })).toBeUndefined();
    expect(operationFor({ verb: 'escalate', resource: 'roles' })).toBeUndefined();
    expect(operationFor({})).toBeUndefined();
  });
});

describe('privileged pod options', () => {
  it('finds every option UCP gates, in pods and pod templates', () => {
    const spec = {
      hostNetwork: true,
      hostPID: true,
      hostIPC: true,
      volumes: [{ name: 'h', hostPath: { path: '/' } }],
      containers: [
        { securityContext: { privileged: true } },
        { securityContext: { capabilities: { add: ['NET_ADMIN'] }, allowPrivilegeEscalation: true } },
      ],
    };
    expect(privilegedParams(spec)).toEqual([
      'hostNetwork',
      'hostPID',
      'hostIPC',
      'hostPath volumes',
      'privileged',
      'allowPrivilegeEscalation',
      'added capabilities',
    ]);
    expect(podSpecOf({ kind: 'Deployment', spec: { template: { spec } } })).toBe(spec);
    expect(podSpecOf({ kind: 'CronJob', spec: { jobTemplate: { spec: { template: { spec } } } } })).toBe(
      spec,
    );
    expect(podSpecOf({ kind: 'ConfigMap' })).toBeUndefined();
    expect(privilegedParams({ containers: [{ securityContext: { privileged: false } }] })).toEqual([]);
  });
});

describe('rulesFor', () => {
  it('turns Kubernetes operations into RBAC rules with their subresources', () => {
    const role: RoleRecord = {
      id: 'r',
      name: 'r',
      system_role: false,
      operations: {
        'Kubernetes Pod': { 'Kubernetes Pod Get': [], 'Kubernetes Pod Create': [] },
        'Kubernetes Deployment': { 'Kubernetes Deployment Delete': [] },
        Container: { 'Container View': [] },
      },
    };
    expect(rulesFor(role)).toEqual([
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['delete', 'deletecollection'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] },
      { apiGroups: [''], resources: ['pods/attach'], verbs: ['create', 'get'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['create', 'get'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'get'] },
      { apiGroups: [''], resources: ['pods/status'], verbs: ['get'] },
    ]);
    const viewOnly = rulesFor(BUILTIN_ROLES.find((r) => r.id === 'viewonly')!);
    expect(viewOnly.every((rule) => rule.verbs.every((v) => ['get', 'list', 'watch'].includes(v)))).toBe(
      true,
    );
  });
});

describe('upstreamHeaders', () => {
  it('drops identity and hop-by-hop headers, asserts orca identity, passes Impersonate-*', () => {
    const headers = upstreamHeaders(
      {
        authorization: 'Bearer secret',
        'x-remote-user': 'admin',
        'x-remote-group': 'system:masters',
        'x-remote-extra-scopes': 'all',
        'impersonate-user': 'admin',
        'impersonate-group': 'system:masters',
        connection: 'keep-alive',
        host: 'orca:6443',
        accept: 'application/json',
      },
      { user: 'bob', groups: ['eng:dev', 'system:authenticated'] },
    );
    expect(headers).toEqual({
      accept: 'application/json',
      // The apiserver asks the authorizers whether bob may impersonate.
      'impersonate-user': 'admin',
      'impersonate-group': 'system:masters',
      'x-remote-user': 'bob',
      'x-remote-group': ['eng:dev', 'system:authenticated'],
    });
  });

  it("sends a reviewed token's extras as X-Remote-Extra-<escaped key>", () => {
    const headers = upstreamHeaders(
      {},
      {
        user: 'system:serviceaccount:ns:robot',
        uid: 'c0ffee',
        groups: ['system:serviceaccounts'],
        extra: { 'authentication.kubernetes.io/pod-name': ['web-1'], empty: [] },
      },
    );
    expect(headers['x-remote-extra-authentication.kubernetes.io%2Fpod-name']).toEqual(['web-1']);
    expect(headers['x-remote-uid']).toBe('c0ffee');
    expect(Object.keys(headers).filter((h) => h.includes('empty'))).toEqual([]);
    expect(extraHeaderKey('a b%c')).toBe('a%20b%25c');
  });
});

describe('kubeRequestInfo', () => {
  it('reads the resource, namespace, name and verb as the apiserver does', () => {
    expect(kubeRequestInfo('POST', '/api/v1/namespaces/ns/pods?dryRun=All')).toEqual({
      verb: 'create',
      group: '',
      resource: 'pods',
      subresource: '',
      namespace: 'ns',
      name: '',
    });
    expect(kubeRequestInfo('GET', '/api/v1/namespaces/ns/pods/web/exec?command=ls')).toMatchObject({
      verb: 'create',
      resource: 'pods',
      name: 'web',
      subresource: 'exec',
    });
    expect(kubeRequestInfo('DELETE', '/apis/apps/v1/namespaces/ns/deployments')).toMatchObject({
      verb: 'deletecollection',
      group: 'apps',
      resource: 'deployments',
    });
    expect(kubeRequestInfo('PUT', '/api/v1/namespaces/ns/finalize')).toMatchObject({
      resource: 'namespaces',
      name: 'ns',
      subresource: 'finalize',
    });
    expect(kubeRequestInfo('POST', '/version')).toBeUndefined();
    expect(isKubeStateChanging('GET', kubeRequestInfo('GET', '/api/v1/namespaces/ns/pods'))).toBe(false);
    expect(isKubeStateChanging('PATCH', kubeRequestInfo('PATCH', '/api/v1/nodes/n1'))).toBe(true);
  });
});

describe('kube settings (libs/config)', () => {
  const files = {
    ORCA_KUBE_CA_FILE: '/k/ca.pem',
    ORCA_KUBE_PROXY_CERT_FILE: '/k/proxy.crt',
    ORCA_KUBE_PROXY_KEY_FILE: '/k/proxy.key',
    ORCA_KUBE_ADMIN_CERT_FILE: '/k/admin.crt',
    ORCA_KUBE_ADMIN_KEY_FILE: '/k/admin.key',
  };

  it('is off without ORCA_KUBE_APISERVER, on with it (port 6443, webhook mode by default)', () => {
    expect(kubeConfigFrom({})).toBeUndefined();
    expect(kubeConfigFrom({ ORCA_KUBE_APISERVER: 'https://127.0.0.2:12388', ...files })).toEqual({
      port: 6443,
      apiserverUrl: 'https://127.0.0.2:12388',
      caFile: '/k/ca.pem',
      proxyCertFile: '/k/proxy.crt',
      proxyKeyFile: '/k/proxy.key',
      adminCertFile: '/k/admin.crt',
      adminKeyFile: '/k/admin.key',
      authorization: 'webhook',
    });
  });

  it.each([
    [{ ORCA_KUBE_APISERVER: 'http://x:1', ...files }, 'ORCA_KUBE_APISERVER'],
    [{ ORCA_KUBE_APISERVER: 'https://x:1' }, 'ORCA_KUBE_CA_FILE'],
    [{ ORCA_KUBE_APISERVER: 'https://x:1', ...files, ORCA_KUBE_PORT: '70000' }, 'ORCA_KUBE_PORT'],
    [
      { ORCA_KUBE_APISERVER: 'https://x:1', ...files, ORCA_KUBE_AUTHORIZATION: 'abac' },
      'ORCA_KUBE_AUTHORIZATION',
    ],
  ])('refuses %j naming %s', (env, setting) => {
    expect(() => kubeConfigFrom(env)).toThrow(ConfigError);
    expect(() => kubeConfigFrom(env)).toThrow(setting);
  });
});

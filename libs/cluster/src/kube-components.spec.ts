import { specHash } from '@orca/reconcile';
import { DEFAULT_COMPONENT_SETTINGS, desiredComponents } from './components.js';
import {
  KUBE_APISERVER_PORT,
  KUBE_COMPONENT_INPUTS,
  KUBE_COMPONENT_NAMES,
  kubeComponents,
  kubeFilePaths,
  kubeNodeFiles,
  kubeNodeName,
  kwokNode,
  type KubeNodeBundle,
} from './kube-components.js';
import type { ComponentSettings, NodeSpec } from './model.js';

const manager: NodeSpec = {
  id: 'node1abc',
  role: 'swarm-manager',
  hostname: 'Mgr_One',
  address: '127.0.0.1',
  runtime: 'process',
  facts: { certsDir: '/data/node', orcaCommand: ['orca'] },
  createdAt: '2026-01-01T00:00:00Z',
};
const binaries = {
  kubeApiserver: '/bin/kube-apiserver',
  kubeControllerManager: '/bin/kube-controller-manager',
  kubeScheduler: '/bin/kube-scheduler',
  kwok: '/bin/kwok',
  etcd: '/usr/bin/etcd',
};
const settings: ComponentSettings = {
  ...DEFAULT_COMPONENT_SETTINGS,
  controllerPort: 8443,
  kubernetes: {
    enabled: true,
    apiserverPort: KUBE_APISERVER_PORT,
    binaries,
    kvClientPort: 12379,
    kvPeerPort: 12380,
  },
};

const byName = (specs: { name: string; command: string[] }[], name: string) => {
  const spec = specs.find((s) => s.name === name);
  if (!spec) throw new Error(`no ${name}`);
  return spec.command;
};

describe('kubeComponents', () => {
  it('runs nothing when Kubernetes is off or on workers', () => {
    expect(kubeComponents(manager, DEFAULT_COMPONENT_SETTINGS)).toEqual([]);
    expect(
      kubeComponents(manager, { ...settings, kubernetes: { ...settings.kubernetes!, enabled: false } }),
    ).toEqual([]);
    expect(kubeComponents({ ...manager, role: 'swarm-worker' }, settings)).toEqual([]);
    // The docker runtime needs the image.
    const docker = {
      certMount: { type: 'volume' as const, source: 'v', target: '/etc/orca/node' },
      certsDir: '/etc/orca/node',
      kvUrl: 'https://127.0.0.1:12379',
    };
    expect(kubeComponents(manager, settings, docker)).toEqual([]);
  });

  it('gives a process manager ucp-kv and the control plane with the flags orca depends on', () => {
    const specs = desiredComponents(manager, settings);
    expect(specs.map((s) => s.name)).toEqual([
      'ucp-kv',
      'ucp-kube-apiserver',
      'ucp-kube-controller-manager',
      'ucp-kube-scheduler',
      'ucp-kwok',
    ]);
    const kv = byName(specs, 'ucp-kv');
    expect(kv[0]).toBe('/usr/bin/etcd');
    expect(kv).toEqual(
      expect.arrayContaining(['--listen-client-urls', 'https://127.0.0.1:12379', '--client-cert-auth']),
    );
    expect(kv).toContain('/data/node/kube-kv');

    const api = byName(specs, 'ucp-kube-apiserver');
    const files = kubeFilePaths('/data/node/kube');
    expect(api[0]).toBe('/bin/kube-apiserver');
    expect(api).toEqual(
      expect.arrayContaining([
        '--secure-port=12388',
        '--bind-address=127.0.0.1',
        `--client-ca-file=${files.ca}`,
        `--tls-cert-file=${files.apiserverCert}`,
        '--anonymous-auth=false',
        '--etcd-servers=https://127.0.0.1:12379',
        '--etcd-certfile=/data/node/cert.pem',
        '--etcd-prefix=/orca-kube',
        '--authorization-mode=Node,RBAC,Webhook',
        `--authorization-webhook-config-file=${files.authorizationWebhookKubeconfig}`,
        '--authorization-webhook-cache-authorized-ttl=0s',
        '--authorization-webhook-cache-unauthorized-ttl=0s',
        `--admission-control-config-file=${files.admissionConfig}`,
        `--requestheader-client-ca-file=${files.ca}`,
        '--requestheader-allowed-names=orca-front-proxy',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        `--authentication-config=${files.authenticationConfig}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--endpoint-reconciler-type=none',
      ]),
    );
    // The structured configuration replaces the flags (the apiserver refuses both together).
    expect(api.filter((flag) => flag.startsWith('--oidc-'))).toEqual([]);
    expect(byName(specs, 'ucp-kube-controller-manager')).toEqual(
      expect.arrayContaining([`--kubeconfig=${files.controllerManagerKubeconfig}`, '--secure-port=0']),
    );
    expect(byName(specs, 'ucp-kube-scheduler')).toEqual(
      expect.arrayContaining([`--kubeconfig=${files.schedulerKubeconfig}`, '--secure-port=0']),
    );
    expect(byName(specs, 'ucp-kwok')).toEqual(
      expect.arrayContaining([`--manage-single-node=mgr-one`, '--node-ip=127.0.0.1']),
    );
  });

  it('is pure: equal input, equal specs and hashes; a changed setting changes the hash', () => {
    const a = desiredComponents(manager, settings);
    const b = desiredComponents(structuredClone(manager), structuredClone(settings));
    expect(a.map(specHash)).toEqual(b.map(specHash));
    const moved = desiredComponents(manager, {
      ...settings,
      kubernetes: { ...settings.kubernetes!, apiserverPort: 22388 },
    });
    expect(specHash(byNameSpec(moved, 'ucp-kube-apiserver'))).not.toBe(
      specHash(byNameSpec(a, 'ucp-kube-apiserver')),
    );
    expect(specHash(byNameSpec(moved, 'ucp-kube-scheduler'))).toBe(
      specHash(byNameSpec(a, 'ucp-kube-scheduler')),
    );
  });

  it('gives a docker manager the image, the node-certs volume and the manager ucp-kv', () => {
    // A non-loopback manager address is what this case is about; it only computes flags, nothing is
    // sent to it (192.0.2.0/24 is RFC 5737's documentation range).
    const node: NodeSpec = { ...manager, runtime: 'docker', address: '192.0.2.5', facts: {} };
    const specs = desiredComponents(node, {
      ...settings,
      controllerPort: 443,
      kubernetes: { enabled: true, apiserverPort: 12388, image: 'orca/kube:v1.33.13' },
    });
    const api = byNameSpec(specs, 'ucp-kube-apiserver');
    expect(api.image).toBe('orca/kube:v1.33.13');
    expect(api.mounts).toEqual([
      { type: 'volume', source: 'ucp-node-certs', target: '/etc/orca/node', readOnly: true },
    ]);
    expect(api.command[0]).toBe('kube-apiserver');
    expect(api.command).toEqual(
      expect.arrayContaining([
        '--etcd-servers=https://192.0.2.5:12379',
        '--tls-cert-file=/etc/orca/node/kube/apiserver.pem',
        '--authentication-config=/etc/orca/node/kube/authentication.json',
      ]),
    );
    expect(api.command).not.toContain('--endpoint-reconciler-type=none');
    // The docker manager's ucp-kv is the cluster's store: no second one.
    expect(specs.filter((s) => s.name === 'ucp-kv')).toHaveLength(1);
    expect(specs.map((s) => s.name)).toEqual(expect.arrayContaining(['ucp-kwok', 'ucp-kube-scheduler']));
  });
});

function byNameSpec<T extends { name: string }>(specs: T[], name: string): T {
  const spec = specs.find((s) => s.name === name);
  if (!spec) throw new Error(`no ${name}`);
  return spec;
}

describe('kubeNodeFiles', () => {
  const pair = (n: string) => ({ certPem: `cert-${n}`, keyPem: `key-${n}` });
  const bundle: KubeNodeBundle = {
    material: {
      caPem: 'ca',
      apiserver: pair('api'),
      serviceAccount: { publicKeyPem: 'sa-pub', privateKeyPem: 'sa-key' },
      controllerManager: pair('cm'),
      scheduler: pair('sched'),
      kwok: pair('kwok'),
      webhookClient: pair('hook'),
    },
    apiserverUrl: 'https://127.0.0.1:12388',
    controllerUrl: 'https://127.0.0.1:8443',
  };

  it('writes keys 0600, kubeconfigs with inline data, and webhook configurations pointing at orca', () => {
    const files = kubeNodeFiles(bundle, '/k');
    const at = (path: string) => files.find((f) => f.path === path)!;
    const paths = kubeFilePaths('/k');
    expect(at(paths.apiserverKey)).toEqual({ path: paths.apiserverKey, content: 'key-api', mode: 0o600 });
    expect(at(paths.ca).mode).toBe(0o644);
    const cm = JSON.parse(at(paths.controllerManagerKubeconfig).content);
    expect(cm.clusters[0].cluster.server).toBe('https://127.0.0.1:12388');
    expect(Buffer.from(cm.users[0].user['client-key-data'], 'base64').toString()).toBe('key-cm');
    expect(at(paths.controllerManagerKubeconfig).mode).toBe(0o600);
    const authz = JSON.parse(at(paths.authorizationWebhookKubeconfig).content);
    expect(authz.clusters[0].cluster.server).toBe('https://127.0.0.1:8443/kube/webhooks/authorize');
    const admission = JSON.parse(at(paths.admissionConfig).content);
    expect(admission.plugins[0].configuration.kubeConfigFile).toBe(paths.admissionWebhookKubeconfig);
    expect(JSON.parse(at(paths.admissionWebhookKubeconfig).content).users[0].name).toBe('*');
    expect(kubeNodeFiles(bundle, '/k')).toEqual(files);
    // The agent takes the admission configuration's presence to mean every file is written.
    expect(files.at(-1)!.path).toBe(paths.admissionConfig);
  });

  it("writes the apiserver's AuthenticationConfiguration: the cluster issuer, discovery from its own controller", () => {
    const paths = kubeFilePaths('/k');
    const read = (b: KubeNodeBundle) => {
      const file = kubeNodeFiles(b, '/k').find((f) => f.path === paths.authenticationConfig)!;
      expect(file.mode).toBe(0o644);
      return JSON.parse(file.content);
    };
    const config = read({
      ...bundle,
      controllerUrl: 'https://127.0.0.2:9443',
      oidcIssuer: 'https://127.0.0.1:8443/oidc',
    });
    expect(config).toEqual({
      apiVersion: 'apiserver.config.k8s.io/v1beta1',
      kind: 'AuthenticationConfiguration',
      jwt: [
        {
          issuer: {
            url: 'https://127.0.0.1:8443/oidc',
            discoveryURL: 'https://127.0.0.2:9443/oidc/.well-known/openid-configuration',
            certificateAuthority: 'ca',
            audiences: ['kubernetes'],
          },
          // As --oidc-username-claim=preferred_username --oidc-username-prefix=- --oidc-groups-claim=groups.
          claimMappings: {
            username: { claim: 'preferred_username', prefix: '' },
            groups: { claim: 'groups', prefix: '' },
          },
        },
      ],
    });
    // Without a stored issuer (an older manager's answer): this manager's own, as before.
    expect(read(bundle).jwt[0].issuer.url).toBe('https://127.0.0.1:8443/oidc');
    // Kubernetes refuses a discoveryURL equal to the issuer URL; they differ even on the issuer's manager.
    expect(read(bundle).jwt[0].issuer.discoveryURL).not.toBe(read(bundle).jwt[0].issuer.url);
    // A changed issuer changes the file, and so the apiserver's inputs hash (it restarts).
    expect(read({ ...bundle, oidcIssuer: 'https://lb.example.com/oidc' })).not.toEqual(read(bundle));
    expect(KUBE_COMPONENT_INPUTS['ucp-kube-apiserver'].files).toContain('authenticationConfig');
  });
});

describe('kube node names', () => {
  it('makes a DNS label of the hostname, and a fake node kwok manages', () => {
    expect(kubeNodeName({ hostname: 'Mgr_One', id: 'x' })).toBe('mgr-one');
    expect(kubeNodeName({ hostname: '__', id: 'ABCdef' })).toBe('node-abcdef');
    const node = kwokNode({ hostname: 'vm', id: 'n1', address: '127.0.0.1' }) as {
      metadata: { name: string; annotations: Record<string, string> };
    };
    expect(node.metadata.name).toBe('vm');
    expect(node.metadata.annotations['kwok.x-k8s.io/node']).toBe('fake');
  });
});

describe('KUBE_COMPONENT_INPUTS', () => {
  it('names every Kubernetes file a component is started with, so a change to it restarts the component', () => {
    const specs = kubeComponents(manager, settings);
    const paths = kubeFilePaths('/data/node/kube');
    const fileOf = new Map(Object.entries(paths).map(([name, path]) => [path, name]));
    for (const name of KUBE_COMPONENT_NAMES) {
      const referenced = byName(specs, name)
        .map((arg) => arg.replace(/^--[^=]+=/, ''))
        .filter((value) => fileOf.has(value) && value !== paths.scratch)
        .map((value) => fileOf.get(value));
      expect([...KUBE_COMPONENT_INPUTS[name].files].sort()).toEqual(
        expect.arrayContaining([...new Set(referenced)].sort()),
      );
      // The node certificate (ucp-kv's client identity) only where the command uses it.
      expect(KUBE_COMPONENT_INPUTS[name].nodeCertificate).toBe(
        byName(specs, name).some((arg) => arg.endsWith('/data/node/cert.pem')),
      );
    }
  });
});

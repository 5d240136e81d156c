// The Kubernetes control plane as UCP components on a manager: ucp-kube-apiserver (on 12388),
// ucp-kube-controller-manager, ucp-kube-scheduler and ucp-kwok (fake nodes: there is no kubelet),
// plus, for the process runtime, ucp-kv (etcd) as Kubernetes' storage. Pure: a function of the
// node and the component settings, as desiredComponents is. The files the components read (the
// certificates and keys orca issued, kubeconfigs, the webhook configurations) are written by the
// node's agent from `kubeNodeFiles` before the components start.
import { DEFAULT_KUBE_WEBHOOK_PORT } from '@orca/config';
import type { ComponentMount, ComponentSpec } from '@orca/reconcile';
import { KUBE_SERVICE_CIDR, type CertAndKey, type KubeNodeMaterial } from './kube-pki.js';
import { ucpKvFlags } from './ucp-kv.js';
import type { ComponentSettings, KubernetesSettings, NodeSpec } from './model.js';

export const KUBE_APISERVER_PORT = 12388;
/** Where the apiserver keeps Kubernetes' objects in ucp-kv (orca's own keys are under /orca/v1). */
export const KUBE_ETCD_PREFIX = '/orca-kube';
/** UCP's NodePort range. */
export const KUBE_NODE_PORT_RANGE = '32768-35535';
/** Pod addresses kwok hands out (fake: nothing routes to them). */
export const KWOK_POD_CIDR = '10.244.0.0/24';
export const KUBE_COMPONENT_NAMES = [
  'ucp-kube-apiserver',
  'ucp-kube-controller-manager',
  'ucp-kube-scheduler',
  'ucp-kwok',
] as const;
/** The annotation kwok's fake nodes carry (what `kwokctl` puts on the nodes it creates). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
// libs/kube's AUTHORIZATION_WEBHOOK_PATH (libs/kube depends on this lib, not the reverse).
const AUTHORIZATION_WEBHOOK_PATH = '/kube/webhooks/authorize';

/** The files of a manager's Kubernetes components, all in one directory. */
export function kubeFilePaths(dir: string) {
  const at = (name: string) => `${dir}/${name}`;
  return {
    ca: at('ca.pem'),
    apiserverCert: at('apiserver.pem'),
    apiserverKey: at('apiserver-key.pem'),
    serviceAccountPublicKey: at('sa.pub'),
    serviceAccountPrivateKey: at('sa.key'),
    controllerManagerKubeconfig: at('controller-manager.kubeconfig'),
    schedulerKubeconfig: at('scheduler.kubeconfig'),
    kwokKubeconfig: at('kwok.kubeconfig'),
    kwokConfig: at('kwok.yaml'),
    authorizationWebhookKubeconfig: at('authorization-webhook.kubeconfig'),
    admissionWebhookKubeconfig: at('admission-webhook.kubeconfig'),
    admissionConfig: at('admission.json'),
    /** The apiserver's AuthenticationConfiguration: orca's OIDC issuer (kubeAuthenticationConfig). */
    authenticationConfig: at('authentication.json'),
    /** Scratch directory the apiserver and controller-manager may write to. */
    scratch: at('generated'),
  };
}

type KubeFileName = Exclude<keyof ReturnType<typeof kubeFilePaths>, 'scratch'>;

/**
 * What each Kubernetes component reads when it starts (and does not reload): its files in
 * kubeFilePaths, and for the apiserver the node certificate it talks to ucp-kv with. The agent
 * labels a component with a hash of these (KUBE_INPUTS_LABEL), so a renewed certificate or a
 * rewritten kubeconfig changes the component's spec hash and the reconciler restarts it.
 */
export const KUBE_COMPONENT_INPUTS: Readonly<
  Record<(typeof KUBE_COMPONENT_NAMES)[number], { files: readonly KubeFileName[]; nodeCertificate: boolean }>
> = {
  'ucp-kube-apiserver': {
    files: [
      'ca',
      'apiserverCert',
      'apiserverKey',
      'serviceAccountPublicKey',
      'serviceAccountPrivateKey',
      'authorizationWebhookKubeconfig',
      'admissionWebhookKubeconfig',
      'admissionConfig',
      'authenticationConfig',
    ],
    nodeCertificate: true,
  },
  'ucp-kube-controller-manager': {
    files: ['ca', 'controllerManagerKubeconfig', 'serviceAccountPrivateKey'],
    nodeCertificate: false,
  },
  'ucp-kube-scheduler': { files: ['schedulerKubeconfig'], nodeCertificate: false },
  'ucp-kwok': { files: ['kwokKubeconfig', 'kwokConfig'], nodeCertificate: false },
};

/** The label holding the hash of a component's input files (KUBE_COMPONENT_INPUTS). */
export const KUBE_INPUTS_LABEL = 'com.docker.ucp.orca.inputs';

/** The node's Kubernetes node name: its hostname as a DNS label, made unique by the node id. */
export function kubeNodeName(node: Pick<NodeSpec, 'hostname' | 'id'>): string {
  const label = node.hostname
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return label || `node-${node.id.toLowerCase().slice(0, 12)}`;
}

export function kubeEnabled(settings: ComponentSettings): settings is ComponentSettings & {
  kubernetes: KubernetesSettings;
} {
  return settings.kubernetes?.enabled === true;
}

/** `https://host:port`, bracketing IPv6 addresses. */
export function httpsUrl(host: string, port: number): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function kubeApiserverUrl(node: Pick<NodeSpec, 'address'>, settings: KubernetesSettings): string {
  return httpsUrl(node.address, settings.apiserverPort);
}

/** Where orca's controller on this manager listens: webhooks and the OIDC discovery its apiserver reads. */
export function managerControllerUrl(node: Pick<NodeSpec, 'address'>, settings: ComponentSettings): string {
  return httpsUrl(node.address, settings.controllerPort);
}

/** orca's own port (beside UCP's 12376-12388): the controller's Kubernetes webhooks, on their own thread. */
export const KUBE_WEBHOOK_PORT = DEFAULT_KUBE_WEBHOOK_PORT;

/** Where this manager's controller answers its apiserver's webhooks (their own port and thread). */
export function managerWebhookUrl(node: Pick<NodeSpec, 'address'>, settings: ComponentSettings): string {
  return httpsUrl(node.address, settings.kubernetes?.webhookPort ?? KUBE_WEBHOOK_PORT);
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

interface Layout {
  /** The node certificate's directory (ca.pem, cert.pem, key.pem) as the component sees it. */
  certsDir: string;
  /** The Kubernetes files' directory as the component sees it. */
  kubeDir: string;
  /** argv[0] per component: a binary path (process) or the command in the image (docker). */
  commands: { apiserver: string; controllerManager: string; scheduler: string; kwok: string };
  etcdServers: string;
}

function labels(node: NodeSpec, name: string): Record<string, string> {
  return {
    'com.docker.ucp.access.label': '/System',
    'com.docker.ucp.collection': 'system',
    'com.docker.ucp.collection.system': 'true',
    'com.docker.ucp.orca.role': node.role,
    'com.docker.ucp.orca.component.name': name,
  };
}

function apiserverArgs(node: NodeSpec, settings: ComponentSettings, layout: Layout): string[] {
  const kube = settings.kubernetes!;
  const files = kubeFilePaths(layout.kubeDir);
  return [
    `--bind-address=${node.address}`,
    `--advertise-address=${node.address}`,
    `--secure-port=${kube.apiserverPort}`,
    `--cert-dir=${files.scratch}`,
    `--tls-cert-file=${files.apiserverCert}`,
    `--tls-private-key-file=${files.apiserverKey}`,
    `--client-ca-file=${files.ca}`,
    '--anonymous-auth=false',
    `--etcd-servers=${layout.etcdServers}`,
    `--etcd-cafile=${layout.certsDir}/ca.pem`,
    `--etcd-certfile=${layout.certsDir}/cert.pem`,
    `--etcd-keyfile=${layout.certsDir}/key.pem`,
    `--etcd-prefix=${KUBE_ETCD_PREFIX}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${files.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${files.serviceAccountPrivateKey}`,
    `--service-cluster-ip-range=${KUBE_SERVICE_CIDR}`,
    `--service-node-port-range=${KUBE_NODE_PORT_RANGE}`,
    // Kubernetes' own components are answered by Node and bootstrap RBAC; orca's users by the webhook.
    '--authorization-mode=Node,RBAC,Webhook',
    `--authorization-webhook-config-file=${files.authorizationWebhookKubeconfig}`,
    '--authorization-webhook-version=v1',
    // As UCP ran it: a grant change applies to the next request.
    '--authorization-webhook-cache-authorized-ttl=0s',
    '--authorization-webhook-cache-unauthorized-ttl=0s',
    `--admission-control-config-file=${files.admissionConfig}`,
    // orca's front door on 6443 authenticates users and forwards them in these headers.
    `--requestheader-client-ca-file=${files.ca}`,
    '--requestheader-allowed-names=orca-front-proxy',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    // A service account's uid, when the front door forwards a token the apiserver reviewed.
    '--requestheader-uid-headers=X-Remote-Uid',
    // ID tokens from orca's OpenID Connect provider (`kubectl --token`): the cluster's issuer, its
    // discovery read from this manager's controller (kubeAuthenticationConfig). Replaces --oidc-*.
    `--authentication-config=${files.authenticationConfig}`,
    '--allow-privileged=true',
    '--kubelet-preferred-address-types=InternalIP',
    // A loopback address may not go into the `kubernetes` Endpoints (kwokctl does the same).
    ...(isLoopback(node.address) ? ['--endpoint-reconciler-type=none'] : []),
    '--profiling=false',
  ];
}

function controllerManagerArgs(layout: Layout): string[] {
  const files = kubeFilePaths(layout.kubeDir);
  return [
    `--kubeconfig=${files.controllerManagerKubeconfig}`,
    `--authentication-kubeconfig=${files.controllerManagerKubeconfig}`,
    `--authorization-kubeconfig=${files.controllerManagerKubeconfig}`,
    // No metrics or health port: the reconciler watches the process, and ports stay free.
    '--secure-port=0',
    `--cert-dir=${files.scratch}`,
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${files.serviceAccountPrivateKey}`,
    `--root-ca-file=${files.ca}`,
    `--service-cluster-ip-range=${KUBE_SERVICE_CIDR}`,
    // Above kwok's 40 s node lease, as kwokctl pairs them, so fake nodes never go NotReady.
    '--node-monitor-grace-period=3m20s',
    '--profiling=false',
  ];
}

function schedulerArgs(layout: Layout): string[] {
  const files = kubeFilePaths(layout.kubeDir);
  return [
    `--kubeconfig=${files.schedulerKubeconfig}`,
    `--authentication-kubeconfig=${files.schedulerKubeconfig}`,
    `--authorization-kubeconfig=${files.schedulerKubeconfig}`,
    '--secure-port=0',
    '--profiling=false',
  ];
}

function kwokArgs(node: NodeSpec, layout: Layout): string[] {
  const files = kubeFilePaths(layout.kubeDir);
  return [
    `--config=${files.kwokConfig}`,
    `--kubeconfig=${files.kwokKubeconfig}`,
    // One kwok per manager, each playing its own node's kubelet.
    `--manage-single-node=${kubeNodeName(node)}`,
    `--node-ip=${node.address}`,
    `--cidr=${KWOK_POD_CIDR}`,
    '--node-lease-duration-seconds=40',
  ];
}

/**
 * The manager's Kubernetes components, or none when Kubernetes is off or the node is a worker.
 * Process runtime: the binaries from the settings, files under `<certsDir>/kube`, and ucp-kv (etcd)
 * on the node as storage. Docker runtime: the Kubernetes image, files in the ucp-node-certs volume,
 * storage in the manager's ucp-kv.
 */
export function kubeComponents(
  node: NodeSpec,
  settings: ComponentSettings,
  docker?: { certMount: ComponentMount; certsDir: string; kvUrl: string },
): ComponentSpec[] {
  if (node.role !== 'swarm-manager' || !kubeEnabled(settings)) return [];
  const kube = settings.kubernetes;
  const extra = (name: string, args: string[]) => [...args, ...(settings.extraArgs[name] ?? [])];
  const base = (name: string, image: string, command: string[], mounts: ComponentMount[]): ComponentSpec => ({
    name,
    image,
    command: extra(name, command),
    env: {},
    mounts,
    ports: [],
    network: 'host',
    labels: labels(node, name),
    restartPolicy: 'always',
  });

  if (docker) {
    if (!kube.image) return [];
    const layout: Layout = {
      certsDir: docker.certsDir,
      kubeDir: `${docker.certsDir}/kube`,
      commands: {
        apiserver: 'kube-apiserver',
        controllerManager: 'kube-controller-manager',
        scheduler: 'kube-scheduler',
        kwok: 'kwok',
      },
      etcdServers: docker.kvUrl,
    };
    return kubeSpecs(node, settings, layout, (name, command) =>
      base(name, kube.image!, command, [docker.certMount]),
    );
  }

  const { certsDir } = node.facts;
  const binaries = kube.binaries;
  if (!certsDir || !binaries) return [];
  const kvPort = kube.kvClientPort ?? 12379;
  const kvPeerPort = kube.kvPeerPort ?? 12380;
  const layout: Layout = {
    certsDir,
    kubeDir: `${certsDir}/kube`,
    commands: {
      apiserver: binaries.kubeApiserver,
      controllerManager: binaries.kubeControllerManager,
      scheduler: binaries.kubeScheduler,
      kwok: binaries.kwok,
    },
    etcdServers: httpsUrl(node.address, kvPort),
  };
  const kvUrl = httpsUrl(node.address, kvPort);
  const peerUrl = httpsUrl(node.address, kvPeerPort);
  const kv = base(
    'ucp-kv',
    'process',
    [
      binaries.etcd,
      ...ucpKvFlags({ nodeId: node.id, dataDir: `${certsDir}/kube-kv`, certsDir, kvUrl, peerUrl }),
    ],
    [],
  );
  return [kv, ...kubeSpecs(node, settings, layout, (name, command) => base(name, 'process', command, []))];
}

function kubeSpecs(
  node: NodeSpec,
  settings: ComponentSettings,
  layout: Layout,
  make: (name: string, command: string[]) => ComponentSpec,
): ComponentSpec[] {
  const { commands } = layout;
  return [
    make('ucp-kube-apiserver', [commands.apiserver, ...apiserverArgs(node, settings, layout)]),
    make('ucp-kube-controller-manager', [commands.controllerManager, ...controllerManagerArgs(layout)]),
    make('ucp-kube-scheduler', [commands.scheduler, ...schedulerArgs(layout)]),
    make('ucp-kwok', [commands.kwok, ...kwokArgs(node, layout)]),
  ];
}

export interface KubeFile {
  /** Path as the components see it (`kubeFilePaths(dir)`). */
  path: string;
  content: string;
  /** 0600 for private keys and kubeconfigs holding one. */
  mode: number;
}

/** What the node API sends a manager's agent: the material plus the URLs the files point at. */
export interface KubeNodeBundle {
  material: KubeNodeMaterial;
  apiserverUrl: string;
  /** This manager's own controller (webhooks, and the OIDC discovery its apiserver reads). */
  controllerUrl: string;
  /** Where the controller answers the webhooks, when not on `controllerUrl` (managerWebhookUrl). */
  webhookUrl?: string;
  /** The cluster's OIDC issuer (the same on every manager); default `<controllerUrl>/oidc`. */
  oidcIssuer?: string;
}

/** The OIDC client kubectl's ID tokens are issued for (libs/oidc's KUBERNETES_CLIENT). */
export const KUBE_OIDC_AUDIENCE = 'kubernetes';

/**
 * The apiserver's AuthenticationConfiguration (--authentication-config, v1beta1 in Kubernetes
 * 1.33): tokens whose `iss` is the cluster's issuer, with discovery and JWKS fetched from this
 * manager's own controller (`discoveryURL`; the document it serves names the cluster issuer and
 * a jwks_uri on the same controller), so the apiserver needs no other manager. The user is the
 * token's preferred_username and the groups its `groups`, both unprefixed: what the former
 * `--oidc-username-claim=preferred_username --oidc-username-prefix=- --oidc-groups-claim=groups` gave.
 */
export function kubeAuthenticationConfig(options: {
  issuer: string;
  controllerUrl: string;
  caPem: string;
}): Record<string, unknown> {
  return {
    apiVersion: 'apiserver.config.k8s.io/v1beta1',
    kind: 'AuthenticationConfiguration',
    jwt: [
      {
        issuer: {
          url: options.issuer,
          discoveryURL: `${options.controllerUrl}/oidc/.well-known/openid-configuration`,
          certificateAuthority: options.caPem,
          audiences: [KUBE_OIDC_AUDIENCE],
        },
        claimMappings: {
          username: { claim: 'preferred_username', prefix: '' },
          groups: { claim: 'groups', prefix: '' },
        },
      },
    ],
  };
}

function kubeconfig(server: string, caPem: string, user: string, identity: CertAndKey): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // JSON is YAML: kubectl and the Go components read it as a kubeconfig. The data is inline so the
  // file means the same wherever it is mounted.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'orca', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [
        {
          name: user,
          user: {
            'client-certificate-data': b64(identity.certPem),
            'client-key-data': b64(identity.keyPem),
          },
        },
      ],
      contexts: [{ name: 'orca', context: { cluster: 'orca', user } }],
      'current-context': 'orca',
    },
    null,
    2,
  );
}

/** The files of `kubeFilePaths(dir)` for this material; pure, so equal input writes equal bytes. */
export function kubeNodeFiles(bundle: KubeNodeBundle, dir: string): KubeFile[] {
  const { material, apiserverUrl, controllerUrl } = bundle;
  const webhookUrl = bundle.webhookUrl ?? controllerUrl;
  const files = kubeFilePaths(dir);
  const publicFile = (path: string, content: string): KubeFile => ({ path, content, mode: 0o644 });
  const secretFile = (path: string, content: string): KubeFile => ({ path, content, mode: 0o600 });
  return [
    publicFile(files.ca, material.caPem),
    publicFile(files.apiserverCert, material.apiserver.certPem),
    secretFile(files.apiserverKey, material.apiserver.keyPem),
    publicFile(files.serviceAccountPublicKey, material.serviceAccount.publicKeyPem),
    secretFile(files.serviceAccountPrivateKey, material.serviceAccount.privateKeyPem),
    secretFile(
      files.controllerManagerKubeconfig,
      kubeconfig(apiserverUrl, material.caPem, 'system:kube-controller-manager', material.controllerManager),
    ),
    secretFile(
      files.schedulerKubeconfig,
      kubeconfig(apiserverUrl, material.caPem, 'system:kube-scheduler', material.scheduler),
    ),
    secretFile(files.kwokKubeconfig, kubeconfig(apiserverUrl, material.caPem, 'system:kwok', material.kwok)),
    // An explicit (empty) kwok configuration keeps ~/.kwok/kwok.yaml out of it.
    publicFile(
      files.kwokConfig,
      'apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n',
    ),
    secretFile(
      files.authorizationWebhookKubeconfig,
      kubeconfig(
        `${webhookUrl}${AUTHORIZATION_WEBHOOK_PATH}`,
        material.caPem,
        'kube-apiserver',
        material.webhookClient,
      ),
    ),
    // Admission webhooks find their client credentials by the webhook's host; '*' matches any.
    secretFile(
      files.admissionWebhookKubeconfig,
      kubeconfig(webhookUrl, material.caPem, '*', material.webhookClient),
    ),
    publicFile(
      files.authenticationConfig,
      JSON.stringify(
        kubeAuthenticationConfig({
          issuer: bundle.oidcIssuer ?? `${controllerUrl}/oidc`,
          controllerUrl,
          caPem: material.caPem,
        }),
        null,
        2,
      ),
    ),
    // Last: the agent takes this file's presence to mean all of them are written.
    publicFile(
      files.admissionConfig,
      JSON.stringify(
        {
          apiVersion: 'apiserver.config.k8s.io/v1',
          kind: 'AdmissionConfiguration',
          plugins: [
            {
              name: 'ValidatingAdmissionWebhook',
              configuration: {
                apiVersion: 'apiserver.config.k8s.io/v1',
                kind: 'WebhookAdmissionConfiguration',
                kubeConfigFile: files.admissionWebhookKubeconfig,
              },
            },
            {
              name: 'MutatingAdmissionWebhook',
              configuration: {
                apiVersion: 'apiserver.config.k8s.io/v1',
                kind: 'WebhookAdmissionConfiguration',
                kubeConfigFile: files.admissionWebhookKubeconfig,
              },
            },
          ],
        },
        null,
        2,
      ),
    ),
  ];
}

/** kwok's fake Node for a manager (kwok's documented node, untainted so user pods schedule on it). */
export function kwokNode(node: Pick<NodeSpec, 'hostname' | 'id' | 'address'>): Record<string, unknown> {
  const name = kubeNodeName(node);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', [KWOK_NODE_ANNOTATION]: 'fake' },
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'node-role.kubernetes.io/master': '',
        'com.docker.ucp.orca.node': node.id,
        type: 'kwok',
      },
    },
    // Without a provider id, cloud node controllers delete fake nodes (a kwok known issue).
    spec: { providerID: `kwok://${name}` },
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
      addresses: [{ type: 'InternalIP', address: node.address }],
      nodeInfo: {
        architecture: 'amd64',
        kubeletVersion: 'fake',
        kubeProxyVersion: 'fake',
        operatingSystem: 'linux',
      },
      phase: 'Running',
    },
  };
}

// The UCP components each node runs, by role: ucp-proxy everywhere; ucp-kv and ucp-controller on
// managers. A pure function of the node and the cluster's component settings, so the leader can
// recompute it at any time and a changed image or flag rolls out as a changed spec hash.
import type { ComponentSpec } from '@orca/reconcile';
import { kubeComponents } from './kube-components.js';
import { ucpKvFlags } from './ucp-kv.js';
import type { ComponentSettings, NodeSpec } from './model.js';

export const NODE_CERTS_VOLUME = 'ucp-node-certs';
export const KEK_VOLUME = 'ucp-kek';
export const KV_VOLUME = 'ucp-kv';
export const NODE_CERTS_DIR = '/etc/orca/node';
export const KEK_DIR = '/etc/orca/kek';
export const ENGINE_SOCKET_IN_CONTAINER = '/var/run/docker.sock';
export const PROXY_PORT = 12376;
export const KV_CLIENT_PORT = 12379;
export const KV_PEER_PORT = 12380;

export const DEFAULT_COMPONENT_SETTINGS: ComponentSettings = {
  images: { orca: 'orca/orca:latest', etcd: 'orca/etcd:latest' },
  extraArgs: {},
  controllerPort: 443,
};

const baseLabels = (node: NodeSpec, name: string): Record<string, string> => ({
  'com.docker.ucp.access.label': '/System',
  'com.docker.ucp.collection': 'system',
  'com.docker.ucp.collection.system': 'true',
  'com.docker.ucp.orca.role': node.role,
  'com.docker.ucp.orca.component.name': name,
});

function withExtraArgs(settings: ComponentSettings, name: string, command: string[]): string[] {
  return [...command, ...(settings.extraArgs[name] ?? [])];
}

export function desiredComponents(node: NodeSpec, settings: ComponentSettings): ComponentSpec[] {
  if (node.runtime === 'process') return processComponents(node, settings);
  const certMount = {
    type: 'volume' as const,
    source: NODE_CERTS_VOLUME,
    target: NODE_CERTS_DIR,
    readOnly: true,
  };
  const components: ComponentSpec[] = [];
  const socket = node.facts.engineSocket ?? '/var/run/docker.sock';

  components.push({
    name: 'ucp-proxy',
    image: settings.images.orca,
    command: withExtraArgs(settings, 'ucp-proxy', [
      'proxy',
      '--listen',
      `${node.address}:${PROXY_PORT}`,
      '--engine',
      ENGINE_SOCKET_IN_CONTAINER,
      '--certs',
      NODE_CERTS_DIR,
    ]),
    env: {},
    mounts: [certMount, { type: 'bind', source: socket, target: ENGINE_SOCKET_IN_CONTAINER }],
    ports: [],
    network: 'host',
    labels: baseLabels(node, 'ucp-proxy'),
    restartPolicy: 'always',
  });

  if (node.role !== 'swarm-manager') return components;

  const kvUrl = `https://${node.address}:${KV_CLIENT_PORT}`;
  const peerUrl = `https://${node.address}:${KV_PEER_PORT}`;
  components.push({
    name: 'ucp-kv',
    image: settings.images.etcd,
    // The etcd image's entrypoint is etcd: these are its arguments.
    command: withExtraArgs(settings, 'ucp-kv', [
      ...ucpKvFlags({ nodeId: node.id, dataDir: '/var/lib/etcd', certsDir: NODE_CERTS_DIR, kvUrl, peerUrl }),
    ]),
    env: { ETCD_UNSUPPORTED_ARCH: '' },
    mounts: [certMount, { type: 'volume', source: KV_VOLUME, target: '/var/lib/etcd' }],
    ports: [],
    network: 'host',
    labels: baseLabels(node, 'ucp-kv'),
    restartPolicy: 'always',
  });

  components.push({
    name: 'ucp-controller',
    image: settings.images.orca,
    command: withExtraArgs(settings, 'ucp-controller', ['controller']),
    env: {
      ORCA_HOST: node.address,
      ORCA_PORT: String(settings.controllerPort),
      ORCA_ETCD_ENDPOINTS: kvUrl,
      ORCA_ETCD_CA_FILE: `${NODE_CERTS_DIR}/ca.pem`,
      ORCA_ETCD_CERT_FILE: `${NODE_CERTS_DIR}/cert.pem`,
      ORCA_ETCD_KEY_FILE: `${NODE_CERTS_DIR}/key.pem`,
      ORCA_KEK_FILE: `${KEK_DIR}/kek`,
      ORCA_DATA_DIR: '/var/lib/orca',
      // Its own node's engine on the socket, as ucp-proxy reaches it: no second TLS hop.
      ORCA_LOCAL_ENGINE: ENGINE_SOCKET_IN_CONTAINER,
    },
    mounts: [
      certMount,
      { type: 'volume', source: KEK_VOLUME, target: KEK_DIR, readOnly: true },
      { type: 'bind', source: socket, target: ENGINE_SOCKET_IN_CONTAINER },
    ],
    ports: [],
    network: 'host',
    labels: baseLabels(node, 'ucp-controller'),
    restartPolicy: 'always',
  });
  components.push(...kubeComponents(node, settings, { certMount, certsDir: NODE_CERTS_DIR, kvUrl }));
  return components;
}

/**
 * The all-in-one start: the controller and the embedded store live in the `orca up` process itself,
 * so the process runtime runs the per-node component, ucp-proxy, when the node has an engine, and
 * on a manager the Kubernetes control plane when it is on (kube-components.ts).
 */
function processComponents(node: NodeSpec, settings: ComponentSettings): ComponentSpec[] {
  const { engineSocket, certsDir, orcaCommand } = node.facts;
  const kube = kubeComponents(node, settings);
  if (!engineSocket || !certsDir || !orcaCommand) return kube;
  return [
    {
      name: 'ucp-proxy',
      image: 'process',
      command: withExtraArgs(settings, 'ucp-proxy', [
        ...orcaCommand,
        'proxy',
        '--listen',
        `${node.address}:${PROXY_PORT}`,
        '--engine',
        engineSocket,
        '--certs',
        certsDir,
      ]),
      env: {},
      mounts: [],
      ports: [],
      network: 'host',
      labels: baseLabels(node, 'ucp-proxy'),
      restartPolicy: 'always',
    },
    ...kube,
  ];
}

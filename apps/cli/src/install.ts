// `orca install`: turns a Docker Engine into orca's first manager, as UCP's installer did. It puts
// the engine in swarm mode, creates the CAs and the manager's node identity, runs ucp-reconcile for
// the node (ucp-kv first, then the controller on it and ucp-proxy), and creates the global
// ucp-agent service that joins every other swarm node.
import {
  CertificateAuthorityService,
  componentSettings,
  desiredComponents,
  keys,
  newId,
  KEK_VOLUME,
  NODE_CERTS_VOLUME,
  KV_CLIENT_PORT,
  DEFAULT_COMPONENT_SETTINGS,
  KUBE_APISERVER_PORT,
  KUBE_COMPONENT_NAMES,
  type NodeSpec,
  type NodeCertRecord,
  type ComponentSettings,
} from '@orca/cluster';
import { NODE_CERT_DEFAULT_VALIDITY_MS } from '@orca/config';
import { ensureAdmin } from '@orca/identity';
import { Engine } from '@orca/engine';
import { createCsr, generateKeyPair } from '@orca/pki';
import { DockerRuntime, reconcileNode, type ComponentSpec } from '@orca/reconcile';
import { EmbeddedStore, openStore, type Store } from '@orca/store';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { httpsRequest } from '../../agent/src/https-json.js';
import { AGENT_SERVICE, AGENT_TOKEN_SECRET, secretLabels } from '../../agent/src/token-secret.js';
import { parse, UsageError } from './args.js';
import { ensureImages } from './images.js';

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

async function converge(
  engine: Engine,
  nodeId: string,
  desired: ComponentSpec[],
  log: (l: string) => void,
): Promise<void> {
  const result = await reconcileNode({ nodeId, desired, runtime: new DockerRuntime(engine), log });
  if (!result.converged) {
    const failed = result.actions
      .filter((a) => a.action === 'failed')
      .map((a) => `${a.component}: ${a.error}`);
    throw new Error(`reconcile exited with non-zero status: ${failed.join('; ')}`);
  }
}

export async function installCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    engine: { type: 'string' },
    address: { type: 'string' },
    'controller-port': { type: 'string', default: '443' },
    'engine-dir': { type: 'string' },
    'orca-image': { type: 'string' },
    'etcd-image': { type: 'string' },
    // The Kubernetes control plane on managers (off by default until install tests cover it).
    kubernetes: { type: 'boolean', default: false },
  });
  if (!values.engine) throw new UsageError('--engine SOCKET is required (the Docker Engine to install on)');
  const port = Number(values['controller-port']);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError('--controller-port must be a port number');
  const log = (line: string) => console.log(line);
  const engine = new Engine({ socketPath: values.engine });
  await engine.ping().catch((error: Error) => {
    throw new Error(`cannot reach the engine at ${values.engine}: ${error.message}`);
  });

  // 1. Swarm mode.
  let info = await engine.info();
  const address = values.address ?? (info.nodeAddr || '127.0.0.1');
  if (info.swarm.localNodeState !== 'active') {
    log(`Initialising swarm mode on ${address}`);
    await engine.swarmInit({ advertiseAddr: address, listenAddr: `${address}:2377`, dataPathAddr: address });
    info = await engine.info();
  }
  if (!info.swarm.controlAvailable)
    throw new Error('this engine is not a swarm manager; install on a manager');

  // 2. Images, built locally from deploy/.
  const { kube: kubeImage, ...images } = await ensureImages(
    values.engine,
    { orca: values['orca-image'], etcd: values['etcd-image'] },
    log,
    { kube: values.kubernetes },
  );
  const settings: ComponentSettings = {
    ...DEFAULT_COMPONENT_SETTINGS,
    images,
    controllerPort: port,
    ...(kubeImage
      ? { kubernetes: { enabled: true, apiserverPort: KUBE_APISERVER_PORT, image: kubeImage } }
      : {}),
  };

  // 3. The CAs, the join tokens and the first manager's identity, made in a scratch store and then
  //    written to ucp-kv once it runs (ucp-kv itself needs the manager's certificate to start).
  const scratchDir = mkdtempSync(join(tmpdir(), 'orca-install-'));
  const scratch = new EmbeddedStore({ dir: scratchDir });
  const kek = randomBytes(32).toString('base64');
  try {
    const cas = new CertificateAuthorityService(scratch, kek);
    const { cluster } = await cas.bootstrap(NODE_CERT_DEFAULT_VALIDITY_MS);
    const admin = await ensureAdmin(scratch, process.env.ORCA_ADMIN_PASSWORD || undefined);
    const node: NodeSpec = {
      id: newId(),
      role: 'swarm-manager',
      hostname: info.name,
      address,
      engineNodeId: info.swarmNodeId,
      runtime: 'docker',
      facts: { engineSocket: values.engine },
      createdAt: new Date().toISOString(),
    };
    const nodeKeys = await generateKeyPair();
    const issued = await (
      await cas.clusterAuthority()
    ).issueNodeCertificate({
      csrPem: await createCsr(nodeKeys),
      nodeId: node.id,
      role: node.role,
      clusterId: cluster.clusterId,
      hosts: [address, node.hostname, 'localhost', '127.0.0.1'],
      validityMs: cluster.nodeCertValidityMs,
    });
    const certRecord: NodeCertRecord = {
      state: 'ISSUED',
      certPem: issued.certPem,
      notAfter: issued.notAfter.toISOString(),
      updatedAt: new Date().toISOString(),
    };
    await scratch.put(keys.nodeSpec(node.id), JSON.stringify(node));
    await scratch.put(keys.nodeCert(node.id), JSON.stringify(certRecord));
    await scratch.put(keys.componentSettings, JSON.stringify(settings));
    const managerUrl = `https://${address}:${port}`;
    const caPem = await cas.clusterBundle();
    await engine.writeVolumeFiles(NODE_CERTS_VOLUME, images.orca, {
      'key.pem': { content: nodeKeys.privateKeyPem, mode: 0o600 },
      'cert.pem': { content: issued.certPem, mode: 0o644 },
      'ca.pem': { content: caPem, mode: 0o644 },
      'node.json': {
        content: JSON.stringify({ nodeId: node.id, role: node.role, managerUrl }, null, 2),
        mode: 0o644,
      },
    });
    await engine.writeVolumeFiles(KEK_VOLUME, images.orca, { kek: { content: kek, mode: 0o600 } });

    // 4. ucp-kv first, then copy the cluster into it.
    const planned = desiredComponents(node, settings);
    log(`Reconciling state of component ucp-kv on node ${node.id}`);
    await converge(
      engine,
      node.id,
      planned.filter((c) => c.name === 'ucp-kv'),
      log,
    );
    const kv: Store = await openStore({
      kind: 'etcd',
      endpoints: [`https://${address}:${KV_CLIENT_PORT}`],
      tls: { ca: caPem, cert: issued.certPem, key: nodeKeys.privateKeyPem },
    });
    try {
      await waitFor('ucp-kv to answer', 60_000, async () => {
        await kv.health();
        return true;
      });
      const existing = await kv.get(keys.cluster);
      if (existing) throw new Error('ucp-kv already holds an orca cluster; uninstall it first');
      const all = await scratch.range('/orca/');
      await kv.txn(
        [{ key: keys.cluster, target: 'createRevision', op: '=', value: 0 }],
        all.kvs.map((entry) => ({ type: 'put' as const, key: entry.key, value: entry.value })),
      );
      await kv.put(
        keys.nodeDesired(node.id),
        JSON.stringify({ components: desiredComponents(node, await componentSettings(kv)) }),
      );
      const tokens = await new CertificateAuthorityService(kv, kek).joinTokens();

      // 5. The rest of the manager's components; Kubernetes' wait for the agent, which writes their
      //    files first.
      const kubeNames: readonly string[] = KUBE_COMPONENT_NAMES;
      await converge(
        engine,
        node.id,
        planned.filter((c) => !kubeNames.includes(c.name)),
        log,
      );
      await waitFor('ucp-controller to answer /_ping', 90_000, async () => {
        const ping = await httpsRequest('GET', `${managerUrl}/_ping`, { ca: caPem }, undefined, 3000);
        return ping.status === 200;
      });
      log(`successfully reconciled state of node ${node.id}`);

      // 6. ucp-agent on every node of the swarm, joining with the worker token (a swarm secret).
      await createAgentService(engine, {
        image: images.orca,
        managerUrl,
        workerToken: tokens.worker,
        engineSocket: values.engine,
        engineDir: values['engine-dir'],
      });

      log('');
      log(`orca is installed. UCP: ${managerUrl}`);
      log(
        admin.generatedPassword
          ? `Log in as "admin" with the generated password: ${admin.generatedPassword} (shown only this once)`
          : 'Log in as "admin" with the password from ORCA_ADMIN_PASSWORD',
      );
      log(`Cluster id: ${cluster.clusterId}`);
      log(`Worker join token:  ${tokens.worker}`);
      log(`Manager join token: ${tokens.manager}`);
      log('Other engines join with `docker swarm join`; ucp-agent then joins them to orca.');
    } finally {
      await kv.close();
    }
  } finally {
    await scratch.close();
    rmSync(scratchDir, { recursive: true, force: true });
  }
  return 0;
}

export async function createAgentService(
  engine: Engine,
  options: {
    image: string;
    managerUrl: string;
    workerToken: string;
    engineSocket: string;
    engineDir?: string;
  },
): Promise<void> {
  for (const service of await engine.listServices()) {
    if (service.spec.name === AGENT_SERVICE) await engine.removeService(service.id);
  }
  for (const secret of await engine.listSecrets()) {
    if (secret.name === AGENT_TOKEN_SECRET || secret.name.startsWith(`${AGENT_TOKEN_SECRET}-`))
      await engine.removeSecret(secret.id);
  }
  const secretId = await engine.createSecret(
    AGENT_TOKEN_SECRET,
    options.workerToken,
    secretLabels(options.workerToken),
  );
  // One engine per host: mount its socket. Several engines on one host (tests): mount the directory
  // holding all their sockets; each agent picks the engine whose swarm node id is its own.
  const engineDir = options.engineDir ?? dirname(options.engineSocket);
  const env: Record<string, string> = {
    ORCA_MANAGER: options.managerUrl,
    ORCA_JOIN_TOKEN_FILE: `/run/secrets/${AGENT_TOKEN_SECRET}`,
    ORCA_SWARM_NODE_ID: '{{.Node.ID}}',
    ORCA_ENGINE_DIR: '/var/run/orca-engines',
    ORCA_HOST_ENGINE_DIR: engineDir,
    ORCA_STATE_DIR: '/etc/orca/node',
  };
  if (!options.engineDir) env.ORCA_ENGINE = `/var/run/orca-engines/${basename(options.engineSocket)}`;
  await engine.createService({
    name: AGENT_SERVICE,
    image: options.image,
    args: ['agent'],
    env,
    labels: { 'com.docker.ucp.orca.managed': 'true', 'com.docker.ucp.access.label': '/System' },
    mode: { global: true },
    networks: ['host'],
    mounts: [
      { type: 'bind', source: engineDir, target: '/var/run/orca-engines' },
      { type: 'volume', source: NODE_CERTS_VOLUME, target: '/etc/orca/node' },
    ],
    secrets: [{ secretId, secretName: AGENT_TOKEN_SECRET, target: AGENT_TOKEN_SECRET }],
    restartCondition: 'any',
  });
}

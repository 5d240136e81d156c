// `orca up` (what `npm start` runs): orca on this machine with no setup. The embedded store, the
// controller and the local node's agent live in this process; the agent runs the node's components
// (ucp-proxy, when a Docker Engine is reachable; the Kubernetes control plane, unless
// ORCA_KUBERNETES=false) through the process runtime.
import { Logger } from '@nestjs/common';
import { componentSettings, keys, type KubernetesSettings } from '@orca/cluster';
import { kubeComponentsFrom, loadControllerConfig, type ControllerConfig } from '@orca/config';
import { Engine } from '@orca/engine';
import { ProcessRuntime } from '@orca/reconcile';
import { openStore, type Store } from '@orca/store';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../agent/src/index.js';
import { resolveKek, startController } from '../../controller/src/index.js';
import { loadDtrConfig, startDtr } from '../../dtr/src/index.js';
import { parse } from './args.js';
import { untilSignal } from './components.js';
import { orcaCommand } from './self.js';

async function reachableEngine(socketPath: string): Promise<Engine | undefined> {
  if (!existsSync(socketPath)) return undefined;
  const engine = new Engine({ socketPath });
  try {
    await engine.ping();
    return engine;
  } catch {
    return undefined;
  }
}

interface KubeBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kwok: string;
}

/** The Kubernetes binaries scripts/kube-binaries.mjs built (npm start builds them), or why not. */
function kubeBinaries(): KubeBinaries | string {
  let root = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  const script = join(root, 'scripts', 'kube-binaries.mjs');
  if (!existsSync(script)) return `${script} not found`;
  const result = spawnSync(process.execPath, [script, '--paths'], { encoding: 'utf8' });
  if (result.status !== 0) return `${script} --paths failed`;
  const { kubeApiserver, kubeControllerManager, kubeScheduler, kwok } = JSON.parse(
    result.stdout,
  ) as KubeBinaries;
  const paths = { kubeApiserver, kubeControllerManager, kubeScheduler, kwok };
  const missing = Object.values(paths).filter((p) => !existsSync(p));
  if (missing.length > 0) return `not built (${missing.join(', ')}): run node scripts/kube-binaries.mjs`;
  return paths;
}

function etcdBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? resolve(path) : undefined;
}

/**
 * Writes this run's Kubernetes component settings into the store before the controller starts (it
 * reads them to find the apiserver). Returns why Kubernetes is off, or undefined when it is on.
 */
async function applyKubeSettings(store: Store, config: ControllerConfig): Promise<string | undefined> {
  const wanted = kubeComponentsFrom(process.env);
  let kubernetes: KubernetesSettings = { enabled: false, apiserverPort: wanted.apiserverPort };
  let off: string | undefined;
  if (!wanted.enabled) {
    off = process.env.ORCA_KUBE_APISERVER
      ? 'ORCA_KUBE_APISERVER names the apiserver'
      : 'ORCA_KUBERNETES=false';
  } else {
    const binaries = kubeBinaries();
    const etcd = etcdBinary();
    if (typeof binaries === 'string') off = `Kubernetes binaries ${binaries}`;
    else if (!etcd) off = "etcd is not installed (Debian's etcd-server)";
    else
      kubernetes = {
        enabled: true,
        apiserverPort: wanted.apiserverPort,
        kvClientPort: wanted.kvClientPort,
        kvPeerPort: wanted.kvPeerPort,
        webhookPort: wanted.webhookPort,
        binaries: { ...binaries, etcd },
      };
  }
  const current = await componentSettings(store);
  const next = { ...current, controllerPort: config.port, kubernetes };
  if (JSON.stringify(next) !== JSON.stringify(current))
    await store.put(keys.componentSettings, JSON.stringify(next));
  return off;
}

export async function upCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    engine: { type: 'string', default: process.env.ORCA_ENGINE ?? '/var/run/docker.sock' },
  });
  const overrides: Record<string, string> = {};
  if (values.port) overrides.ORCA_PORT = values.port;
  if (values.host) overrides.ORCA_HOST = values.host;
  if (values['data-dir']) overrides.ORCA_DATA_DIR = values['data-dir'];
  const engineSocket = values.engine as string;
  const engine = await reachableEngine(engineSocket);
  // The controller shares this node with the engine: the front door reaches it on its socket.
  if (engine && process.env.ORCA_LOCAL_ENGINE === undefined) overrides.ORCA_LOCAL_ENGINE = engineSocket;
  const config = loadControllerConfig(process.env, overrides);
  // The embedded store is opened here so the Kubernetes settings are in it before the controller starts.
  const store =
    config.store.kind === 'embedded'
      ? await openStore({ kind: 'embedded', dir: config.store.dir })
      : undefined;
  const kubeOff = store ? await applyKubeSettings(store, config) : 'the store is not the embedded one';
  const controller = await startController(config, { logger: new Logger('ucp-controller'), store });
  // DTR in the same process, on the same (embedded) store: ORCA_DTR_PORT, default 9443.
  const dtr = await startDtr(loadDtrConfig(process.env, { host: config.host, dataDir: config.dataDir }), {
    store: controller.store,
    kek: resolveKek(config),
    cas: controller.cas,
  });

  const stateDir = join(config.dataDir, 'node');
  const runtime = new ProcessRuntime({ stateDir: join(config.dataDir, 'processes') });
  const agent = new Agent({
    managerUrl: controller.url,
    token: (await controller.cas.joinTokens()).manager,
    stateDir,
    address: config.host,
    hostname: hostname(),
    runtime,
    runtimeKind: 'process',
    facts: {
      engineSocket: engine ? engineSocket : undefined,
      certsDir: stateDir,
      orcaCommand: orcaCommand(),
    },
    engineInfo: engine
      ? async () => {
          const info = await engine.info();
          return { version: info.serverVersion, swarmNodeId: info.swarmNodeId, reachable: true };
        }
      : undefined,
    log: (line) => console.log(line),
  });
  await agent.start();

  console.log('');
  console.log(`orca (UCP ${controller.url.replace('https://', '')}) is up`);
  console.log(`  UCP API and web:   ${controller.url}   (try: curl -k ${controller.url}/_ping)`);
  console.log(`  DTR registry/API:  ${dtr.url}   (docker login ${dtr.registryHost})`);
  console.log(`  data directory:    ${config.dataDir}`);
  console.log(
    `  local node:        ${agent.nodeId} (manager)${engine ? `, engine ${engineSocket}` : ', no Docker Engine reachable'}`,
  );
  if (controller.kube && !config.kube) {
    const kubeUrl = controller.url.replace(/:\d+$/, `:${controller.kube.port}`);
    console.log(
      `  Kubernetes:        ${kubeUrl}   (kubectl --kubeconfig kube.yml from a client bundle; apiserver, controller-manager, scheduler and kwok starting)`,
    );
  } else if (controller.kube) {
    console.log(
      `  Kubernetes:        front door on :${controller.kube.port} for ${config.kube?.apiserverUrl}`,
    );
  } else {
    console.log(`  Kubernetes:        off (${kubeOff})`);
  }
  if (controller.generatedAdminPassword) {
    console.log(`  log in as "admin" with the generated password: ${controller.generatedAdminPassword}`);
    console.log('  (shown only this once; set ORCA_ADMIN_PASSWORD before the first start to choose it)');
  } else {
    console.log('  log in as "admin" with the password set on the first start (ORCA_ADMIN_PASSWORD)');
  }
  console.log('  stop with Ctrl-C');

  await untilSignal();
  await agent.stop();
  // The local components belong to this run: stop them with it. First, so the apiserver's
  // keep-alive connections to the webhooks do not hold the controller's server open.
  for (const component of await runtime.list()) await runtime.remove(component.id).catch(() => undefined);
  await dtr.close();
  await controller.close();
  await store?.close();
  return 0;
}

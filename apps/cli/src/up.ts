// `orca up` (what `npm start` runs): orca on this machine with no setup. The embedded store, the
// controller and the local node's agent live in this process; the agent runs the node's components
// (ucp-proxy, when a Docker Engine is reachable) through the process runtime.
import { Logger } from '@nestjs/common';
import { loadControllerConfig } from '@orca/config';
import { Engine } from '@orca/engine';
import { ProcessRuntime } from '@orca/reconcile';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
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
  const config = loadControllerConfig(process.env, overrides);
  const controller = await startController(config, { logger: new Logger('ucp-controller') });
  // DTR in the same process, on the same (embedded) store: ORCA_DTR_PORT, default 9443.
  const dtr = await startDtr(loadDtrConfig(process.env, { host: config.host, dataDir: config.dataDir }), {
    store: controller.store,
    kek: resolveKek(config),
    cas: controller.cas,
  });

  const engineSocket = values.engine as string;
  const engine = await reachableEngine(engineSocket);
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
  if (controller.generatedAdminPassword) {
    console.log(`  log in as "admin" with the generated password: ${controller.generatedAdminPassword}`);
    console.log('  (shown only this once; set ORCA_ADMIN_PASSWORD before the first start to choose it)');
  } else {
    console.log('  log in as "admin" with the password set on the first start (ORCA_ADMIN_PASSWORD)');
  }
  console.log('  stop with Ctrl-C');

  await untilSignal();
  await agent.stop();
  // The local components belong to this run: stop them with it.
  for (const component of await runtime.list()) await runtime.remove(component.id).catch(() => undefined);
  await dtr.close();
  await controller.close();
  return 0;
}

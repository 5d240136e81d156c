// Subcommands that run one UCP component each (inside containers or as child processes).
import { Logger } from '@nestjs/common';
import { loadControllerConfig } from '@orca/config';
import { Engine } from '@orca/engine';
import { DockerRuntime, ProcessRuntime, type Runtime } from '@orca/reconcile';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { Agent, startProxy, syncAgentTokenSecret } from '../../agent/src/index.js';
import { startController } from '../../controller/src/index.js';
import { runReconcile } from '../../reconcile/src/main.js';
import { parse, UsageError } from './args.js';
import { orcaCommand } from './self.js';

/** Resolves when the process is asked to stop. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

export async function controllerCommand(argv: string[]): Promise<number> {
  parse(argv, {});
  const config = loadControllerConfig(process.env);
  const controller = await startController(config, { logger: new Logger('ucp-controller') });
  console.log(`ucp-controller: listening on ${controller.url}`);
  await untilSignal();
  await controller.close();
  return 0;
}

export async function proxyCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    listen: { type: 'string' },
    engine: { type: 'string', default: '/var/run/docker.sock' },
    certs: { type: 'string' },
    'idle-timeout': { type: 'string', default: '0' },
  });
  const idleTimeoutSeconds = Number(values['idle-timeout']);
  if (!Number.isInteger(idleTimeoutSeconds) || idleTimeoutSeconds < 0)
    throw new UsageError('--idle-timeout takes whole seconds');
  if (!values.listen || !values.certs)
    throw new UsageError('--listen HOST:PORT and --certs DIR are required');
  const colon = values.listen.lastIndexOf(':');
  const port = Number(values.listen.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port))
    throw new UsageError(`--listen "${values.listen}" is not HOST:PORT`);
  // The node certificate may not be there yet when the agent is still joining: wait for it.
  while (!existsSync(join(values.certs, 'node.json'))) await new Promise((r) => setTimeout(r, 500));
  const proxy = await startProxy({
    host: values.listen.slice(0, colon),
    port,
    engineSocket: values.engine as string,
    certsDir: values.certs,
    idleTimeoutMs: idleTimeoutSeconds * 1000,
  });
  await untilSignal();
  await proxy.close();
  return 0;
}

export async function reconcileCommand(argv: string[]): Promise<number> {
  return runReconcile(argv);
}

/**
 * Finds this node's engine among several sockets: the one whose swarm node id is ours. On a normal
 * host there is one engine; on a test machine several daemons share the filesystem.
 */
async function discoverEngine(dir: string, swarmNodeId: string): Promise<string> {
  const candidates = readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? [join(entry.name, 'docker.sock')]
      : entry.name.endsWith('.sock')
        ? [entry.name]
        : [],
  );
  for (const candidate of candidates) {
    const socketPath = join(dir, candidate);
    try {
      const info = await new Engine({ socketPath }).info();
      if (info.swarmNodeId === swarmNodeId) return socketPath;
    } catch {
      // not an engine, or not answering
    }
  }
  throw new UsageError(`no engine in ${dir} has swarm node id ${swarmNodeId}`);
}

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    manager: { type: 'string', default: process.env.ORCA_MANAGER },
    token: { type: 'string', default: process.env.ORCA_JOIN_TOKEN },
    'token-file': { type: 'string', default: process.env.ORCA_JOIN_TOKEN_FILE },
    engine: { type: 'string', default: process.env.ORCA_ENGINE },
    'engine-dir': { type: 'string', default: process.env.ORCA_ENGINE_DIR },
    'swarm-node-id': { type: 'string', default: process.env.ORCA_SWARM_NODE_ID },
    'host-engine': { type: 'string', default: process.env.ORCA_HOST_ENGINE },
    'host-engine-dir': { type: 'string', default: process.env.ORCA_HOST_ENGINE_DIR },
    state: { type: 'string', default: process.env.ORCA_STATE_DIR ?? '/etc/orca/node' },
    address: { type: 'string', default: process.env.ORCA_ADDRESS },
    runtime: { type: 'string', default: 'docker' },
    'state-dir': { type: 'string', default: process.env.ORCA_PROCESS_STATE_DIR },
  });
  if (!values.manager) throw new UsageError('--manager URL is required');
  let token = values.token;
  if (!token && values['token-file']) {
    const tokens = readFileSync(values['token-file'], 'utf8').trim();
    token = tokens;
  }
  let engineSocket = values.engine;
  if (!engineSocket && values['engine-dir'] && values['swarm-node-id']) {
    engineSocket = await discoverEngine(values['engine-dir'], values['swarm-node-id']);
  }
  const engine = engineSocket ? new Engine({ socketPath: engineSocket }) : undefined;
  const info = engine ? await engine.info() : undefined;
  const address = values.address ?? info?.nodeAddr ?? '127.0.0.1';
  let runtime: Runtime;
  let runtimeKind: 'docker' | 'process';
  if (values.runtime === 'docker') {
    if (!engine)
      throw new UsageError(
        '--engine SOCKET (or --engine-dir with --swarm-node-id) is required with the docker runtime',
      );
    runtime = new DockerRuntime(engine);
    runtimeKind = 'docker';
  } else if (values.runtime === 'process') {
    runtime = new ProcessRuntime({
      stateDir: values['state-dir'] ?? join(values.state as string, 'processes'),
    });
    runtimeKind = 'process';
  } else {
    throw new UsageError('--runtime must be docker or process');
  }
  // Inside a container the engine socket path is the container's; the host path goes into the plan.
  const hostEngineDir = values['host-engine-dir'];
  const hostEngine =
    values['host-engine'] ??
    (hostEngineDir && engineSocket && values['engine-dir']
      ? join(hostEngineDir, relative(values['engine-dir'], engineSocket))
      : engineSocket);
  const agent = new Agent({
    managerUrl: values.manager.replace(/\/$/, ''),
    token,
    stateDir: values.state as string,
    address,
    hostname: info?.name ?? hostname(),
    runtime,
    runtimeKind,
    engineNodeId: info?.swarmNodeId || undefined,
    facts:
      runtimeKind === 'docker'
        ? { engineSocket: hostEngine }
        : { engineSocket: hostEngine, certsDir: values.state, orcaCommand: orcaCommand() },
    engineInfo: engine
      ? async () => {
          const i = await engine.info();
          return { version: i.serverVersion, swarmNodeId: i.swarmNodeId, reachable: true };
        }
      : undefined,
    syncTokenSecret: engine
      ? async (workerToken) => {
          if (!(await engine.info()).swarm.controlAvailable) return 'not-a-swarm-manager';
          return syncAgentTokenSecret(engine, workerToken);
        }
      : undefined,
  });
  await agent.start();
  await untilSignal();
  await agent.stop();
  return 0;
}

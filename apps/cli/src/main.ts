// The orca command: one binary whose subcommands are the deployable processes (controller, agent,
// proxy, reconcile) and the operator's tools (up, install, join-token, nodes).
import 'reflect-metadata';
import { ConfigError } from '@orca/config';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';
import { agentCommand, controllerCommand, proxyCommand, reconcileCommand } from './components.js';
import { joinTokenCommand, nodesCommand } from './admin.js';
import { upCommand } from './up.js';
import { installCommand } from './install.js';

const USAGE = `usage: orca <command> [options]

commands:
  up                      start orca on this machine (embedded store, local defaults)
  install --engine SOCK   turn a Docker Engine into orca's first manager
  join-token worker|manager [--rotate]
                          print (or rotate) a join token
  nodes                   list the cluster's nodes
  agent                   run ucp-agent (join with --token, then heartbeat and reconcile)
  proxy                   run ucp-proxy (mutual-TLS access to this node's engine)
  controller              run ucp-controller (settings from ORCA_* environment variables)
  reconcile               run ucp-reconcile once for a node
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  up: upCommand,
  install: installCommand,
  'join-token': joinTokenCommand,
  nodes: nodesCommand,
  agent: agentCommand,
  proxy: proxyCommand,
  controller: controllerCommand,
  reconcile: reconcileCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`orca: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`orca ${name}: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`orca ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Long-running commands resolve only when they stop; short ones exit with their code.
      if (code !== -1) process.exit(code);
    },
    (error: Error) => {
      process.stderr.write(`orca: ${error.message}\n`);
      process.exit(1);
    },
  );
}

// ucp-reconcile: the one-shot converger. Reads the desired components, makes the node match, exits 0
// when converged and 1 otherwise (UCP's contract: it stays Exited(0) on a healthy node).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '@orca/engine';
import {
  DockerRuntime,
  ProcessRuntime,
  parseComponentSpec,
  reconcileNode,
  type ComponentSpec,
  type Runtime,
} from '@orca/reconcile';

export interface ReconcileIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Reads all of stdin (for `--desired -` or no --desired). */
  readStdin: () => Promise<string>;
}

const USAGE = `usage: ucp-reconcile --node <id> [--desired <file>|-]
         (--runtime docker [--engine <socket>] | --runtime process --state-dir <dir>)
The desired file is a JSON array of components, or {"components": [...]}; stdin when omitted.`;

const defaultIo: ReconcileIo = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** Runs ucp-reconcile with the given arguments (without node and script); resolves to the exit code. */
export async function runReconcile(argv: string[], io: ReconcileIo = defaultIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        desired: { type: 'string' },
        node: { type: 'string' },
        runtime: { type: 'string', default: 'docker' },
        engine: { type: 'string', default: '/var/run/docker.sock' },
        'state-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    io.stderr(`ucp-reconcile: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (!values.node) {
    io.stderr(`ucp-reconcile: --node is required\n${USAGE}`);
    return 1;
  }

  let desired: ComponentSpec[];
  let runtime: Runtime;
  try {
    const text =
      values.desired && values.desired !== '-' ? readFileSync(values.desired, 'utf8') : await io.readStdin();
    desired = parseDesired(text);
    runtime = makeRuntime(values.runtime!, values.engine!, values['state-dir']);
  } catch (err) {
    io.stderr(`ucp-reconcile: ${(err as Error).message}`);
    return 1;
  }

  const result = await reconcileNode({ nodeId: values.node, desired, runtime, log: io.stdout });
  if (result.converged) {
    io.stdout('Completed state reconciliation, system is ready.');
    return 0;
  }
  const failed = result.actions.filter((a) => a.action === 'failed');
  io.stderr(`ucp-reconcile: ${failed.length} component(s) did not converge on node ${values.node}:`);
  for (const f of failed) io.stderr(`  ${f.component}: ${f.error ?? 'failed'}`);
  return 1;
}

function parseDesired(text: string): ComponentSpec[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`desired state is not JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { components?: unknown })?.components;
  if (!Array.isArray(list))
    throw new Error('desired state must be an array of components or {"components": [...]}');
  return list.map((c, i) => parseComponentSpec(c, `component #${i}`));
}

function makeRuntime(kind: string, engine: string, stateDir: string | undefined): Runtime {
  if (kind === 'docker')
    return new DockerRuntime(new Engine({ socketPath: engine.replace(/^unix:\/\//, '') }));
  if (kind === 'process') {
    if (!stateDir) throw new Error('--runtime process needs --state-dir');
    return new ProcessRuntime({ stateDir });
  }
  throw new Error(`unknown runtime "${kind}" (docker or process)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runReconcile(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      process.stderr.write(`ucp-reconcile: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}

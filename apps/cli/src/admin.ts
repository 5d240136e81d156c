// Operator commands that talk to a running controller as the admin.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { adminRequest, type AdminClientOptions } from './api-client.js';
import { parse, UsageError } from './args.js';

const connection = {
  url: { type: 'string' as const, default: process.env.ORCA_URL ?? 'https://127.0.0.1:8443' },
  username: { type: 'string' as const, default: process.env.ORCA_USERNAME ?? 'admin' },
  password: { type: 'string' as const, default: process.env.ORCA_ADMIN_PASSWORD },
  'data-dir': { type: 'string' as const, default: process.env.ORCA_DATA_DIR ?? 'certs' },
};

function clientOptions(values: {
  url?: string;
  username?: string;
  password?: string;
  'data-dir'?: string;
}): AdminClientOptions {
  if (!values.password)
    throw new UsageError('the admin password is needed: --password or ORCA_ADMIN_PASSWORD');
  // A local run keeps the cluster CA beside its node identity: pin it when present.
  const caFile = join(resolve(values['data-dir'] ?? 'certs'), 'node', 'ca.pem');
  return {
    url: (values.url as string).replace(/\/$/, ''),
    username: values.username as string,
    password: values.password,
    ca: existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined,
  };
}

export async function joinTokenCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...connection,
    rotate: { type: 'boolean', default: false },
    quiet: { type: 'boolean', short: 'q', default: false },
  });
  const role = positionals[0];
  if (role !== 'worker' && role !== 'manager')
    throw new UsageError('usage: orca join-token worker|manager [--rotate]');
  const options = clientOptions(values);
  const tokens = values.rotate
    ? await adminRequest<{ Worker: string; Manager: string }>(
        options,
        'POST',
        `/api/orca/v1/jointokens/${role}/rotate`,
      )
    : await adminRequest<{ Worker: string; Manager: string }>(options, 'GET', '/api/orca/v1/jointokens');
  const token = role === 'worker' ? tokens.Worker : tokens.Manager;
  if (values.quiet) {
    console.log(token);
  } else {
    if (values.rotate) console.log(`Successfully rotated ${role} join token.\n`);
    console.log(`To add a ${role} to this cluster, run the following command:\n`);
    console.log(`    orca agent --token ${token} --manager ${options.url} --engine /var/run/docker.sock\n`);
  }
  return 0;
}

interface NodeRow {
  id: string;
  role: string;
  hostname: string;
  address: string;
  status: string;
  certificate: { state: string; notAfter?: string };
  components: { name: string; state: string }[];
}

export async function nodesCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...connection, json: { type: 'boolean', default: false } });
  const nodes = await adminRequest<NodeRow[]>(clientOptions(values), 'GET', '/api/orca/v1/nodes');
  if (values.json) {
    console.log(JSON.stringify(nodes, null, 2));
    return 0;
  }
  const rows = [['ID', 'HOSTNAME', 'ROLE', 'ADDRESS', 'STATUS', 'CERT EXPIRES', 'COMPONENTS']];
  for (const node of nodes) {
    rows.push([
      node.id,
      node.hostname,
      node.role === 'swarm-manager' ? 'manager' : 'worker',
      node.address,
      node.status,
      node.certificate.notAfter ?? node.certificate.state,
      node.components.map((c) => `${c.name}=${c.state}`).join(',') || '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
  return 0;
}

// The node's identity on disk: key, certificate, CA bundle and its id/role. Written atomically
// (temp file + rename) so an agent killed at any moment never leaves a half-written certificate.
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeIdentity {
  nodeId: string;
  role: 'swarm-manager' | 'swarm-worker';
  managerUrl: string;
  keyPem: string;
  certPem: string;
  caPem: string;
}

function writeAtomic(path: string, content: string, mode: number): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, content, { mode });
  renameSync(temp, path);
}

export function loadIdentity(dir: string): NodeIdentity | undefined {
  const meta = join(dir, 'node.json');
  if (!existsSync(meta)) return undefined;
  const { nodeId, role, managerUrl } = JSON.parse(readFileSync(meta, 'utf8')) as Pick<
    NodeIdentity,
    'nodeId' | 'role' | 'managerUrl'
  >;
  return {
    nodeId,
    role,
    managerUrl,
    keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
    certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
  };
}

export function saveIdentity(dir: string, identity: NodeIdentity): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomic(join(dir, 'key.pem'), identity.keyPem, 0o600);
  writeAtomic(join(dir, 'cert.pem'), identity.certPem, 0o644);
  writeAtomic(join(dir, 'ca.pem'), identity.caPem, 0o644);
  // node.json last: its presence means the rest is complete.
  writeAtomic(
    join(dir, 'node.json'),
    JSON.stringify(
      { nodeId: identity.nodeId, role: identity.role, managerUrl: identity.managerUrl },
      null,
      2,
    ),
    0o644,
  );
}

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { CertificateAuthority, createCsr, createRootCa, generateKeyPair, type NodeRole } from './index.js';

interface Identity {
  key: string;
  cert: string;
  ca: string;
}

// swarmkit NewServerTLSConfig/NewClientTLSConfig: TLS >= 1.2, ECDHE + AES-GCM only.
const SWARM_TLS = {
  minVersion: 'TLSv1.2' as const,
  ciphers:
    'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
};

async function nodeIdentity(ca: CertificateAuthority, nodeId: string, role: NodeRole): Promise<Identity> {
  const keys = await generateKeyPair();
  const { certPem } = await ca.issueNodeCertificate({
    csrPem: await createCsr(keys),
    nodeId,
    role,
    clusterId: 'cluster-tls',
    hosts: ['127.0.0.1'],
  });
  return { key: keys.privateKeyPem, cert: certPem, ca: ca.bundlePem };
}

interface Outcome {
  /** What the client read from the server: present only when both sides accepted. */
  received?: string;
  serverSawClient?: { CN?: string; OU?: string };
  clientSawServer?: { CN?: string; OU?: string };
  serverError?: string;
  /** Set when the server was told not to reject, to see why it would have. */
  serverAuthorizationError?: string;
  clientError?: string;
}

async function handshake(
  server: Identity,
  client: Identity,
  { servername = 'swarm-manager', serverRejects = true } = {},
): Promise<Outcome> {
  const outcome: Outcome = {};
  const srv = tls.createServer(
    {
      ...SWARM_TLS,
      key: server.key,
      cert: server.cert,
      ca: server.ca,
      requestCert: true,
      rejectUnauthorized: serverRejects,
    },
    (socket) => {
      if (!socket.authorized) {
        outcome.serverAuthorizationError = String(socket.authorizationError);
        socket.destroy();
        return;
      }
      const peer = socket.getPeerCertificate();
      outcome.serverSawClient = { CN: peer.subject?.CN as string, OU: peer.subject?.OU as string };
      socket.end('hello');
    },
  );
  srv.on('tlsClientError', (err) => (outcome.serverError = err.message));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const sock = tls.connect({
        ...SWARM_TLS,
        host: '127.0.0.1',
        port,
        servername,
        key: client.key,
        cert: client.cert,
        ca: client.ca,
        rejectUnauthorized: true,
      });
      let data = '';
      sock.on('secureConnect', () => {
        const peer = sock.getPeerCertificate();
        outcome.clientSawServer = { CN: peer.subject?.CN as string, OU: peer.subject?.OU as string };
      });
      sock.on('data', (chunk: Buffer) => (data += chunk.toString()));
      sock.on('error', (err) => (outcome.clientError = err.message));
      sock.on('close', () => {
        if (data) outcome.received = data;
        resolve();
      });
    });
  } finally {
    srv.close();
  }
  return outcome;
}

describe('mutual TLS with node certificates', () => {
  let clusterCa: CertificateAuthority;
  let foreignCa: CertificateAuthority;
  let manager: Identity;
  let worker: Identity;

  beforeAll(async () => {
    [clusterCa, foreignCa] = (
      await Promise.all([createRootCa({ commonName: 'swarm-ca' }), createRootCa({ commonName: 'swarm-ca' })])
    ).map((m) => new CertificateAuthority(m)) as [CertificateAuthority, CertificateAuthority];
    [manager, worker] = await Promise.all([
      nodeIdentity(clusterCa, 'manager-1', 'swarm-manager'),
      nodeIdentity(clusterCa, 'worker-1', 'swarm-worker'),
    ]);
  });

  it('manager (server) and worker (client) authenticate each other', async () => {
    const outcome = await handshake(manager, worker);
    expect(outcome).toEqual({
      received: 'hello',
      serverSawClient: { CN: 'worker-1', OU: 'swarm-worker' },
      clientSawServer: { CN: 'manager-1', OU: 'swarm-manager' },
    });
  });

  it('a manager also answers to the swarm-ca name used for the first CSR', async () => {
    expect((await handshake(manager, worker, { servername: 'swarm-ca' })).received).toBe('hello');
  });

  it('a worker certificate cannot serve as a manager (no swarm-manager SAN)', async () => {
    const outcome = await handshake(worker, manager);
    expect(outcome.received).toBeUndefined();
    expect(outcome.clientError).toMatch(/altnames|Hostname/i);
  });

  it('the server refuses a client certificate from a foreign CA with the same CN', async () => {
    const intruder = await nodeIdentity(foreignCa, 'worker-x', 'swarm-worker');
    const outcome = await handshake(manager, { ...intruder, ca: clusterCa.bundlePem });
    expect(outcome.received).toBeUndefined();
    expect(outcome.serverSawClient).toBeUndefined();
    expect(outcome.serverError).toBeDefined();
    // The reason node:tls gives when asked not to hang up on it.
    const why = await handshake(manager, { ...intruder, ca: clusterCa.bundlePem }, { serverRejects: false });
    expect(why.serverAuthorizationError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(why.received).toBeUndefined();
  });

  it('the client refuses a server certificate from a foreign CA', async () => {
    const fakeManager = await nodeIdentity(foreignCa, 'manager-x', 'swarm-manager');
    const outcome = await handshake({ ...fakeManager, ca: clusterCa.bundlePem }, worker);
    expect(outcome.received).toBeUndefined();
    expect(outcome.clientError).toMatch(/certificate/i);
  });
});

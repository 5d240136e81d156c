// EnginePool's routing between a node's ucp-proxy (mutual TLS) and the local engine's socket, with
// two real servers on loopback standing in for them: the socket is used only for the node whose
// swarm node id the engine on it reports, for GETs, other requests and hijacked connections alike.
import { CertificateAuthority, createRootCa } from '@orca/pki';
import { issueTestIdentity } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnginePool, readAll, type EngineCredentials } from './engines.js';

/** Answers who it is, the request line, and its swarm node id on /info. */
function engineHandler(name: string, swarmNodeId: string) {
  return (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/info') res.end(JSON.stringify({ Swarm: { NodeID: swarmNodeId } }));
    else res.end(JSON.stringify({ served: name, method: req.method, url: req.url }));
  };
}

function echoUpgrade(name: string) {
  return (_req: IncomingMessage, socket: Socket) => {
    socket.end(`HTTP/1.1 101 UPGRADED\r\nContent-Type: text/plain\r\n\r\n${name}`);
  };
}

describe('EnginePool with a local engine socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orca-engines-'));
  const socketPath = join(dir, 'docker.sock');
  let local: HttpServer;
  let proxy: HttpsServer;
  let proxyPort: number;
  let credentials: EngineCredentials;

  beforeAll(async () => {
    const ca = new CertificateAuthority(await createRootCa({ commonName: 'test-cluster' }));
    const issue = async (commonName: string) => {
      const { cert, key } = await issueTestIdentity(ca, commonName, ['127.0.0.1']);
      return { certPem: cert, keyPem: key };
    };
    const serving = await issue('127.0.0.1');
    const controller = await issue('controller');
    credentials = { caPem: ca.bundlePem, ...controller };
    local = createHttpServer(engineHandler('local', 'node-local'));
    local.on('upgrade', echoUpgrade('local'));
    await new Promise<void>((resolve) => local.listen(socketPath, () => resolve()));
    proxy = createHttpsServer(
      {
        key: serving.keyPem,
        cert: serving.certPem,
        ca: ca.bundlePem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      engineHandler('ucp-proxy', 'node-remote'),
    );
    proxy.on('upgrade', echoUpgrade('ucp-proxy'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    proxyPort = (proxy.address() as AddressInfo).port;
  });

  afterAll(async () => {
    local.closeAllConnections();
    proxy.closeAllConnections();
    await new Promise((resolve) => local.close(resolve));
    await new Promise((resolve) => proxy.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const localNode = { name: 'manager', address: '127.0.0.1', engineNodeId: 'node-local' };
  const otherNode = { name: 'worker', address: '127.0.0.1', engineNodeId: 'node-remote' };

  async function served(pool: EnginePool, node: typeof localNode): Promise<string[]> {
    const get = await pool.json<{ served: string }>(node, 'GET', '/services');
    const post = await pool.json<{ served: string; method: string }>(node, 'POST', '/containers/create', {});
    const hijacked = await pool.connect(node);
    hijacked.end(
      'POST /exec/x/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
    );
    const answer = (await readAll(hijacked)).toString('utf8');
    expect(post.body.method).toBe('POST');
    return [get.body.served, post.body.served, answer.slice(answer.indexOf('\r\n\r\n') + 4)];
  }

  it("sends the local node's calls to the socket and the others' to ucp-proxy", async () => {
    const pool = new EnginePool(async () => credentials, proxyPort, socketPath);
    try {
      expect(await served(pool, localNode)).toEqual(['local', 'local', 'local']);
      expect(await served(pool, otherNode)).toEqual(['ucp-proxy', 'ucp-proxy', 'ucp-proxy']);
      // A node without a known swarm node id never takes the shortcut.
      expect(await served(pool, { ...localNode, engineNodeId: '' })).toEqual([
        'ucp-proxy',
        'ucp-proxy',
        'ucp-proxy',
      ]);
    } finally {
      pool.close();
    }
  });

  it('keeps to ucp-proxy when the socket is not there or there is none', async () => {
    for (const pool of [
      new EnginePool(async () => credentials, proxyPort, join(dir, 'missing.sock')),
      new EnginePool(async () => credentials, proxyPort),
    ]) {
      try {
        expect(await served(pool, localNode)).toEqual(['ucp-proxy', 'ucp-proxy', 'ucp-proxy']);
      } finally {
        pool.close();
      }
    }
  });
});

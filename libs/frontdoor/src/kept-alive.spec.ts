// The front door's own GET client against a real Node HTTPS server on loopback (mutual TLS, as
// ucp-proxy asks): Content-Length and chunked answers, bodiless answers, connection reuse, a kept-
// alive connection the server closed meanwhile, and an engine that does not answer; and the same
// client over a unix socket, as the controller reaches its own node's engine.
import { CertificateAuthority, createRootCa } from '@orca/pki';
import { issueTestIdentity } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeptAliveConnections } from './kept-alive.js';

describe('KeptAliveConnections', () => {
  let server: Server;
  let connections: KeptAliveConnections;
  let opened = 0;

  beforeAll(async () => {
    const ca = new CertificateAuthority(await createRootCa({ commonName: 'test-cluster' }));
    const issue = async (commonName: string) => ({
      ca: ca.bundlePem,
      ...(await issueTestIdentity(ca, commonName, ['127.0.0.1'])),
    });
    const serving = await issue('127.0.0.1');
    const client = await issue('controller');
    server = createServer({ ...serving, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const url = req.url ?? '/';
      if (url === '/length') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ hello: 'world' }));
      } else if (url.startsWith('/chunked')) {
        const count = Number(new URL(url, 'http://x').searchParams.get('n') ?? 3);
        res.setHeader('Content-Type', 'application/json');
        res.write('[');
        for (let i = 0; i < count; i++) res.write(`${i ? ',' : ''}"${'x'.repeat(5000)}${i}"`);
        res.end(']');
      } else if (url === '/empty') {
        res.statusCode = 204;
        res.end();
      } else if (url === '/missing') {
        res.statusCode = 404;
        res.end('{"message":"no such thing"}');
      } else if (url === '/silent') {
        // never answers
      } else {
        res.statusCode = 400;
        res.end();
      }
    });
    server.on('secureConnection', () => opened++);
    server.keepAliveTimeout = 300;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    connections = new KeptAliveConnections({
      host: '127.0.0.1',
      port,
      ...client,
      checkServerIdentity: () => undefined,
    });
  });

  afterAll(async () => {
    connections.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads Content-Length and chunked answers, and reuses the connection', async () => {
    const before = opened;
    const first = await connections.get('/length', 5000);
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json');
    expect(JSON.parse(first.body.toString())).toEqual({ hello: 'world' });
    const chunked = await connections.get('/chunked?n=40', 5000);
    expect(chunked.headers['transfer-encoding']).toBe('chunked');
    const items = JSON.parse(chunked.body.toString()) as string[];
    expect(items).toHaveLength(40);
    expect(items[39]).toBe(`${'x'.repeat(5000)}39`);
    expect((await connections.get('/empty', 5000)).status).toBe(204);
    const missing = await connections.get('/missing', 5000);
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toContain('no such thing');
    expect(opened - before).toBe(1);
  });

  it('answers concurrent GETs on several connections', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => connections.get(`/chunked?n=${i + 1}`, 5000)),
    );
    answers.forEach((a, i) => expect(JSON.parse(a.body.toString())).toHaveLength(i + 1));
  });

  it('sends again when the server closed the idle connection meanwhile', async () => {
    await connections.get('/length', 5000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const answer = await connections.get('/length', 5000);
    expect(answer.status).toBe(200);
  });

  it('gives up on an engine that does not answer', async () => {
    await expect(connections.get('/silent', 200)).rejects.toThrow('no answer within 200 ms');
    expect((await connections.get('/length', 5000)).status).toBe(200);
  });

  it('refuses paths that would break the request line', async () => {
    await expect(connections.get('/a b', 5000)).rejects.toThrow('invalid request path');
  });
});

describe('KeptAliveConnections over a unix socket (the local engine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orca-kept-alive-'));
  const socketPath = join(dir, 'engine.sock');
  let server: HttpServer;
  let opened = 0;

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
    });
    server.on('connection', () => opened++);
    await new Promise<void>((resolve) => server.listen(socketPath, () => resolve()));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers GETs on one kept-alive connection, Host docker as the engine expects', async () => {
    const connections = new KeptAliveConnections({ socketPath });
    try {
      const before = opened;
      for (const path of ['/_ping', '/services', '/containers/json?all=1']) {
        const answer = await connections.get(path, 5000);
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body.toString())).toEqual({ path, host: 'docker' });
      }
      expect(opened - before).toBe(1);
    } finally {
      connections.close();
    }
  });

  it('fails cleanly when nothing listens on the socket', async () => {
    const connections = new KeptAliveConnections({ socketPath: join(dir, 'missing.sock') });
    await expect(connections.get('/_ping', 1000)).rejects.toThrow(/ENOENT/);
  });
});

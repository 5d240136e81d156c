// The join flow end to end against a real controller on the embedded store: CA pinning, tokens,
// CSR checks, mutual-TLS renewal and heartbeats, and the errors each bad input gets.
import { loadControllerConfig } from '@orca/config';
import { CertificateAuthority, createCsr, createRootCa, generateKeyPair, parseCertificate } from '@orca/pki';
import { ProcessRuntime } from '@orca/reconcile';
import { freePort } from '@orca/testing';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetchPinnedCa, joinCluster } from '../../agent/src/agent.js';
import { loadIdentity } from '../../agent/src/node-identity.js';
import { httpsJson, httpsRequest, HttpError } from '../../agent/src/https-json.js';
import { startController, type RunningController } from './controller.js';

describe('controller join API (embedded store)', () => {
  let dir: string;
  let controller: RunningController;
  let url: string;
  const admin = Buffer.from('admin:orca-admin-pass').toString('base64');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-join-'));
    const port = await freePort();
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(port),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
        ORCA_NODE_DOWN_AFTER: '2s',
      }),
    );
    url = controller.url;
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const joinNode = async (token: string) =>
    joinCluster({
      managerUrl: url,
      token,
      address: '127.0.0.9',
      hostname: 'node-a',
      runtimeKind: 'process',
      caAttempts: 1,
    });

  it('serves /_ping and a ucp/ version', async () => {
    const ping = await httpsRequest('GET', `${url}/_ping`, { insecure: true });
    expect(ping).toEqual({ status: 200, text: 'OK' });
    const version = await httpsJson<{ Version: string }>('GET', `${url}/version`, { insecure: true });
    expect(version.Version).toMatch(/^ucp\//);
  });

  it('joins a worker with the worker token: certificate from the cluster CA with the right fields', async () => {
    const tokens = await controller.cas.joinTokens();
    expect(tokens.worker).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const identity = await joinNode(tokens.worker);
    expect(identity.role).toBe('swarm-worker');
    const cert = parseCertificate(identity.certPem);
    const cluster = await controller.cas.cluster();
    expect(cert.subject).toMatchObject({ CN: identity.nodeId, OU: 'swarm-worker', O: cluster.clusterId });
    expect(cert.issuerCN).toBe('swarm-ca');
    const files = mkdtempSync(join(tmpdir(), 'orca-verify-'));
    writeFileSync(join(files, 'ca.pem'), identity.caPem);
    writeFileSync(join(files, 'cert.pem'), identity.certPem);
    expect(
      execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(files, 'ca.pem'),
        join(files, 'cert.pem'),
      ]).toString(),
    ).toContain('OK');
    rmSync(files, { recursive: true, force: true });
  });

  it('gives a manager certificate only for the manager token, whatever the CSR asks', async () => {
    const tokens = await controller.cas.joinTokens();
    const keys = await generateKeyPair();
    const csr = await createCsr({ ...keys, commonName: 'swarm-manager' });
    const ca = await fetchPinnedCa(url, tokens.worker, 1);
    const issued = await httpsJson<{ certificate: string; role: string }>(
      'POST',
      `${url}/api/orca/v1/join`,
      { ca },
      {
        token: tokens.worker,
        csr,
        hostname: 'sneaky',
        address: '127.0.0.10',
      },
    );
    expect(issued.role).toBe('swarm-worker');
    expect(parseCertificate(issued.certificate).subject.OU).toBe('swarm-worker');
    const manager = await joinNode(tokens.manager);
    expect(parseCertificate(manager.certPem).subject.OU).toBe('swarm-manager');
  });

  it('refuses bad tokens, foreign digests, bad CSRs and malformed bodies with UCP errors, creating nothing', async () => {
    const before = (await controller.nodes.list()).length;
    const tokens = await controller.cas.joinTokens();
    const ca = await controller.cas.clusterBundle();
    const keys = await generateKeyPair();
    const csr = await createCsr(keys);
    const post = (body: unknown) => httpsRequest('POST', `${url}/api/orca/v1/join`, { ca }, body);
    const wrongSecret = tokens.worker.slice(0, -5) + 'zzzzz';
    const foreignDigest = `SWMTKN-1-${'1'.repeat(50)}-${tokens.worker.slice(-25)}`;
    const cases: [unknown, number, string][] = [
      [{ token: wrongSecret, csr, hostname: 'h', address: '127.0.0.11' }, 401, 'INVALID_JOIN_TOKEN'],
      [{ token: foreignDigest, csr, hostname: 'h', address: '127.0.0.11' }, 401, 'INVALID_JOIN_TOKEN'],
      [{ token: 'SWMTKN-1-nope', csr, hostname: 'h', address: '127.0.0.11' }, 400, 'INVALID_JOIN_TOKEN'],
      [{ token: tokens.worker, csr: 'not a csr', hostname: 'h', address: '127.0.0.11' }, 400, 'INVALID_CSR'],
      [{ token: tokens.worker, csr, hostname: '../../etc', address: '127.0.0.11' }, 400, 'INVALID_REQUEST'],
      [{ token: 42, csr, hostname: 'h', address: '127.0.0.11' }, 400, 'INVALID_REQUEST'],
      [[1, 2], 400, 'INVALID_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(body);
      expect({ body, status: response.status }).toEqual({ body, status });
      expect(JSON.parse(response.text).errors[0].code).toBe(code);
    }
    const malformed = await httpsRequest('POST', `${url}/api/orca/v1/join`, { ca }, undefined);
    expect(malformed.status).toBe(400);
    expect((await controller.nodes.list()).length).toBe(before);
  });

  it('refuses a CA that does not match the token digest', async () => {
    const tokens = await controller.cas.joinTokens();
    const other = `SWMTKN-1-${'0'.repeat(50)}-${tokens.worker.slice(-25)}`;
    await expect(fetchPinnedCa(url, other, 1)).rejects.toThrow('remote CA does not match fingerprint');
  });

  it('makes the old token fail at once after rotation', async () => {
    const old = (await controller.cas.joinTokens()).worker;
    const rotated = await httpsJson<{ Worker: string }>(
      'POST',
      `${url}/api/orca/v1/jointokens/worker/rotate`,
      {
        insecure: true,
        basic: admin,
      },
    );
    expect(rotated.Worker).not.toBe(old);
    await expect(joinNode(old)).rejects.toThrow(/valid join token/);
    await expect(joinNode(rotated.Worker)).resolves.toMatchObject({ role: 'swarm-worker' });
  });

  it('renews over mutual TLS without a token, and refuses another node or no certificate', async () => {
    const tokens = await controller.cas.joinTokens();
    const a = await joinNode(tokens.worker);
    const b = await joinNode(tokens.worker);
    const keys = await generateKeyPair();
    const csr = await createCsr(keys);
    const renewed = await httpsJson<{ certificate: string }>(
      'POST',
      `${url}/api/orca/v1/nodes/${a.nodeId}/renew`,
      { ca: a.caPem, cert: a.certPem, key: a.keyPem },
      { csr },
    );
    expect(parseCertificate(renewed.certificate).subject.CN).toBe(a.nodeId);
    expect(parseCertificate(renewed.certificate).publicKeySpkiPem.replace(/\s/g, '')).toBe(
      keys.publicKeyPem.replace(/\s/g, ''),
    );
    const asOther = await httpsRequest(
      'POST',
      `${url}/api/orca/v1/nodes/${a.nodeId}/renew`,
      { ca: b.caPem, cert: b.certPem, key: b.keyPem },
      { csr },
    );
    expect(asOther.status).toBe(403);
    const anonymous = await httpsRequest(
      'POST',
      `${url}/api/orca/v1/nodes/${a.nodeId}/renew`,
      { ca: a.caPem },
      { csr },
    );
    expect(anonymous.status).toBe(401);
  });

  it('refuses renewal with a certificate from another CA, even one naming the node', async () => {
    const tokens = await controller.cas.joinTokens();
    const node = await joinNode(tokens.worker);
    const foreignRoot = new CertificateAuthority(await createRootCa({ commonName: 'swarm-ca' }));
    const keys = await generateKeyPair();
    const forged = await foreignRoot.issueNodeCertificate({
      csrPem: await createCsr(keys),
      nodeId: node.nodeId,
      role: 'swarm-manager',
      clusterId: (await controller.cas.cluster()).clusterId,
    });
    const response = await httpsRequest(
      'POST',
      `${url}/api/orca/v1/nodes/${node.nodeId}/renew`,
      { ca: node.caPem, cert: forged.certPem, key: keys.privateKeyPem },
      { csr: await createCsr(keys) },
    );
    expect(response.status).toBe(401);
    expect(JSON.parse(response.text).errors[0].code).toBe('UNAUTHORIZED');
  });

  it("renews the agent's own certificate and key on disk", async () => {
    const tokens = await controller.cas.joinTokens();
    const state = mkdtempSync(join(tmpdir(), 'orca-agent-'));
    const agent = new Agent({
      managerUrl: url,
      token: tokens.worker,
      stateDir: state,
      address: '127.0.0.12',
      hostname: 'renewer',
      runtime: new ProcessRuntime({ stateDir: join(state, 'processes') }),
      runtimeKind: 'process',
      log: () => undefined,
    });
    try {
      await agent.start();
      const before = loadIdentity(state)!;
      await agent.renew();
      const after = loadIdentity(state)!;
      expect(after.nodeId).toBe(before.nodeId);
      expect(after.certPem).not.toBe(before.certPem);
      expect(after.keyPem).not.toBe(before.keyPem);
      expect(parseCertificate(after.certPem).subject).toMatchObject({
        CN: before.nodeId,
        OU: 'swarm-worker',
      });
      // A restarted agent keeps its identity: no second join, no new node record.
      const count = (await controller.nodes.list()).length;
      await agent.stop();
      const again = new Agent({
        managerUrl: url,
        stateDir: state,
        address: '127.0.0.12',
        runtime: new ProcessRuntime({ stateDir: join(state, 'processes') }),
        runtimeKind: 'process',
        log: () => undefined,
      });
      await again.start();
      expect(again.nodeId).toBe(before.nodeId);
      expect((await controller.nodes.list()).length).toBe(count);
      await again.stop();
    } finally {
      await agent.stop();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('lists nodes for the admin only, Ready while heartbeats arrive and Down after', async () => {
    const tokens = await controller.cas.joinTokens();
    const node = await joinNode(tokens.worker);
    const tls = { ca: node.caPem, cert: node.certPem, key: node.keyPem };
    await httpsJson('POST', `${url}/api/orca/v1/nodes/${node.nodeId}/heartbeat`, tls, {
      components: [{ name: 'ucp-proxy', state: 'running' }],
    });
    const unauthenticated = await httpsRequest('GET', `${url}/api/orca/v1/nodes`, { insecure: true });
    expect(unauthenticated.status).toBe(401);
    const list = async () =>
      httpsJson<{ id: string; status: string; components: unknown[]; certificate: { notAfter: string } }[]>(
        'GET',
        `${url}/api/orca/v1/nodes`,
        { insecure: true, basic: admin },
      );
    const mine = (await list()).find((n) => n.id === node.nodeId);
    expect(mine).toMatchObject({ status: 'Ready', components: [{ name: 'ucp-proxy', state: 'running' }] });
    expect(Date.parse(mine!.certificate.notAfter)).toBeGreaterThan(Date.now() + 89 * 24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await list()).find((n) => n.id === node.nodeId)?.status).toBe('Down');
  });

  it('answers malformed JSON and oversized bodies with 4xx UCP errors', async () => {
    const { request } = await import('node:https');
    const send = (payload: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          `${url}/api/orca/v1/join`,
          { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
          (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    const bad = await send('{"token": ');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).errors[0].code).toBe('INVALID_REQUEST');
    const big = await send(JSON.stringify({ token: 'x'.repeat(2 * 1024 * 1024) }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).errors[0].code).toBe('REQUEST_TOO_LARGE');
  });

  it('keeps HttpError messages readable', () => {
    expect(new HttpError(401, '{"errors":[{"code":"X","message":"nope"}]}').message).toBe('nope (HTTP 401)');
  });
});

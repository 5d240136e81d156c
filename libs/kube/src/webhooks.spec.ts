// The webhook handler in front of another request listener (as the controller runs it in front of
// its Express application), over real TLS on loopback: webhook paths are answered by the handler
// and never reach the listener behind it; everything else does; strangers get 401, bad bodies 400.
import { CertificateAuthority, createRootCa } from '@orca/pki';
import { issueTestIdentity, signedBy } from '@orca/testing';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ReviewError } from './authorization.js';
import { webhookHandler, type Reviewer } from './webhooks.js';

interface Reply {
  status: number;
  body: string;
}

describe('webhookHandler in front of an application', () => {
  let server: Server;
  let port: number;
  let caller: { ca: string; cert: string; key: string };
  let stranger: { ca: string; cert: string; key: string };
  const behind: string[] = [];
  const reviewed: unknown[] = [];

  beforeAll(async () => {
    const cluster = new CertificateAuthority(await createRootCa({ commonName: 'test-cluster' }));
    const other = new CertificateAuthority(await createRootCa({ commonName: 'someone-else' }));
    const issue = async (ca: CertificateAuthority, commonName: string, hosts: string[] = []) => ({
      ca: cluster.bundlePem,
      ...(await issueTestIdentity(ca, commonName, hosts)),
    });
    const serving = await issue(cluster, '127.0.0.1', ['127.0.0.1']);
    caller = await issue(cluster, 'kube-apiserver');
    stranger = await issue(other, 'kube-apiserver');
    const reviewer = (kind: string): Reviewer => ({
      review: async (body) => {
        reviewed.push(body);
        if ((body as { kind?: unknown }).kind !== kind) throw new ReviewError(`expected kind ${kind}`);
        return { kind, status: { allowed: true } };
      },
    });
    const webhooks = webhookHandler({
      trustedCaller: signedBy(cluster.bundlePem),
      authorization: reviewer('SubjectAccessReview'),
      admission: reviewer('AdmissionReview'),
    });
    // The application behind the webhooks.
    const app = (req: IncomingMessage, res: ServerResponse) => {
      behind.push(`${req.method} ${req.url}`);
      res.end('app');
    };
    server = createServer(
      { ...serving, ca: [cluster.bundlePem, other.bundlePem], requestCert: true, rejectUnauthorized: false },
      (req, res) => webhooks(req, res, () => app(req, res)),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const send = (
    path: string,
    tls: { ca: string; cert?: string; key?: string },
    method = 'POST',
    body?: string,
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path, method, ...tls, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('answers reviews itself and passes every other request on', async () => {
    const sar = JSON.stringify({ kind: 'SubjectAccessReview' });
    const answered = await send('/kube/webhooks/authorize?timeout=10s', caller, 'POST', sar);
    expect(answered).toEqual({
      status: 200,
      body: JSON.stringify({ kind: 'SubjectAccessReview', status: { allowed: true } }),
    });
    const admitted = await send('/kube/webhooks/admit', caller, 'POST', '{"kind":"AdmissionReview"}');
    expect(admitted.status).toBe(200);
    expect(reviewed).toEqual([{ kind: 'SubjectAccessReview' }, { kind: 'AdmissionReview' }]);
    expect(behind).toEqual([]);
    expect(await send('/_ping', { ca: caller.ca }, 'GET')).toEqual({ status: 200, body: 'app' });
    expect((await send('/kube/webhooks/other', caller)).body).toBe('app');
    expect(behind).toEqual(['GET /_ping', 'POST /kube/webhooks/other']);
  });

  it('refuses strangers, other methods and malformed reviews in Status JSON', async () => {
    const status = (reply: Reply) => {
      const parsed = JSON.parse(reply.body) as { kind: string; code: number };
      return [reply.status, parsed.kind, parsed.code];
    };
    const sar = JSON.stringify({ kind: 'SubjectAccessReview' });
    expect(status(await send('/kube/webhooks/authorize', { ca: caller.ca }, 'POST', sar))).toEqual([
      401,
      'Status',
      401,
    ]);
    expect(status(await send('/kube/webhooks/authorize', stranger, 'POST', sar))).toEqual([
      401,
      'Status',
      401,
    ]);
    expect(status(await send('/kube/webhooks/authorize', caller, 'GET'))).toEqual([405, 'Status', 405]);
    expect(status(await send('/kube/webhooks/authorize', caller, 'POST', '{not json'))).toEqual([
      400,
      'Status',
      400,
    ]);
    expect(status(await send('/kube/webhooks/admit', caller, 'POST', sar))).toEqual([400, 'Status', 400]);
    expect(behind.filter((line) => line.includes('/kube/webhooks/authorize'))).toEqual([]);
  });
});

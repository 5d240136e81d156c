// The front door answers Docker API requests before Express: over a real loopback HTTP server, the
// requests it serves never reach the listener behind it, the others do (untouched), and each
// state-changing request it served is handed to the audit record once finished, with its decision.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerDockerApiFirst } from './install.js';

interface Recorded {
  method?: string;
  originalUrl: string;
  status: number;
  locals: Record<string, unknown>;
}

describe('answerDockerApiFirst', () => {
  let server: Server;
  let port: number;
  const behind: { url?: string; locals: unknown }[] = [];
  const recorded: Recorded[] = [];

  beforeAll(async () => {
    server = createServer((req, res: ServerResponse & { locals?: unknown }) => {
      behind.push({ url: req.url, locals: res.locals });
      res.end('behind');
    });
    answerDockerApiFirst(
      server,
      (req, res, next) => {
        if (!(req.url ?? '').startsWith('/containers')) {
          next();
          return false;
        }
        res.locals!.decision = 'noted';
        // Answered later, as the front door does after asking the engine.
        setTimeout(() => {
          res.statusCode = req.method === 'POST' ? 201 : 200;
          res.end('{}');
        }, 10);
        return true;
      },
      (req, originalUrl, status, locals) =>
        recorded.push({ method: req.method, originalUrl, status, locals }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (method: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path }, (res: IncomingMessage) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves Docker API paths itself and audits the state-changing ones', async () => {
    expect(await call('POST', '/containers/create?name=web')).toEqual({ status: 201, body: '{}' });
    expect(await call('GET', '/containers/json')).toEqual({ status: 200, body: '{}' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(recorded).toEqual([
      {
        method: 'POST',
        originalUrl: '/containers/create?name=web',
        status: 201,
        locals: { decision: 'noted' },
      },
    ]);
    expect(behind).toEqual([]);
  });

  it('passes everything else on untouched and leaves its audit to Express', async () => {
    recorded.length = 0;
    expect(await call('POST', '/api/accounts')).toEqual({ status: 200, body: 'behind' });
    expect(behind).toEqual([{ url: '/api/accounts', locals: undefined }]);
    expect(recorded).toEqual([]);
  });
});

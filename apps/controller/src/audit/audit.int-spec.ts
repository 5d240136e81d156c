// The audit log against a real controller (embedded store) over HTTPS: entries for an allowed
// change, a denied change and a failed login, in the controller's log and in the store, served to
// admins by GET /api/ucp/audit with paging, and never holding a password, token or body.
import { loadControllerConfig } from '@orca/config';
import { freePort, httpsCall, type HttpsReply } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';
import { AUDIT_PREFIX, auditPath, type AuditEntry } from './audit-log.js';

const ADMIN_PASSWORD = 'orca-admin-pass';
const DORA_PASSWORD = 'dora-secret-pass';
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const ADMIN = basic('admin', ADMIN_PASSWORD);
const DORA = basic('dora', DORA_PASSWORD);

describe('audit log (embedded store)', () => {
  let dir: string;
  let controller: RunningController;
  const lines: string[] = [];
  let originalWrite: typeof process.stdout.write | undefined;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    auth: string | null = ADMIN,
  ): Promise<HttpsReply> => httpsCall(controller.url, path, { method, body, auth: auth ?? undefined });

  /** Stored entries (written just after each response), waiting until `count` are there. */
  const stored = async (count: number): Promise<AuditEntry[]> => {
    for (let i = 0; ; i++) {
      const { kvs } = await controller.store.range(AUDIT_PREFIX);
      if (kvs.length >= count || i > 100) return kvs.map((kv) => JSON.parse(kv.value) as AuditEntry);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    // The controller logs audit lines to stdout: keep them, pass everything else through.
    originalWrite = process.stdout.write;
    const write = originalWrite.bind(process.stdout);
    process.stdout.write = ((chunk: unknown, ...rest: never[]) => {
      const text = String(chunk);
      if (text.startsWith('{"audit":')) {
        lines.push(text);
        return true;
      }
      return write(chunk as string, ...rest);
    }) as typeof process.stdout.write;
    dir = mkdtempSync(join(tmpdir(), 'orca-audit-int-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
      }),
    );
  });

  afterAll(async () => {
    await controller?.close();
    if (originalWrite) process.stdout.write = originalWrite;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records allowed and denied changes and failed logins, without secrets', async () => {
    // Allowed: an admin creates a user.
    expect((await call('POST', '/accounts/', { name: 'dora', password: DORA_PASSWORD })).status).toBe(201);
    // Denied: that user tries to grant herself Full Control of /.
    const dora = (await call('GET', '/accounts/dora')).json().id as string;
    expect((await call('PUT', `/collectionGrants/${dora}/swarm/fullcontrol`, undefined, DORA)).status).toBe(
      403,
    );
    // A failed login, and a successful one whose token is then used for a change.
    expect(
      (await call('POST', '/auth/login', { username: 'dora', password: 'not-her-password' }, null)).status,
    ).toBe(401);
    const login = await call('POST', '/auth/login', { username: 'admin', password: ADMIN_PASSWORD }, null);
    const token = login.json().auth_token as string;
    expect((await call('POST', '/accounts/eng/teams', { name: 'x' }, `Bearer ${token}`)).status).toBe(404);
    // A query secret in the path.
    expect(
      (await call('POST', '/api/clientbundle?label=laptop&token=abc123secret', undefined, DORA)).status,
    ).toBe(200);
    // Reads are not audited.
    expect((await call('GET', '/roles')).status).toBe(200);

    const entries = await stored(6);
    const find = (p: (e: AuditEntry) => boolean) => {
      const found = entries.find(p);
      expect(found).toBeDefined();
      return found as AuditEntry;
    };
    expect(find((e) => e.operation === 'Account Create')).toMatchObject({
      subject: 'admin',
      method: 'POST',
      path: '/accounts/',
      resource: 'dora',
      decision: 'allow',
      status: 201,
      outcome: 'success',
    });
    expect(find((e) => e.operation === 'Grant Create')).toMatchObject({
      subject: 'dora',
      method: 'PUT',
      path: `/collectionGrants/${dora}/swarm/fullcontrol`,
      decision: 'deny',
      reason: expect.stringContaining('administrators'),
      status: 403,
      outcome: 'failure',
    });
    expect(find((e) => e.operation === 'Login' && e.status === 401)).toMatchObject({
      subject: 'dora',
      path: '/auth/login',
      decision: 'deny',
      reason: 'Invalid username or password.',
      outcome: 'failure',
    });
    expect(find((e) => e.operation === 'Team Create')).toMatchObject({ subject: 'admin', status: 404 });
    expect(find((e) => e.path.startsWith('/api/clientbundle'))).toMatchObject({
      subject: 'dora',
      path: '/api/clientbundle?label=laptop&token=REDACTED',
      status: 200,
    });
    expect(entries.some((e) => e.path === '/roles')).toBe(false);

    // The same entries went to the controller's log, one JSON line each.
    for (const entry of entries) expect(lines).toContain(`${JSON.stringify({ audit: entry })}\n`);
    const everything = JSON.stringify(entries) + lines.join('');
    for (const secret of [
      ADMIN_PASSWORD,
      DORA_PASSWORD,
      'not-her-password',
      token,
      'abc123secret',
      ADMIN.split(' ')[1] as string,
      DORA.split(' ')[1] as string,
    ])
      expect(everything).not.toContain(secret);
  });

  it('serves the log to admins, newest first, with paging', async () => {
    const denied = await call('GET', '/api/ucp/audit', undefined, DORA);
    expect(denied.status).toBe(403);
    expect(denied.json().errors[0].code).toBe('FORBIDDEN');
    expect((await call('GET', '/api/ucp/audit', undefined, null)).status).toBe(401);
    expect((await call('GET', '/api/ucp/audit?limit=0')).status).toBe(400);
    expect((await call('GET', '/api/ucp/audit?start=../x')).status).toBe(400);

    const all = (await call('GET', '/api/ucp/audit?limit=1000')).json();
    expect(all.resourceCount).toBe(all.entries.length);
    const times = (all.entries as AuditEntry[]).map((e) => e.time);
    expect([...times].sort().reverse()).toEqual(times);
    const first = (await call('GET', '/api/ucp/audit?limit=2')).json();
    expect(first.entries).toEqual(all.entries.slice(0, 2));
    const second = (
      await call('GET', `/api/ucp/audit?limit=2&start=${first.nextPageStart as string}`)
    ).json();
    expect(second.entries).toEqual(all.entries.slice(2, 4));
  });

  it('redacts secret-looking query parameters', () => {
    expect(auditPath('/a?password=x&label=y&X-Auth-Token=z&flag')).toBe(
      '/a?password=REDACTED&label=y&X-Auth-Token=REDACTED&flag',
    );
    expect(auditPath('/containers/create?name=web')).toBe('/containers/create?name=web');
  });
});

// /api/ucp/config-toml against a real controller (embedded store) over HTTPS: GET and PUT as an
// admin, refusals for others, a 400 naming the key with nothing stored changed, and session and
// new-user settings taking effect without a restart.
import { loadControllerConfig } from '@orca/config';
import { freePort, httpsCall } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const ADMIN = basic('admin', 'orca-admin-pass');

describe('/api/ucp/config-toml (embedded store)', () => {
  let dir: string;
  let controller: RunningController;

  const call = async (
    method: string,
    path: string,
    opts: { auth?: string | null; body?: string; type?: string } = {},
  ) => {
    const auth = opts.auth === undefined ? ADMIN : opts.auth;
    const reply = await httpsCall(controller.url, path, {
      method,
      auth: auth ?? undefined,
      body: opts.body,
      contentType: opts.type ?? null,
    });
    return { ...reply, type: String(reply.headers['content-type'] ?? '') };
  };

  /** Everything stored except the audit log, which every request appends to. */
  const snapshot = async () =>
    (await controller.store.range('/orca/v1/')).kvs
      .filter((kv) => !kv.key.startsWith('/orca/v1/audit/'))
      .map((kv) => [kv.key, kv.value, kv.modRevision]);

  const putToml = (toml: string, auth?: string | null) =>
    call('PUT', '/api/ucp/config-toml', { body: toml, type: 'application/toml', auth });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-config-int-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    const joe = await call('POST', '/accounts/', {
      body: JSON.stringify({ name: 'joe', password: 'joe-pass-123' }),
    });
    expect(joe.status).toBe(201);
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the 3.0 configuration with its defaults to admins only', async () => {
    const reply = await call('GET', '/api/ucp/config-toml');
    expect(reply.status).toBe(200);
    expect(reply.type).toMatch(/^application\/toml/);
    for (const line of [
      '[auth]',
      'default_new_user_role = "restrictedcontrol"',
      '[auth.sessions]',
      'lifetime_minutes = 4320',
      'renewal_threshold_minutes = 1440',
      'per_user_limit = 5',
      '[scheduling_configuration]',
      'enable_admin_ucp_scheduling = true',
      'enable_user_ucp_scheduling = false',
      '[trust_configuration]',
      'require_content_trust = false',
      '[cluster_config]',
      'controller_port = 443',
      'kv_snapshot_count = 20000',
    ])
      expect(reply.text.split('\n')).toContain(line);
    expect((await call('GET', '/api/ucp/config-toml', { auth: null })).status).toBe(401);
    const joe = await call('GET', '/api/ucp/config-toml', { auth: basic('joe', 'joe-pass-123') });
    expect(joe.status).toBe(403);
    expect(joe.json().errors[0].code).toBe('FORBIDDEN');
    expect((await putToml('[auth.sessions]\nper_user_limit = 1', basic('joe', 'joe-pass-123'))).status).toBe(
      403,
    );
  });

  it('refuses bad files with a 400 naming the key, and stores nothing', async () => {
    const before = await snapshot();
    const cases: [string, string | undefined][] = [
      ['[auth.sessions]\nlifetime_minutes = "forever"', 'auth.sessions.lifetime_minutes'],
      ['[auth.sessions]\nper_user_limit = -3', 'auth.sessions.per_user_limit'],
      [
        '[scheduling_configuration]\nenable_user_ucp_scheduling = 1',
        'scheduling_configuration.enable_user_ucp_scheduling',
      ],
      ['[cluster_config]\nno_such_key = true', 'cluster_config.no_such_key'],
      ['[auth]\ndefault_new_user_role = "superuser"', 'auth.default_new_user_role'],
      ['[auth.sessions\nlifetime_minutes = 10', undefined],
      ['', undefined],
    ];
    for (const [toml, key] of cases) {
      const reply = await putToml(toml);
      expect(reply.status).toBe(400);
      const error = reply.json().errors[0];
      expect(error).toMatchObject({ code: 'INVALID_CONFIG', message: expect.any(String) });
      if (key) {
        expect(error.message).toContain(key);
        expect(error.detail).toEqual({ key });
      }
    }
    // JSON instead of TOML, and a body over 1 MiB.
    expect((await putToml('{"auth":{}}')).status).toBe(400);
    expect((await putToml(`# ${'x'.repeat(1024 * 1024 + 10)}`)).status).toBe(413);
    expect(await snapshot()).toEqual(before);
    expect((await call('GET', '/api/ucp/config-toml')).text).toContain('per_user_limit = 5');
  });

  it('stores a good file, read back in full; omitted keys return to defaults', async () => {
    const reply = await call('PUT', '/api/ucp/config-toml', {
      // curl --upload-file sends no Content-Type at all.
      body: '[trust_configuration]\nrequire_content_trust = true\nrequire_signature_from = ["ops"]\n',
    });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ message: expect.any(String) });
    const text = (await call('GET', '/api/ucp/config-toml')).text;
    expect(text).toContain('require_content_trust = true');
    expect(text).toContain('require_signature_from = [ "ops" ]');
    expect(text).toContain('per_user_limit = 5');
    // What GET returns is a valid PUT body.
    expect((await putToml(text)).status).toBe(200);
    expect((await putToml('')).status).toBe(400);
    expect((await putToml('[auth]\n')).status).toBe(200);
    expect((await call('GET', '/api/ucp/config-toml')).text).toContain('require_content_trust = false');
  });

  it('applies session settings at once, without a restart', async () => {
    const login = async () => {
      const reply = await call('POST', '/auth/login', {
        auth: null,
        body: JSON.stringify({ username: 'joe', password: 'joe-pass-123' }),
      });
      expect(reply.status).toBe(200);
      return `Bearer ${reply.json().auth_token as string}`;
    };
    const first = await login();
    const second = await login();
    expect((await call('GET', '/id/', { auth: first })).status).toBe(200);
    expect((await putToml('[auth.sessions]\nper_user_limit = 1\n')).status).toBe(200);
    const third = await login();
    // Only one session per user now: the newest stays, the others were dropped.
    expect((await call('GET', '/id/', { auth: third })).status).toBe(200);
    expect((await call('GET', '/id/', { auth: first })).status).toBe(401);
    expect((await call('GET', '/id/', { auth: second })).status).toBe(401);
    expect((await putToml('[auth.sessions]\nper_user_limit = 0\n')).status).toBe(200);
    const again = [await login(), await login(), await login()];
    for (const token of again) expect((await call('GET', '/id/', { auth: token })).status).toBe(200);
  });

  it('gives new users the configured default role on their private collection', async () => {
    expect((await putToml('[auth]\ndefault_new_user_role = "viewonly"\n')).status).toBe(200);
    const created = await call('POST', '/accounts/', {
      body: JSON.stringify({ name: 'vera', password: 'vera-pass-123' }),
    });
    expect(created.status).toBe(201);
    const id = created.json().id as string;
    const grants = await call('GET', `/collectionGrants?subjectID=${id}&showPaths=true`);
    expect(grants.status).toBe(200);
    expect(grants.json().grants).toEqual([
      expect.objectContaining({ subjectID: id, roleID: 'viewonly', objectPath: '/Shared/Private/vera' }),
    ]);
    // joe was created under the default: restrictedcontrol.
    const joe = (await call('GET', '/accounts/joe')).json().id as string;
    expect((await call('GET', `/collectionGrants?subjectID=${joe}`)).json().grants).toEqual([
      expect.objectContaining({ roleID: 'restrictedcontrol' }),
    ]);
  });
});

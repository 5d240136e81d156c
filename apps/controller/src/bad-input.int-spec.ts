// The bad-input sweep: every UCP/eNZi/orca endpoint the controller serves (identity, RBAC, client
// bundles, nodes, config-toml, audit) gets malformed JSON, wrong types, unknown ids, path tricks
// (`..`, `%2F`, very long names) and a body over 1 MiB. Each must answer 4xx in UCP's error shape,
// and the store must be unchanged afterwards (sessions and the audit log aside, which record use).
import { loadControllerConfig } from '@orca/config';
import { freePort } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from './controller.js';

interface Reply {
  status: number;
  text: string;
}

interface Endpoint {
  method: string;
  /** `{name}` placeholders take the fixture values below, or the bad values of the sweep. */
  path: string;
  /** A JSON body of the right shape with every field of the wrong type (methods with bodies). */
  wrongTypes?: unknown;
  /** Raw bodies are sent as TOML-ish text instead of JSON (config-toml). */
  text?: boolean;
  /** The endpoint reads no body: body variants are not bad input for it. */
  noBody?: boolean;
  /** Placeholders whose values are free-form by design, and values that are valid here. */
  freeForm?: string[];
  valid?: string[];
}

const FIXTURE: Record<string, string> = {
  user: 'joe',
  org: 'eng',
  team: 'ops',
  key: 'f'.repeat(64),
  role: 'viewonly',
  collection: 'shared',
  subject: 'joe',
  node: 'nosuchnode',
  tokenRole: 'sideways',
};
const BAD_VALUES = [
  'nosuch-id-0',
  '..',
  '%2E%2E',
  'a%2Fb',
  '%2F',
  '..%2F..%2Fetc',
  'x'.repeat(5000),
  '%00',
  '%E0%A4%A',
];
const WRONG = { name: 1, password: 2, fullName: 3, isAdmin: 'x', isActive: 'x', isOrg: 'x', description: 4 };

const ENDPOINTS: Endpoint[] = [
  // eNZi accounts (also under /enzi/v0, the same handlers)
  { method: 'GET', path: '/accounts/{user}' },
  { method: 'POST', path: '/accounts/', wrongTypes: WRONG },
  { method: 'PATCH', path: '/accounts/', wrongTypes: { operations: [{ op: 1 }] } },
  { method: 'PATCH', path: '/accounts/{user}', wrongTypes: WRONG },
  { method: 'PATCH', path: '/enzi/v0/accounts/{user}', wrongTypes: WRONG },
  { method: 'DELETE', path: '/accounts/{user}' },
  { method: 'POST', path: '/accounts/{user}/changePassword', wrongTypes: { oldPassword: 1, newPassword: 2 } },
  { method: 'GET', path: '/accounts/{user}/organizations' },
  { method: 'GET', path: '/accounts/{org}/members' },
  { method: 'GET', path: '/accounts/{org}/members/{user}' },
  { method: 'PUT', path: '/accounts/{org}/members/{user}', wrongTypes: { isAdmin: 'yes' } },
  { method: 'DELETE', path: '/accounts/{org}/members/{user}' },
  { method: 'GET', path: '/accounts/{org}/members/{user}/teams' },
  { method: 'GET', path: '/accounts/{org}/teams' },
  { method: 'POST', path: '/accounts/{org}/teams', wrongTypes: { name: 5, description: 6 } },
  { method: 'GET', path: '/accounts/{org}/teams/{team}' },
  { method: 'PATCH', path: '/accounts/{org}/teams/{team}', wrongTypes: { description: 7 } },
  { method: 'DELETE', path: '/accounts/{org}/teams/{team}' },
  { method: 'GET', path: '/accounts/{org}/teams/{team}/members' },
  { method: 'PUT', path: '/accounts/{org}/teams/{team}/members/{user}', wrongTypes: { isAdmin: 1 } },
  { method: 'DELETE', path: '/accounts/{org}/teams/{team}/members/{user}' },
  { method: 'GET', path: '/accounts/{org}/adminMemberSyncConfig' },
  { method: 'PUT', path: '/accounts/{org}/adminMemberSyncConfig', wrongTypes: { enableSync: 'x' } },
  { method: 'PUT', path: '/accounts/{org}/teams/{team}/memberSyncConfig', wrongTypes: { enableSync: 'x' } },
  { method: 'GET', path: '/accounts/{user}/publicKeys' },
  { method: 'POST', path: '/accounts/{user}/publicKeys', wrongTypes: { publicKey: 1, label: 2 } },
  { method: 'PATCH', path: '/accounts/{user}/publicKeys/{key}', wrongTypes: { label: 3 } },
  { method: 'DELETE', path: '/accounts/{user}/publicKeys/{key}' },
  // login and sessions
  { method: 'POST', path: '/auth/login', wrongTypes: { username: 1, password: 2 } },
  { method: 'POST', path: '/id/login', wrongTypes: { username: [], password: {} } },
  { method: 'POST', path: '/enzi/v0/id/logout', noBody: true },
  // RBAC
  { method: 'GET', path: '/roles/{role}' },
  { method: 'POST', path: '/roles', wrongTypes: { name: 1, operations: 'all' } },
  { method: 'DELETE', path: '/roles/{role}' },
  { method: 'GET', path: '/collections/{collection}' },
  { method: 'GET', path: '/collections/{collection}/children' },
  { method: 'POST', path: '/collections', wrongTypes: { name: 1, parent_id: 2, label_constraints: 'x' } },
  { method: 'PATCH', path: '/collections/{collection}', wrongTypes: { label_constraints: 'x' } },
  { method: 'DELETE', path: '/collections/{collection}' },
  // `%2F` is "/", a real collection path.
  { method: 'GET', path: '/collectionByPath?path={collection}', valid: ['%2F'] },
  { method: 'GET', path: '/defaultCollection/{user}' },
  { method: 'PUT', path: '/defaultCollection/{user}', wrongTypes: { id: 1 } },
  { method: 'DELETE', path: '/defaultCollection/{user}' },
  { method: 'GET', path: '/collectionGrants?subjectID={subject}&limit={role}' },
  // Grant subjects are free-form on purpose (Kubernetes service accounts are not eNZi accounts).
  { method: 'PUT', path: '/collectionGrants/{subject}/{collection}/{role}?type=bogus', noBody: true },
  {
    method: 'PUT',
    path: '/collectionGrants/{subject}/{collection}/{role}',
    noBody: true,
    freeForm: ['subject'],
  },
  { method: 'DELETE', path: '/collectionGrants/{subject}/{collection}/{role}' },
  // client bundles (a label must be one string)
  { method: 'POST', path: '/api/clientbundle?label=a&label={user}' },
  // nodes, join, tokens, component settings
  { method: 'GET', path: '/api/orca/v1/nodes/{node}' },
  { method: 'POST', path: '/api/orca/v1/join', wrongTypes: { token: 1, csr: 2 } },
  { method: 'POST', path: '/api/orca/v1/nodes/{node}/renew', wrongTypes: { csr: 1 } },
  { method: 'POST', path: '/api/orca/v1/nodes/{node}/heartbeat', wrongTypes: { components: 'x' } },
  { method: 'GET', path: '/api/orca/v1/nodes/{node}/desired?after=x' },
  { method: 'POST', path: '/api/orca/v1/jointokens/{tokenRole}/rotate' },
  { method: 'PUT', path: '/api/orca/v1/settings/components', wrongTypes: { images: { 'ucp-proxy': 1 } } },
  // UCP configuration and the audit log
  { method: 'PUT', path: '/api/ucp/config-toml', text: true },
  { method: 'GET', path: '/api/ucp/audit?start={user}&limit={role}' },
];

/** Placeholder names in a path. */
const placeholders = (path: string) => [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
const fill = (path: string, values: Record<string, string>) =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? FIXTURE[name] ?? name);

describe('bad input on every endpoint (embedded store)', () => {
  let dir: string;
  let controller: RunningController;
  let bearer: string;

  const call = (method: string, path: string, body?: string | Buffer, auth = bearer): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(controller.url);
      // Host, port and path separately: a URL string would resolve `..` before sending.
      const req = httpsRequest(
        {
          host: hostname,
          port,
          path,
          method,
          rejectUnauthorized: false,
          headers: {
            authorization: auth,
            ...(body !== undefined
              ? { 'content-type': 'application/json', 'content-length': body.length }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      // The server may answer an oversized body before reading it all.
      req.on('error', (error: NodeJS.ErrnoException) =>
        error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error),
      );
      req.end(body);
    });

  const snapshot = async () =>
    (await controller.store.range('/orca/v1/')).kvs
      .filter((kv) => !/^\/orca\/v1\/(audit|sessions)\//.test(kv.key))
      .map((kv) => `${kv.key} ${kv.modRevision}`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-bad-input-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    const basic = `Basic ${Buffer.from('admin:orca-admin-pass').toString('base64')}`;
    const json = (value: unknown) => JSON.stringify(value);
    const login = await call(
      'POST',
      '/auth/login',
      json({ username: 'admin', password: 'orca-admin-pass' }),
      basic,
    );
    bearer = `Bearer ${(JSON.parse(login.text) as { auth_token: string }).auth_token}`;
    for (const [path, body] of [
      ['/accounts/', { name: 'joe', password: 'joe-pass-123' }],
      ['/accounts/', { name: 'eng', isOrg: true }],
      ['/accounts/eng/teams', { name: 'ops' }],
    ] as const)
      expect((await call('POST', path, json(body))).status).toBe(201);
    expect((await call('PUT', '/accounts/eng/teams/ops/members/joe', json({ isAdmin: false }))).status).toBe(
      200,
    );
    // Reads that create on first use (the caller's private collection), done before the snapshot.
    expect((await call('GET', '/collections')).status).toBe(200);
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every bad request with a 4xx in UCP error shape and changes nothing stored', async () => {
    const before = await snapshot();
    const failures: string[] = [];
    let checks = 0;
    const check = async (method: string, path: string, body?: string | Buffer) => {
      checks++;
      const reply = await call(method, path, body);
      let shaped = false;
      try {
        const parsed = JSON.parse(reply.text) as { errors?: { code?: unknown; message?: unknown }[] };
        shaped =
          Array.isArray(parsed.errors) &&
          typeof parsed.errors[0]?.code === 'string' &&
          typeof parsed.errors[0]?.message === 'string';
      } catch {
        shaped = false;
      }
      const label = `${method} ${path.length > 120 ? `${path.slice(0, 120)}...` : path}${body ? ` [${String(body).slice(0, 40)}]` : ''}`;
      if (reply.status < 400 || reply.status >= 500 || !shaped)
        failures.push(`${label} -> ${reply.status} ${reply.text.slice(0, 200)}`);
      const now = await snapshot();
      if (now.join('\n') !== before.join('\n')) {
        failures.push(`${label} changed the store`);
        before.splice(0, before.length, ...now);
      }
    };
    const oversized = Buffer.from(JSON.stringify({ name: 'big', padding: 'x'.repeat(1024 * 1024 + 16) }));
    for (const endpoint of ENDPOINTS) {
      const names = placeholders(endpoint.path.split('?')[0] as string);
      const queryNames = placeholders(endpoint.path.split('?')[1] ?? '');
      // Unknown ids and path tricks in each path parameter (the others stay valid).
      for (const name of [...names, ...queryNames]) {
        if (endpoint.freeForm?.includes(name)) continue;
        for (const value of BAD_VALUES)
          if (!endpoint.valid?.includes(value))
            await check(endpoint.method, fill(endpoint.path, { [name]: value }));
      }
      if (endpoint.method === 'GET' || endpoint.method === 'DELETE' || endpoint.noBody) continue;
      // Bodies on an otherwise valid path.
      const path = fill(endpoint.path, {});
      if (endpoint.text) {
        for (const body of ['[auth\n', '[auth]\nnope = 1', '[auth.sessions]\nlifetime_minutes = "x"', ''])
          await check(endpoint.method, path, body);
      } else {
        for (const body of ['{"name":', '{"a":1}}', '[]', '"text"', '12', 'null'])
          await check(endpoint.method, path, body);
        if (endpoint.wrongTypes !== undefined)
          await check(endpoint.method, path, JSON.stringify(endpoint.wrongTypes));
      }
      await check(endpoint.method, path, oversized);
    }
    expect(failures).toEqual([]);
    expect(checks).toBeGreaterThan(500);
  });
});

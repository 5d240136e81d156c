// PATCH /accounts/ (bulk operations) and the LDAP member sync options, against a real controller
// (embedded store): the UCP Swagger contract, per-operation results, refusals, and sessions ending
// for deactivated and deleted users.
import { checkResponse } from '@orca/api';
import { loadControllerConfig } from '@orca/config';
import { freePort, httpsCall, type HttpsReply } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const ADMIN = basic('admin', 'orca-admin-pass');

describe('bulk account operations and sync options (embedded store)', () => {
  let dir: string;
  let controller: RunningController;

  const call = (
    method: string,
    path: string,
    body?: unknown,
    auth: string | null = ADMIN,
  ): Promise<HttpsReply> => httpsCall(controller.url, path, { method, body, auth: auth ?? undefined });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-bulk-int-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    for (const name of ['ann', 'ben', 'cal'])
      expect((await call('POST', '/accounts/', { name, password: `${name}-pass-123` })).status).toBe(201);
    expect((await call('POST', '/accounts/', { name: 'eng', isOrg: true })).status).toBe(201);
    expect((await call('POST', '/accounts/eng/teams', { name: 'ops' })).status).toBe(201);
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs each operation, reports each result in order, and ends sessions', async () => {
    const login = await call('POST', '/auth/login', { username: 'ben', password: 'ben-pass-123' }, null);
    const benToken = `Bearer ${login.json().auth_token as string}`;
    const ann = (await call('GET', '/accounts/ann')).json().id as string;
    const reply = await call('PATCH', '/enzi/v0/accounts/', {
      operations: [
        { op: 'demote', ref: 'admin' },
        { op: 'promote', ref: ann },
        { op: 'deactivate', ref: 'ben' },
        { op: 'update', ref: 'cal', value: JSON.stringify({ fullName: 'Cal C' }) },
        { op: 'delete', ref: 'nobody' },
        { op: 'explode', ref: 'cal' },
        { op: 'update', ref: 'cal', value: '{not json' },
      ],
    });
    expect(reply.status).toBe(200);
    expect(checkResponse('ucp-3.0', 'patch', '/accounts/', 200, reply.json())).toEqual([]);
    const results = reply.json().results as {
      op: string;
      ref: string;
      success: boolean;
      error?: { code: string };
    }[];
    expect(results.map((r) => [r.op, r.ref, r.success])).toEqual([
      ['demote', 'admin', false],
      ['promote', ann, true],
      ['deactivate', 'ben', true],
      ['update', 'cal', true],
      ['delete', 'nobody', false],
      ['explode', 'cal', false],
      ['update', 'cal', false],
    ]);
    expect(results[0]?.error?.code).toBe('LAST_ADMIN');
    expect(results[4]?.error?.code).toBe('NOT_FOUND');
    expect((await call('GET', '/accounts/ann')).json().isAdmin).toBe(true);
    expect((await call('GET', '/accounts/ben')).json().isActive).toBe(false);
    expect((await call('GET', '/accounts/cal')).json().fullName).toBe('Cal C');
    expect((await call('GET', '/id/', undefined, benToken)).status).toBe(401);

    const del = await call('PATCH', '/accounts/', { operations: [{ op: 'delete', ref: 'cal' }] });
    expect(del.json().results).toEqual([{ op: 'delete', ref: 'cal', success: true }]);
    expect((await call('GET', '/accounts/cal')).status).toBe(404);
  });

  it('refuses malformed requests whole and non-admins', async () => {
    for (const body of [
      [],
      { operations: 'x' },
      { operations: [{ ref: 'ann' }] },
      { operations: [{ op: 1 }] },
    ]) {
      const reply = await call('PATCH', '/accounts/', body);
      expect(reply.status).toBe(400);
      expect(reply.json().errors[0].code).toBe('INVALID_REQUEST');
    }
    const ann = basic('ann', 'ann-pass-123');
    // ann was promoted above; ben is inactive; make a plain user to be refused.
    expect((await call('POST', '/accounts/', { name: 'dan', password: 'dan-pass-123' })).status).toBe(201);
    const dan = await call(
      'PATCH',
      '/accounts/',
      { operations: [{ op: 'promote', ref: 'dan' }] },
      basic('dan', 'dan-pass-123'),
    );
    expect(dan.status).toBe(403);
    expect((await call('GET', '/accounts/dan', undefined, ann)).json().isAdmin).toBe(false);
  });

  it('keeps the LDAP member sync options of orgs and teams', async () => {
    const empty = await call('GET', '/accounts/eng/adminMemberSyncConfig');
    expect(empty.status).toBe(200);
    expect(
      checkResponse('ucp-3.0', 'get', '/accounts/{orgNameOrID}/adminMemberSyncConfig', 200, empty.json()),
    ).toEqual([]);
    expect(empty.json().enableSync).toBe(false);
    const opts = {
      enableSync: true,
      selectGroupMembers: true,
      groupDN: 'cn=ops,dc=example,dc=com',
      groupMemberAttr: 'member',
      searchBaseDN: '',
      searchScopeSubtree: false,
      searchFilter: '',
    };
    const put = await call('PUT', '/accounts/eng/teams/ops/memberSyncConfig', opts);
    expect(put.status).toBe(200);
    expect(put.json()).toEqual(opts);
    const got = await call('GET', '/enzi/v0/accounts/eng/teams/ops/memberSyncConfig');
    expect(
      checkResponse(
        'ucp-3.0',
        'get',
        '/accounts/{orgNameOrID}/teams/{teamNameOrID}/memberSyncConfig',
        200,
        got.json(),
      ),
    ).toEqual([]);
    expect(got.json()).toEqual(opts);
    expect(
      (await call('PUT', '/accounts/eng/adminMemberSyncConfig', { ...opts, enableSync: 'yes' })).status,
    ).toBe(400);
    expect((await call('PUT', '/accounts/eng/adminMemberSyncConfig', { enableSync: true })).status).toBe(400);
    expect((await call('GET', '/accounts/nope/adminMemberSyncConfig')).status).toBe(404);
    expect(
      (await call('GET', '/accounts/eng/adminMemberSyncConfig', undefined, basic('dan', 'dan-pass-123')))
        .status,
    ).toBe(403);
    // Deleting the team removes its options.
    expect((await call('DELETE', '/accounts/eng/teams/ops')).status).toBe(204);
    expect((await controller.store.range('/orca/v1/syncconfig/teams/eng/')).kvs).toEqual([]);
  });
});

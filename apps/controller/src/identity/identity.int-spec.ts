// Identity end to end against a real controller: logins and sessions, the eNZi accounts API,
// lockout, client bundles and mutual-TLS authentication with them, and the UCP contract.
import { checkResponse } from '@orca/api';
import { loadControllerConfig } from '@orca/config';
import { parseCertificate } from '@orca/pki';
import { freePort, httpsCall, type HttpsReply } from '@orca/testing';
import JSZip from 'jszip';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type RunningController } from '../controller.js';

/** Bodies go as form-encoded on purpose: UCP parses JSON whatever the Content-Type says. */
function call(
  method: string,
  url: string,
  opts: { auth?: string; body?: unknown; raw?: string; cert?: string; key?: string; ca?: string } = {},
): Promise<HttpsReply> {
  const { origin, pathname, search } = new URL(url);
  return httpsCall(origin, `${pathname}${search}`, {
    method,
    auth: opts.auth,
    body: opts.raw ?? opts.body,
    contentType: 'application/x-www-form-urlencoded',
    cert: opts.cert,
    key: opts.key,
    ca: opts.ca,
  });
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('identity API (embedded store)', () => {
  let dir: string;
  let controller: RunningController;
  let url: string;
  const ADMIN = basic('admin', 'orca-admin-pass');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-identity-'));
    const port = await freePort();
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(port),
        ORCA_ADMIN_PASSWORD: 'orca-admin-pass',
      }),
    );
    url = controller.url;
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const expectError = (reply: HttpsReply, status: number) => {
    expect(reply.status).toBe(status);
    const body = reply.json();
    expect(Array.isArray(body.errors)).toBe(true);
    expect(typeof body.errors[0].code).toBe('string');
    expect(typeof body.errors[0].message).toBe('string');
  };

  it('logs in with /auth/login (JSON whatever the Content-Type) and uses the Bearer token', async () => {
    const bad = await call('POST', `${url}/auth/login`, { raw: '{"username":"admin","password":"nope"}' });
    expectError(bad, 401);
    expect(bad.json().errors[0].message).toBe('Invalid username or password.');
    const ok = await call('POST', `${url}/auth/login`, {
      raw: '{"username":"admin","password":"orca-admin-pass","token":"","code":"","useTLS":false}',
    });
    expect(ok.status).toBe(200);
    const token = ok.json().auth_token as string;
    expect(token).toMatch(/^[0-9a-f-]{36}$/);
    const id = await call('GET', `${url}/id/`, { auth: `Bearer ${token}` });
    expect(id.status).toBe(200);
    expect(id.json()).toMatchObject({ name: 'admin', isAdmin: true, isOrg: false, isActive: true });
    expect(checkResponse('ucp-3.0', 'get', '/id/', 200, id.json())).toEqual([]);
    expectError(await call('GET', `${url}/id/`), 401);
    expectError(
      await call('GET', `${url}/id/`, { auth: 'Bearer 00000000-0000-0000-0000-000000000000' }),
      401,
    );
  });

  it('accepts HTTP Basic and eNZi session tokens, and ends a session on logout', async () => {
    expect((await call('GET', `${url}/id/`, { auth: ADMIN })).json().name).toBe('admin');
    const login = await call('POST', `${url}/enzi/v0/id/login`, {
      body: { username: 'admin', password: 'orca-admin-pass' },
    });
    expect(login.status).toBe(200);
    expect(checkResponse('ucp-3.0', 'post', '/id/login', 200, login.json())).toEqual([]);
    const auth = `SessionToken ${login.json().sessionToken as string}`;
    expect((await call('GET', `${url}/enzi/v0/id/`, { auth })).status).toBe(200);
    expect((await call('POST', `${url}/id/logout`, { auth })).status).toBe(204);
    expectError(await call('GET', `${url}/id/`, { auth }), 401);
  });

  it('creates users, orgs and teams, pages the account list, and checks the contract', async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      const created = await call('POST', `${url}/accounts/`, {
        auth: ADMIN,
        body: { name, password: 'password-1', fullName: name.toUpperCase() },
      });
      expect(created.status).toBe(201);
      expect(checkResponse('ucp-3.0', 'post', '/accounts/', 201, created.json())).toEqual([]);
    }
    expectError(
      await call('POST', `${url}/accounts/`, {
        auth: ADMIN,
        body: { name: 'alice', password: 'password-1' },
      }),
      409,
    );
    const org = await call('POST', `${url}/enzi/v0/accounts`, {
      auth: ADMIN,
      body: { name: 'eng', isOrg: true },
    });
    expect(org.status).toBe(201);
    expect(org.json()).toMatchObject({ name: 'eng', isOrg: true });

    const page1 = await call('GET', `${url}/accounts/?filter=users&order=name&limit=2`, { auth: ADMIN });
    expect(page1.status).toBe(200);
    expect(checkResponse('ucp-3.0', 'get', '/accounts/', 200, page1.json())).toEqual([]);
    expect(page1.json().accounts.map((a: { name: string }) => a.name)).toEqual(['admin', 'alice']);
    expect(page1.json()).toMatchObject({
      nextPageStart: 'bob',
      resourceCount: 4,
      usersCount: 4,
      orgsCount: 0,
    });
    const page2 = await call('GET', `${url}/accounts/?filter=users&limit=2&start=bob`, { auth: ADMIN });
    expect(page2.json().accounts.map((a: { name: string }) => a.name)).toEqual(['bob', 'carol']);
    expect(page2.json().nextPageStart).toBe('');
    const orgs = await call('GET', `${url}/accounts/?filter=orgs`, { auth: ADMIN });
    expect(orgs.json().accounts.map((a: { name: string }) => a.name)).toEqual(['docker-datacenter', 'eng']);
    const desc = await call('GET', `${url}/accounts/?filter=users&order=-fullName&contains=o`, {
      auth: ADMIN,
    });
    expect(desc.json().accounts.map((a: { name: string }) => a.name)).toEqual(['carol', 'bob', 'admin']);

    const alice = await call('GET', `${url}/accounts/alice`, { auth: ADMIN });
    expect(checkResponse('ucp-3.0', 'get', '/accounts/{accountNameOrID}', 200, alice.json())).toEqual([]);
    const byId = await call('GET', `${url}/accounts/${alice.json().id as string}`, { auth: ADMIN });
    expect(byId.json().name).toBe('alice');
    const patched = await call('PATCH', `${url}/accounts/alice`, {
      auth: ADMIN,
      body: { fullName: 'Alice A' },
    });
    expect(patched.json().fullName).toBe('Alice A');

    // New users are in docker-datacenter.
    const memberOrgs = await call('GET', `${url}/accounts/alice/organizations`, {
      auth: basic('alice', 'password-1'),
    });
    expect(memberOrgs.json().memberOrgs.map((m: { org: { name: string } }) => m.org.name)).toEqual([
      'docker-datacenter',
    ]);

    // Org membership and teams.
    const put = await call('PUT', `${url}/accounts/eng/members/alice`, {
      auth: ADMIN,
      body: { isAdmin: true },
    });
    expect(put.json()).toMatchObject({ isAdmin: true, member: { name: 'alice' } });
    const team = await call('POST', `${url}/accounts/eng/teams`, {
      auth: basic('alice', 'password-1'),
      body: { name: 'backend', description: 'api' },
    });
    expect(team.status).toBe(201);
    expect(team.json()).toMatchObject({ name: 'backend', orgID: org.json().id, membersCount: 0 });
    const addBob = await call('PUT', `${url}/accounts/eng/teams/backend/members/bob`, {
      auth: ADMIN,
      body: {},
    });
    expect(addBob.json()).toMatchObject({ isAdmin: false, member: { name: 'bob' } });
    expect(checkResponse('ucp-3.0', 'post', '/accounts/{orgNameOrID}/teams', 201, team.json())).toEqual([]);
    expect(
      checkResponse('ucp-3.0', 'put', '/accounts/{orgNameOrID}/members/{memberNameOrID}', 200, put.json()),
    ).toEqual([]);
    const orgMembers = await call('GET', `${url}/accounts/eng/members`, { auth: ADMIN });
    expect(
      checkResponse('ucp-3.0', 'get', '/accounts/{orgNameOrID}/members', 200, orgMembers.json()),
    ).toEqual([]);
    const teamList = await call('GET', `${url}/accounts/eng/teams`, { auth: ADMIN });
    expect(checkResponse('ucp-3.0', 'get', '/accounts/{orgNameOrID}/teams', 200, teamList.json())).toEqual(
      [],
    );
    const bobTeams = await call('GET', `${url}/enzi/v0/accounts/eng/members/bob/teams`, { auth: ADMIN });
    expect(
      checkResponse(
        'ucp-3.0',
        'get',
        '/accounts/{orgNameOrID}/members/{memberNameOrID}/teams',
        200,
        bobTeams.json(),
      ),
    ).toEqual([]);
    expect(bobTeams.json().memberTeams.map((m: { team: { name: string } }) => m.team.name)).toEqual([
      'backend',
    ]);
    // Adding to a team added bob to the org.
    expect((await call('GET', `${url}/accounts/eng/members/bob`, { auth: ADMIN })).status).toBe(200);
    const teamMembers = await call('GET', `${url}/accounts/eng/teams/${team.json().id as string}/members`, {
      auth: ADMIN,
    });
    expect(teamMembers.json().members.map((m: { member: { name: string } }) => m.member.name)).toEqual([
      'bob',
    ]);
    const members = await call('GET', `${url}/accounts/eng/members?filter=admins`, { auth: ADMIN });
    expect(members.json().members.map((m: { member: { name: string } }) => m.member.name)).toEqual(['alice']);
    expect(
      (
        await call('PATCH', `${url}/accounts/eng/teams/backend`, { auth: ADMIN, body: { description: 'x' } })
      ).json().description,
    ).toBe('x');
    expect((await call('GET', `${url}/accounts/eng/teams`, { auth: ADMIN })).json().teams).toHaveLength(1);
    expect(
      (await call('DELETE', `${url}/accounts/eng/teams/backend/members/bob`, { auth: ADMIN })).status,
    ).toBe(204);
    expect((await call('DELETE', `${url}/accounts/eng/members/bob`, { auth: ADMIN })).status).toBe(204);
    expect((await call('DELETE', `${url}/accounts/eng/teams/backend`, { auth: ADMIN })).status).toBe(204);
    expectError(await call('GET', `${url}/accounts/eng/teams/backend`, { auth: ADMIN }), 404);

    // Password change: self needs the old one.
    expectError(
      await call('POST', `${url}/accounts/carol/changePassword`, {
        auth: basic('carol', 'password-1'),
        body: { newPassword: 'password-2' },
      }),
      400,
    );
    expect(
      (
        await call('POST', `${url}/accounts/carol/changePassword`, {
          auth: basic('carol', 'password-1'),
          body: { oldPassword: 'password-1', newPassword: 'password-2' },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call('POST', `${url}/accounts/carol/changePassword`, {
          auth: ADMIN,
          body: { newPassword: 'password-3' },
        })
      ).status,
    ).toBe(200);
    expect((await call('GET', `${url}/id/`, { auth: basic('carol', 'password-3') })).status).toBe(200);
  });

  it('refuses non-admins (403) and bad input (4xx, never 500)', async () => {
    const bob = basic('bob', 'password-1');
    expectError(
      await call('POST', `${url}/accounts/`, {
        auth: bob,
        body: { name: 'mallory', password: 'password-1' },
      }),
      403,
    );
    expectError(await call('DELETE', `${url}/accounts/alice`, { auth: bob }), 403);
    expectError(await call('PUT', `${url}/accounts/eng/members/bob`, { auth: bob, body: {} }), 403);
    expectError(await call('POST', `${url}/accounts/eng/teams`, { auth: bob, body: { name: 't' } }), 403);
    expectError(await call('GET', `${url}/accounts/alice/publicKeys`, { auth: bob }), 403);

    expectError(await call('POST', `${url}/accounts/`, { auth: ADMIN, raw: '{"name":' }), 400);
    expectError(
      await call('POST', `${url}/accounts/`, { auth: ADMIN, body: { name: 42, password: 'password-1' } }),
      400,
    );
    expectError(
      await call('POST', `${url}/accounts/`, {
        auth: ADMIN,
        body: { name: 'dave', password: 'password-1', isAdmin: 'yes' },
      }),
      400,
    );
    expectError(await call('POST', `${url}/accounts/`, { auth: ADMIN, body: ['x'] }), 400);
    for (const name of ['../admin', 'a/b', '..', 'x%2F..%2Fadmin', '']) {
      const reply = await call('POST', `${url}/accounts/`, {
        auth: ADMIN,
        body: { name, password: 'password-1' },
      });
      expectError(reply, 400);
    }
    expectError(await call('GET', `${url}/accounts/..%2Fsessions`, { auth: ADMIN }), 404);
    expectError(
      await call('GET', `${url}/accounts/00000000-0000-0000-0000-000000000000`, { auth: ADMIN }),
      404,
    );
    expectError(await call('GET', `${url}/accounts/nobody/members`, { auth: ADMIN }), 404);
    expectError(await call('GET', `${url}/accounts/?filter=everyone`, { auth: ADMIN }), 400);
    expectError(await call('GET', `${url}/accounts/?limit=-1`, { auth: ADMIN }), 400);
    expectError(await call('POST', `${url}/auth/login`, { raw: 'not json' }), 400);
    expectError(await call('POST', `${url}/auth/login`, { body: { username: ['admin'], password: 1 } }), 401);
    expectError(await call('GET', `${url}/id/`, { auth: 'Digest abc' }), 401);
  });

  it('locks an account after repeated failed logins (429) and says so', async () => {
    await call('POST', `${url}/accounts/`, { auth: ADMIN, body: { name: 'erin', password: 'password-1' } });
    for (let i = 0; i < 5; i++) {
      expectError(
        await call('POST', `${url}/auth/login`, { body: { username: 'erin', password: 'wrong' } }),
        401,
      );
    }
    const locked = await call('POST', `${url}/auth/login`, {
      body: { username: 'erin', password: 'password-1' },
    });
    expectError(locked, 429);
    expect(locked.json().errors[0].message).toMatch(/locked/i);
    // Other accounts are unaffected.
    expect(
      (await call('POST', `${url}/auth/login`, { body: { username: 'bob', password: 'password-1' } })).status,
    ).toBe(200);
  });

  it('issues client bundles that authenticate over mutual TLS until their key is deleted', async () => {
    const login = await call('POST', `${url}/auth/login`, {
      body: { username: 'bob', password: 'password-1' },
    });
    const auth = `Bearer ${login.json().auth_token as string}`;
    const reply = await call('POST', `${url}/api/clientbundle?label=laptop`, { auth });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/zip');
    expect(Number(reply.headers['content-length'])).toBe(reply.body.length);
    const zip = await JSZip.loadAsync(reply.body);
    const names = Object.keys(zip.files)
      .filter((n) => !zip.files[n].dir)
      .sort();
    expect(names).toEqual(
      [
        'ca.pem',
        'cert.pem',
        'cert.pub',
        'env.cmd',
        'env.ps1',
        'env.sh',
        'key.pem',
        'kube.yml',
        'meta.json',
        'tls/docker/ca.pem',
        'tls/docker/cert.pem',
        'tls/docker/key.pem',
      ].sort(),
    );
    const read = (n: string) => zip.file(n)!.async('string');
    const [caPem, certPem, keyPem, certPub, kube, meta, envSh] = await Promise.all(
      ['ca.pem', 'cert.pem', 'key.pem', 'cert.pub', 'kube.yml', 'meta.json', 'env.sh'].map(read),
    );
    const { instanceId } = await controller.cas.cluster();
    const cert = parseCertificate(certPem);
    expect(cert.subject).toEqual({ O: `Orca: ${instanceId}`, OU: 'Client', CN: 'bob' });
    expect(cert.issuerCN).toBe('UCP Client Root CA');
    expect(cert.extendedKeyUsages).toEqual(['clientAuth']);
    const files = mkdtempSync(join(tmpdir(), 'orca-bundle-'));
    writeFileSync(join(files, 'root.pem'), (await controller.cas.clientAuthority()).certPem);
    writeFileSync(join(files, 'cert.pem'), certPem);
    expect(
      execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(files, 'root.pem'),
        join(files, 'cert.pem'),
      ]).toString(),
    ).toContain('OK');
    rmSync(files, { recursive: true, force: true });
    expect(execFileSync('openssl', ['pkey', '-noout', '-text'], { input: keyPem }).toString()).toMatch(
      /prime256v1|P-256/,
    );
    expect(JSON.parse(meta)).toMatchObject({
      Name: 'ucp-bundle-bob',
      Endpoints: { docker: { SkipTLSVerify: false } },
    });
    expect(envSh).toContain('export DOCKER_HOST=tcp://127.0.0.1:');
    const topKeys = kube
      .split('\n')
      .filter((l) => /^[A-Za-z-]+:/.test(l))
      .map((l) => l.split(':')[0]);
    expect(topKeys).toEqual([
      'apiVersion',
      'clusters',
      'contexts',
      'current-context',
      'kind',
      'preferences',
      'users',
    ]);

    const keys = await call('GET', `${url}/accounts/bob/publicKeys`, { auth });
    expect(
      checkResponse('ucp-3.0', 'get', '/accounts/{accountNameOrID}/publicKeys', 200, keys.json()),
    ).toEqual([]);
    const key = keys.json().accountPublicKeys.find((k: { label: string }) => k.label === 'laptop');
    expect(key.publicKey.trim()).toBe(certPub.trim());
    // The archive comment (the last bytes of the zip) is the key id.
    expect(reply.body.subarray(-64).toString()).toBe(key.id);

    // Mutual TLS with the bundle, trusting only its ca.pem.
    const mtls = await call('GET', `${url}/id/`, { cert: certPem, key: keyPem, ca: caPem });
    expect(mtls.status).toBe(200);
    expect(mtls.json().name).toBe('bob');

    // A certificate with an unregistered key (or from another CA) is refused.
    const other = await call('GET', `${url}/api/clientbundle`, { auth: ADMIN });
    const otherZip = await JSZip.loadAsync(other.body);
    const adminKeyId = (await call('GET', `${url}/accounts/admin/publicKeys`, { auth: ADMIN })).json()
      .accountPublicKeys[0].id as string;
    expect(
      (await call('DELETE', `${url}/accounts/admin/publicKeys/${adminKeyId}`, { auth: ADMIN })).status,
    ).toBe(204);
    const refused = await call('GET', `${url}/id/`, {
      cert: await otherZip.file('cert.pem')!.async('string'),
      key: await otherZip.file('key.pem')!.async('string'),
      ca: caPem,
    });
    expectError(refused, 401);

    // Relabel, then revoke by deleting the key.
    const relabel = await call('PATCH', `${url}/accounts/bob/publicKeys/${key.id as string}`, {
      auth,
      body: { label: 'old laptop' },
    });
    expect(relabel.json().label).toBe('old laptop');
    expect(
      (await call('DELETE', `${url}/accounts/bob/publicKeys/${key.id as string}`, { auth })).status,
    ).toBe(204);
    expectError(await call('GET', `${url}/id/`, { cert: certPem, key: keyPem, ca: caPem }), 401);
    expectError(await call('DELETE', `${url}/accounts/bob/publicKeys/${key.id as string}`, { auth }), 404);
  });

  it('revokes bundles and sessions when an account is deactivated or deleted', async () => {
    await call('POST', `${url}/accounts/`, { auth: ADMIN, body: { name: 'frank', password: 'password-1' } });
    const token = (
      await call('POST', `${url}/auth/login`, { body: { username: 'frank', password: 'password-1' } })
    ).json().auth_token as string;
    const zip = await JSZip.loadAsync(
      (await call('GET', `${url}/api/clientbundle`, { auth: `Bearer ${token}` })).body,
    );
    const tls = {
      cert: await zip.file('cert.pem')!.async('string'),
      key: await zip.file('key.pem')!.async('string'),
      ca: await zip.file('ca.pem')!.async('string'),
    };
    expect((await call('GET', `${url}/id/`, tls)).status).toBe(200);
    await call('PATCH', `${url}/accounts/frank`, { auth: ADMIN, body: { isActive: false } });
    expectError(await call('GET', `${url}/id/`, tls), 401);
    expectError(await call('GET', `${url}/id/`, { auth: `Bearer ${token}` }), 401);
    await call('PATCH', `${url}/accounts/frank`, { auth: ADMIN, body: { isActive: true } });
    expect((await call('GET', `${url}/id/`, tls)).status).toBe(200);
    expect((await call('DELETE', `${url}/accounts/frank`, { auth: ADMIN })).status).toBe(204);
    expectError(await call('GET', `${url}/id/`, tls), 401);
    expectError(await call('GET', `${url}/accounts/frank`, { auth: ADMIN }), 404);
  });
});

// Identity and RBAC together: a grant to a team reaches the team's members through eNZi's
// directory, and a user logged in with a token sees exactly what the grants allow.
import { loadControllerConfig } from '@orca/config';
import { freePort } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsJson, httpsRequest } from '../../../agent/src/https-json.js';
import { startController, type RunningController } from '../controller.js';

describe('team grants through the directory', () => {
  let dir: string;
  let controller: RunningController;
  const admin = { insecure: true, basic: Buffer.from('admin:team-admin-pass').toString('base64') };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-teams-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'team-admin-pass',
      }),
    );
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets a team member see a collection granted to the team, and not before', async () => {
    const url = controller.url;
    await httpsJson('POST', `${url}/accounts/`, admin, {
      name: 'alice',
      password: 'alice-pass-1',
      isOrg: false,
    });
    await httpsJson('POST', `${url}/accounts/`, admin, { name: 'eng', isOrg: true });
    const team = await httpsJson<{ id: string }>('POST', `${url}/accounts/eng/teams`, admin, { name: 'ops' });
    await httpsJson('PUT', `${url}/accounts/eng/teams/ops/members/alice`, admin, { isAdmin: false });
    const { id: collection } = await httpsJson<{ id: string }>('POST', `${url}/collections`, admin, {
      name: 'prod',
      parent_id: 'swarm',
    });

    const { auth_token } = await httpsJson<{ auth_token: string }>(
      'POST',
      `${url}/auth/login`,
      { insecure: true },
      {
        username: 'alice',
        password: 'alice-pass-1',
      },
    );
    const bearerGet = (path: string) =>
      new Promise<{ status: number }>((resolve, reject) => {
        import('node:https').then(({ request }) => {
          const req = request(
            `${url}${path}`,
            { rejectUnauthorized: false, headers: { authorization: `Bearer ${auth_token}` } },
            (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
            },
          );
          req.on('error', reject);
          req.end();
        }, reject);
      });
    expect((await bearerGet(`/collections/${collection}`)).status).toBe(404);
    const granted = await httpsRequest(
      'PUT',
      `${url}/collectionGrants/${team.id}/${collection}/viewonly`,
      admin,
    );
    expect(granted.status).toBe(201);
    expect((await bearerGet(`/collections/${collection}`)).status).toBe(200);
    const listed = await httpsJson<{ subjects: { id: string; subject_type: string }[] }>(
      'GET',
      `${url}/collectionGrants?subjectID=${team.id}`,
      admin,
    );
    expect(listed.subjects).toEqual([expect.objectContaining({ id: team.id, subject_type: 'team' })]);
  });
});

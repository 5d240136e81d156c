// Push mirroring end to end: a policy on alice/app pushes matching tags to Debian's
// docker-registry (plain HTTP, no auth; skopeo then inspects the image there) and to another
// repository of an orca DTR over HTTPS with token auth (Basic credentials exchanged for a bearer
// token). Secrets never come back from the API; bad input gets DTR's 4xx errors.
import { checkResponse } from '@orca/api';
import { freePort } from '@orca/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dtrRequest, pushImage, registryToken, startTestDtr, type TestDtr } from './test-dtr.js';

function skopeo(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`skopeo ${args.join(' ')}: ${err}`)),
    );
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('DTR push mirroring', () => {
  let dtr: TestDtr;
  let registry: ChildProcess | undefined;
  let registryHost = '';
  const alice: [string, string] = ['alice', 'alice-password'];
  const bob: [string, string] = ['bob', 'bob-password'];
  const json = (value: unknown) => JSON.stringify(value);
  const policies = '/api/v0/repositories/alice/app/pushMirroringPolicies';

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser(...alice);
    await dtr.createUser(...bob);
    for (const name of ['app', 'mirror', 'polled']) {
      const res = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice', {
        basic: alice,
        body: json({ name, visibility: 'private' }),
      });
      expect(res.status).toBe(201);
    }
    registryHost = `127.0.0.1:${await freePort()}`;
    const storage = mkdtempSync(join(dtr.dir, 'registry-'));
    const configFile = join(storage, 'config.yml');
    writeFileSync(
      configFile,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\nhttp:\n  addr: ${registryHost}\n`,
    );
    registry = spawn('docker-registry', ['serve', configFile], { stdio: 'ignore' });
    await waitFor('docker-registry', () =>
      fetch(`http://${registryHost}/v2/`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      ),
    );
  }, 60_000);

  afterAll(async () => {
    registry?.kill('SIGTERM');
    await dtr?.close();
  });

  it('mirrors matching pushes to docker-registry and to a token-auth registry', async () => {
    const toRegistry = await dtrRequest(dtr, 'POST', policies, {
      basic: alice,
      body: json({
        rules: [{ field: 'tag', operator: 'sw', values: ['v'] }],
        remoteHost: `http://${registryHost}`,
        remoteRepository: 'mirrored/app',
        remoteCA: '',
        skipTLSVerification: false,
        tagTemplate: '%n',
        enabled: true,
        username: '',
        password: '',
        authToken: '',
      }),
    });
    expect(toRegistry.status).toBe(201);
    expect(
      checkResponse(
        'dtr-2.5',
        'post',
        '/api/v0/repositories/{namespace}/{reponame}/pushMirroringPolicies',
        201,
        toRegistry.json(),
      ),
    ).toEqual([]);
    const toDtr = await dtrRequest(dtr, 'POST', policies, {
      basic: alice,
      body: json({
        rules: [],
        remoteHost: dtr.dtr.url,
        remoteRepository: 'alice/mirror',
        remoteCA: dtr.dtr.caPem,
        skipTLSVerification: false,
        tagTemplate: 'copy-%n',
        enabled: true,
        username: 'alice',
        password: alice[1],
        authToken: '',
      }),
    });
    expect(toDtr.status).toBe(201);
    expect(toDtr.text).not.toContain(alice[1]);
    const mirrorPolicy = toDtr.json<{ id: string }>();

    const token = await registryToken(dtr, ['repository:alice/app:pull,push'], alice);
    const digest = await pushImage(dtr, 'alice/app', ['v1'], token);

    const inspected = await waitFor('the image in docker-registry', () =>
      skopeo(['inspect', '--tls-verify=false', `docker://${registryHost}/mirrored/app:v1`]).then(
        (out) => JSON.parse(out) as { Digest: string; Architecture: string },
        () => undefined,
      ),
    );
    expect(inspected.Digest).toBe(digest);

    const pull = await registryToken(dtr, ['repository:alice/mirror:pull'], alice);
    const copied = await waitFor('the image in alice/mirror', async () => {
      const res = await dtrRequest(dtr, 'GET', '/v2/alice/mirror/manifests/copy-v1', {
        bearer: pull,
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      return res.status === 200 ? res : undefined;
    });
    expect(copied.headers['docker-content-digest']).toBe(digest);

    const status = await waitFor('lastStatus', async () => {
      const res = await dtrRequest(dtr, 'GET', `${policies}/${mirrorPolicy.id}`, { basic: alice });
      const body = res.json<{ lastStatus: { code: string } }>();
      return body.lastStatus.code ? res : undefined;
    });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/pushMirroringPolicies/{pushmirroringpolicyid}',
        200,
        status.json(),
      ),
    ).toEqual([]);
    expect(status.json()).toMatchObject({ lastStatus: { code: 'SUCCESS' }, localRepository: 'alice/app' });
    const listed = await dtrRequest(dtr, 'GET', policies, { basic: alice });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/pushMirroringPolicies',
        200,
        listed.json(),
      ),
    ).toEqual([]);
    expect(listed.text).not.toContain(alice[1]);

    // A wrong password: the push still succeeds locally; the policy records the failure.
    const wrong = await dtrRequest(dtr, 'PUT', `${policies}/${mirrorPolicy.id}`, {
      basic: alice,
      body: json({ password: 'wrong' }),
    });
    expect(wrong.status).toBe(200);
    await pushImage(dtr, 'alice/app', ['v2'], token, 'second');
    const failed = await waitFor('a failed status', async () => {
      const res = await dtrRequest(dtr, 'GET', `${policies}/${mirrorPolicy.id}`, { basic: alice });
      const body = res.json<{ lastStatus: { code: string; detail: string } }>();
      return body.lastStatus.code === 'FAILED' ? body : undefined;
    });
    expect(failed.lastStatus.detail).not.toContain('wrong');
    expect((await dtrRequest(dtr, 'DELETE', `${policies}/${mirrorPolicy.id}`, { basic: alice })).status).toBe(
      204,
    );
  }, 90_000);

  it('polls the tags of a remote repository into a local one', async () => {
    // mirrored/app:v1 is in docker-registry (pushed by the policy above).
    const created = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice/polled/pollMirroringPolicies', {
      basic: alice,
      body: json({
        remoteHost: `http://${registryHost}`,
        remoteRepository: 'mirrored/app',
        remoteCA: '',
        skipTLSVerification: false,
        enabled: true,
        username: '',
        password: '',
        authToken: '',
      }),
    });
    expect(created.status).toBe(201);
    expect(
      checkResponse(
        'dtr-2.5',
        'post',
        '/api/v0/repositories/{namespace}/{reponame}/pollMirroringPolicies',
        201,
        created.json(),
      ),
    ).toEqual([]);
    const source = await skopeo([
      'inspect',
      '--tls-verify=false',
      `docker://${registryHost}/mirrored/app:v1`,
    ]);
    const pull = await registryToken(dtr, ['repository:alice/polled:pull'], alice);
    const polled = await waitFor('the polled tag', async () => {
      const res = await dtrRequest(dtr, 'GET', '/v2/alice/polled/manifests/v1', {
        bearer: pull,
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      return res.status === 200 ? res : undefined;
    });
    expect(polled.headers['docker-content-digest']).toBe((JSON.parse(source) as { Digest: string }).Digest);
    const layers = polled.json<{ layers: { digest: string }[] }>().layers;
    const blob = await dtrRequest(dtr, 'GET', `/v2/alice/polled/blobs/${layers[0]!.digest}`, {
      bearer: pull,
    });
    expect(blob.status).toBe(200);
    const { id } = created.json<{ id: string }>();
    const got = await waitFor('poll status', async () => {
      const res = await dtrRequest(
        dtr,
        'GET',
        `/api/v0/repositories/alice/polled/pollMirroringPolicies/${id}`,
        { basic: alice },
      );
      return res.json<{ lastStatus: { code: string } }>().lastStatus.code ? res : undefined;
    });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/pollMirroringPolicies/{pollmirroringpolicyid}',
        200,
        got.json(),
      ),
    ).toEqual([]);
    expect(got.json()).toMatchObject({ lastStatus: { code: 'SUCCESS' }, localRepository: 'alice/polled' });
  }, 60_000);

  it('answers bad input with DTR errors', async () => {
    const error = async (res: Promise<{ status: number; json<T>(): T }>, status: number, code: string) => {
      const r = await res;
      expect({ status: r.status, code: r.json<{ errors: { code: string }[] }>().errors[0]!.code }).toEqual({
        status,
        code,
      });
    };
    const valid = {
      rules: [],
      remoteHost: 'https://registry.example',
      remoteRepository: 'a/b',
      tagTemplate: '%n',
      enabled: true,
    };
    const post = (body: string, who = alice) => dtrRequest(dtr, 'POST', policies, { basic: who, body });
    await error(post('nope'), 400, 'INVALID_JSON');
    await error(post(json({ ...valid, remoteHost: 'ftp://x' })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, remoteHost: 'https://u:p@x' })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, remoteRepository: 'UPPER/case' })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, password: 7 })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, enabled: undefined })), 400, 'INVALID_PARAMETERS');
    await error(post(json(valid), bob), 404, 'NO_SUCH_REPOSITORY');
    await error(
      dtrRequest(dtr, 'GET', `${policies}/00000000-0000-0000-0000-000000000000`, { basic: alice }),
      404,
      'NO_SUCH_PUSH_MIRRORING_POLICY',
    );
  });
});

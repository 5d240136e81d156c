// Promotion policies end to end: a policy on alice/dev copies matching pushes into alice/prod
// under a templated tag (the image then pulls from prod), fires a PROMOTION webhook, and the
// policy endpoints answer per DTR 2.5's Swagger, with DTR's errors for bad input.
import { checkResponse } from '@orca/api';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dtrRequest, pushImage, registryToken, sha256, startTestDtr, type TestDtr } from './test-dtr.js';

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('DTR promotion policies', () => {
  let dtr: TestDtr;
  let receiver: Server;
  let receiverUrl = '';
  const received: { type: string; contents: Record<string, unknown> }[] = [];
  const alice: [string, string] = ['alice', 'alice-password'];
  const bob: [string, string] = ['bob', 'bob-password'];
  const json = (value: unknown) => JSON.stringify(value);
  const policies = '/api/v0/repositories/alice/dev/promotionPolicies';

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof received)[number]);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    dtr = await startTestDtr();
    await dtr.createUser(...alice);
    await dtr.createUser(...bob);
    for (const [who, name] of [
      [alice, 'dev'],
      [alice, 'prod'],
      [bob, 'mine'],
    ] as const) {
      const res = await dtrRequest(dtr, 'POST', `/api/v0/repositories/${who[0]}`, {
        basic: who,
        body: json({ name, visibility: 'private' }),
      });
      expect(res.status).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    await dtr?.close();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  });

  it('promotes a matching push into the target repository, which then serves it', async () => {
    const hook = await dtrRequest(dtr, 'POST', '/api/v0/webhooks', {
      basic: alice,
      body: json({ type: 'PROMOTION', key: 'alice/prod', endpoint: receiverUrl }),
    });
    expect(hook.status).toBe(200);
    const created = await dtrRequest(dtr, 'POST', policies, {
      basic: alice,
      body: json({
        rules: [
          { field: 'tag', operator: 'sw', values: ['release-'] },
          { field: 'vulnerability_critical', operator: 'eq', values: ['0'] },
        ],
        targetRepository: 'alice/prod',
        tagTemplate: '%n-stable',
        enabled: true,
      }),
    });
    expect(created.status).toBe(201);
    expect(
      checkResponse(
        'dtr-2.5',
        'post',
        '/api/v0/repositories/{namespace}/{reponame}/promotionPolicies',
        201,
        created.json(),
      ),
    ).toEqual([]);
    const policy = created.json<{ id: string; lastPromotedAt: string }>();
    expect(created.json()).toMatchObject({
      sourceRepository: 'alice/dev',
      targetRepository: 'alice/prod',
      enabled: true,
    });

    const token = await registryToken(dtr, ['repository:alice/dev:pull,push'], alice);
    await pushImage(dtr, 'alice/dev', ['dev-1'], token, 'unmatched');
    const digest = await pushImage(dtr, 'alice/dev', ['release-1'], token, 'matched');

    const pull = await registryToken(dtr, ['repository:alice/prod:pull'], alice);
    const manifest = await waitFor('the promoted tag', async () => {
      const res = await dtrRequest(dtr, 'GET', '/v2/alice/prod/manifests/release-1-stable', {
        bearer: pull,
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      return res.status === 200 ? res : undefined;
    });
    expect(manifest.headers['docker-content-digest']).toBe(digest);
    const layers = manifest.json<{ config: { digest: string }; layers: { digest: string }[] }>();
    for (const blob of [layers.config, ...layers.layers]) {
      const res = await dtrRequest(dtr, 'GET', `/v2/alice/prod/blobs/${blob.digest}`, { bearer: pull });
      expect(res.status).toBe(200);
      expect(sha256(res.body)).toBe(blob.digest);
    }
    const tags = await dtrRequest(dtr, 'GET', '/v2/alice/prod/tags/list', { bearer: pull });
    expect(tags.json()).toEqual({ name: 'alice/prod', tags: ['release-1-stable'] });

    const event = await waitFor('PROMOTION webhook', () => received.find((r) => r.type === 'PROMOTION'));
    expect(event.contents).toMatchObject({
      namespace: 'alice',
      repository: 'prod',
      tag: 'release-1-stable',
      digest,
      sourceRepository: 'alice/dev',
      sourceTag: 'release-1',
    });

    const got = await dtrRequest(dtr, 'GET', `${policies}/${policy.id}`, { basic: alice });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/promotionPolicies/{promotionpolicyid}',
        200,
        got.json(),
      ),
    ).toEqual([]);
    expect(got.json<{ lastPromotedAt: string }>().lastPromotedAt).not.toMatch(/^0001/);
    const listed = await dtrRequest(dtr, 'GET', policies, { basic: alice });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/promotionPolicies',
        200,
        listed.json(),
      ),
    ).toEqual([]);
    expect(listed.json<unknown[]>()).toHaveLength(1);
    const asTarget = await dtrRequest(
      dtr,
      'GET',
      '/api/v0/repositories/alice/prod/promotionPolicies?source=false',
      { basic: alice },
    );
    expect(asTarget.json<{ id: string }[]>().map((p) => p.id)).toEqual([policy.id]);

    // Disabled: later matching pushes stay put; PUT answers the updated policy.
    const updated = await dtrRequest(dtr, 'PUT', `${policies}/${policy.id}`, {
      basic: alice,
      body: json({ enabled: false }),
    });
    expect(updated.status).toBe(200);
    expect(
      checkResponse(
        'dtr-2.5',
        'put',
        '/api/v0/repositories/{namespace}/{reponame}/promotionPolicies/{promotionpolicyid}',
        200,
        updated.json(),
      ),
    ).toEqual([]);
    await pushImage(dtr, 'alice/dev', ['release-2'], token, 'later');
    await new Promise((r) => setTimeout(r, 500));
    expect(
      (await dtrRequest(dtr, 'GET', '/v2/alice/prod/manifests/release-2-stable', { bearer: pull })).status,
    ).toBe(404);

    expect((await dtrRequest(dtr, 'DELETE', `${policies}/${policy.id}`, { basic: alice })).status).toBe(204);
    expect((await dtrRequest(dtr, 'GET', `${policies}/${policy.id}`, { basic: alice })).status).toBe(404);
  }, 60_000);

  it('answers bad input and missing permissions with DTR errors', async () => {
    const error = async (res: Promise<{ status: number; json<T>(): T }>, status: number, code: string) => {
      const r = await res;
      expect({ status: r.status, code: r.json<{ errors: { code: string }[] }>().errors[0]!.code }).toEqual({
        status,
        code,
      });
    };
    const valid = { rules: [], targetRepository: 'alice/prod', tagTemplate: '%n', enabled: true };
    const post = (body: string, who = alice, path = policies) =>
      dtrRequest(dtr, 'POST', path, { basic: who, body });
    await error(post('{"rules":'), 400, 'INVALID_JSON');
    await error(post(json({ ...valid, rules: 'tag' })), 400, 'INVALID_PARAMETERS');
    await error(
      post(json({ ...valid, rules: [{ field: 'tag', operator: 'gt', values: ['1'] }] })),
      400,
      'INVALID_PARAMETERS',
    );
    await error(
      post(json({ ...valid, rules: [{ field: 'colour', operator: 'eq', values: ['x'] }] })),
      400,
      'INVALID_PARAMETERS',
    );
    await error(post(json({ ...valid, enabled: 'yes' })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, tagTemplate: '%q' })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, tagTemplate: 'a b' })), 400, 'INVALID_TAG_NAME');
    await error(post(json({ ...valid, targetRepository: 42 })), 400, 'INVALID_PARAMETERS');
    await error(post(json({ ...valid, targetRepository: 'alice/none' })), 404, 'NO_SUCH_REPOSITORY');
    // alice cannot see bob's private repository; bob is no admin of alice's.
    await error(post(json({ ...valid, targetRepository: 'bob/mine' })), 404, 'NO_SUCH_REPOSITORY');
    await error(
      post(
        json({ ...valid, targetRepository: 'alice/prod' }),
        bob,
        '/api/v0/repositories/bob/mine/promotionPolicies',
      ),
      404,
      'NO_SUCH_REPOSITORY',
    );
    await error(post(json(valid), bob), 404, 'NO_SUCH_REPOSITORY');
    await error(
      dtrRequest(dtr, 'GET', `${policies}/00000000-0000-0000-0000-000000000000`, { basic: alice }),
      404,
      'NO_SUCH_PROMOTION_POLICY',
    );
    await error(
      dtrRequest(dtr, 'DELETE', `${policies}/not-an-id`, { basic: alice }),
      404,
      'NO_SUCH_PROMOTION_POLICY',
    );
    await error(dtrRequest(dtr, 'GET', policies), 401, 'NOT_AUTHENTICATED');
  });
});

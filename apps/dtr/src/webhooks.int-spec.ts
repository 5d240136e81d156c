// DTR 2.5 webhooks end to end: subscriptions through /api/v0/webhooks, deliveries of DTR's
// envelope to a receiver on 127.0.0.1 after a push, retries with backoff against a receiver that
// fails twice, REPO_EVENT for a repository a push created, a bounded delivery history, the test
// endpoint, and DTR's 4xx answers to bad input.
import { checkResponse } from '@orca/api';
import { WebhookDispatcher, WebhookStore, tagPushEvent, parseRepositoryName } from '@orca/registry';
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dtrRequest, pushImage, registryToken, startTestDtr, type TestDtr } from './test-dtr.js';

interface Received {
  path: string;
  body: { type: string; createdAt: string; contents: Record<string, unknown> };
}

/** An HTTP receiver that records every POST; `/flaky` answers 500 to its first two requests. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  let flakyCalls = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      if (path === '/flaky' && ++flakyCalls <= 2) {
        res.writeHead(500).end('not yet');
        return;
      }
      received.push({ path, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'] });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('DTR webhooks', () => {
  let dtr: TestDtr;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const alice: [string, string] = ['alice', 'alice-password'];
  const bob: [string, string] = ['bob', 'bob-password'];
  const root: [string, string] = ['root', 'root-password'];
  const json = (value: unknown) => JSON.stringify(value);

  beforeAll(async () => {
    receiver = await startReceiver();
    dtr = await startTestDtr();
    await dtr.createUser(...alice);
    await dtr.createUser(...bob);
    await dtr.createUser(...root, true);
    const res = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice', {
      basic: alice,
      body: json({ name: 'app', visibility: 'public' }),
    });
    expect(res.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await dtr?.close();
    await receiver?.close();
  });

  const createHook = (who: [string, string], form: Record<string, unknown>) =>
    dtrRequest(dtr, 'POST', '/api/v0/webhooks', { basic: who, body: json(form) });

  it('delivers TAG_PUSH and MANIFEST_PUSH in DTR envelope after a push, retrying a failing receiver', async () => {
    const tagHook = await createHook(alice, {
      type: 'TAG_PUSH',
      key: 'alice/app',
      endpoint: `${receiver.url}/tags`,
    });
    expect(tagHook.status).toBe(200);
    const hook = tagHook.json<{ id: string; authorID: string }>();
    expect(hook).toMatchObject({ type: 'TAG_PUSH', key: 'alice/app', inactive: false });
    expect(hook.id).toMatch(/^[0-9a-f]{64}$/);
    expect(
      (
        await createHook(alice, {
          type: 'MANIFEST_PUSH',
          key: 'alice/app',
          endpoint: `${receiver.url}/manifests`,
        })
      ).status,
    ).toBe(200);
    const flaky = (
      await createHook(alice, { type: 'TAG_PUSH', key: 'alice', endpoint: `${receiver.url}/flaky` })
    ).json<{ id: string }>();

    const listed = await dtrRequest(dtr, 'GET', '/api/v0/webhooks', { basic: alice });
    expect(listed.status).toBe(200);
    expect(checkResponse('dtr-2.5', 'get', '/api/v0/webhooks', 200, listed.json())).toEqual([]);
    expect(listed.json<unknown[]>()).toHaveLength(3);
    const repoHooks = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/webhooks', {
      basic: alice,
    });
    expect(
      checkResponse(
        'dtr-2.5',
        'get',
        '/api/v0/repositories/{namespace}/{reponame}/webhooks',
        200,
        repoHooks.json(),
      ),
    ).toEqual([]);
    expect(repoHooks.json<unknown[]>()).toHaveLength(2);
    const nsHooks = await dtrRequest(dtr, 'GET', '/api/v0/accounts/alice/webhooks', { basic: alice });
    expect(
      checkResponse('dtr-2.5', 'get', '/api/v0/accounts/{namespace}/webhooks', 200, nsHooks.json()),
    ).toEqual([]);
    expect(nsHooks.json<unknown[]>()).toHaveLength(1);
    // bob administers nothing here: sees no hooks, may not list the repository's.
    expect((await dtrRequest(dtr, 'GET', '/api/v0/webhooks', { basic: bob })).json()).toEqual([]);
    expect(
      (await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/app/webhooks', { basic: bob })).status,
    ).toBe(403);

    const token = await registryToken(dtr, ['repository:alice/app:pull,push'], alice);
    const started = Date.now();
    const digest = await pushImage(dtr, 'alice/app', ['v1'], token);
    expect(Date.now() - started).toBeLessThan(5_000);

    const tagPush = await waitFor('TAG_PUSH delivery', () =>
      receiver.received.find((r) => r.path === '/tags'),
    );
    expect(tagPush.body).toEqual({
      type: 'TAG_PUSH',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      contents: {
        namespace: 'alice',
        repository: 'app',
        tag: 'v1',
        digest,
        imageName: `${dtr.dtr.registryHost}/alice/app:v1`,
        os: 'linux',
        architecture: 'amd64',
        author: 'alice',
        pushedAt: expect.stringMatching(/^\d{4}-/),
      },
    });
    const manifestPush = await waitFor('MANIFEST_PUSH delivery', () =>
      receiver.received.find((r) => r.path === '/manifests'),
    );
    expect(manifestPush.body.type).toBe('MANIFEST_PUSH');
    expect(manifestPush.body.contents).toMatchObject({
      digest,
      imageName: `${dtr.dtr.registryHost}/alice/app@${digest}`,
    });

    // Fails twice, then succeeds after ~1 s and ~2 s of backoff; the history keeps every attempt.
    const flakyDelivered = await waitFor('flaky delivery', () =>
      receiver.received.find((r) => r.path === '/flaky'),
    );
    expect(flakyDelivered.body.contents).toMatchObject({ tag: 'v1', digest });
    const history = await dtrRequest(dtr, 'GET', `/api/v0/webhooks/${flaky.id}/deliveries`, { basic: alice });
    const [delivery] = history.json<{ state: string; attempts: { at: string; status: number }[] }[]>();
    expect(delivery!.state).toBe('delivered');
    expect(delivery!.attempts.map((a) => a.status)).toEqual([500, 500, 200]);
    const gaps = delivery!.attempts
      .slice(1)
      .map((a, i) => Date.parse(a.at) - Date.parse(delivery!.attempts[i]!.at));
    expect(gaps[0]).toBeGreaterThanOrEqual(900);
    expect(gaps[1]).toBeGreaterThanOrEqual(1900);
    const fetched = await dtrRequest(dtr, 'GET', `/api/v0/webhooks/${flaky.id}`, { basic: alice });
    expect(fetched.json<{ lastSuccessfulAt: string }>().lastSuccessfulAt).not.toMatch(/^0001/);

    // Deactivated hooks get nothing; a tag delete reaches a TAG_DELETE hook.
    const off = await dtrRequest(dtr, 'POST', '/api/v0/webhooks/update', {
      basic: alice,
      body: json({ id: hook.id, inactive: true }),
    });
    expect(off.status).toBe(200);
    expect(checkResponse('dtr-2.5', 'post', '/api/v0/webhooks/update', 200, off.json())).toEqual([]);
    expect(
      (await createHook(alice, { type: 'TAG_DELETE', key: 'alice/app', endpoint: `${receiver.url}/deleted` }))
        .status,
    ).toBe(200);
    await pushImage(dtr, 'alice/app', ['v2'], token, 'second');
    const deleted = await dtrRequest(dtr, 'DELETE', '/api/v0/repositories/alice/app/tags/v2', {
      basic: alice,
    });
    expect(deleted.status).toBe(204);
    const tagDelete = await waitFor('TAG_DELETE delivery', () =>
      receiver.received.find((r) => r.path === '/deleted'),
    );
    expect(tagDelete.body.contents).toMatchObject({
      tag: 'v2',
      namespace: 'alice',
      deletedAt: expect.any(String),
    });
    await waitFor('v2 on the flaky hook', () =>
      receiver.received.find((r) => r.path === '/flaky' && r.body.contents.tag === 'v2'),
    );
    expect(receiver.received.filter((r) => r.path === '/tags')).toHaveLength(1);

    expect((await dtrRequest(dtr, 'DELETE', `/api/v0/webhooks/${hook.id}`, { basic: alice })).status).toBe(
      200,
    );
    expect((await dtrRequest(dtr, 'GET', `/api/v0/webhooks/${hook.id}`, { basic: alice })).status).toBe(404);
  }, 60_000);

  it('delivers each event once when several replicas work the queue at the same time', async () => {
    const webhooks = new WebhookStore(dtr.store);
    const created = await createHook(alice, {
      type: 'TAG_PUSH',
      key: 'alice/app',
      endpoint: `${receiver.url}/once`,
    });
    expect(created.status).toBe(200);
    // Two more dispatchers on the same store race the DTR's own for the queued delivery.
    const replicas = [1, 2].map(
      (n) => new WebhookDispatcher({ store: dtr.store, webhooks, replicaId: `replica-${n}` }),
    );
    const event = tagPushEvent(
      'h',
      {
        name: parseRepositoryName('alice/app')!,
        digest: `sha256:${'1'.repeat(64)}`,
        author: 'alice',
        tag: 'race',
      },
      { os: 'linux', architecture: 'amd64' },
      new Date(),
    );
    const [delivery] = await webhooks.enqueue(event);
    expect(delivery).toBeDefined();
    await Promise.all(replicas.map((r) => r.runOnce()));
    await waitFor('the raced delivery', () => receiver.received.find((r) => r.path === '/once'));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(receiver.received.filter((r) => r.path === '/once')).toHaveLength(1);
    const [record] = await webhooks.deliveries(created.json<{ id: string }>().id);
    expect(record!.attempts).toHaveLength(1);
    expect(record!.state).toBe('delivered');
  });

  it('publishes REPO_CREATED once when a push creates the repository (createRepositoryOnPush)', async () => {
    const hook = await createHook(alice, {
      type: 'REPO_EVENT',
      key: 'alice',
      endpoint: `${receiver.url}/alice-repos`,
    });
    expect(hook.status).toBe(200);
    const bobHook = await createHook(bob, {
      type: 'REPO_EVENT',
      key: 'bob',
      endpoint: `${receiver.url}/bob-repos`,
    });
    expect(bobHook.status).toBe(200);
    const settings = (value: boolean) =>
      dtrRequest(dtr, 'POST', '/api/v0/meta/settings', {
        basic: root,
        body: json({ createRepositoryOnPush: value }),
      });
    expect((await settings(true)).status).toBe(202);
    try {
      const token = await registryToken(dtr, ['repository:alice/made-by-push:pull,push'], alice);
      await pushImage(dtr, 'alice/made-by-push', ['v1'], token);
      await pushImage(dtr, 'alice/made-by-push', ['v2'], token, 'again');
      const event = await waitFor('REPO_CREATED delivery', () =>
        receiver.received.find((r) => r.path === '/alice-repos'),
      );
      const repository = await dtrRequest(dtr, 'GET', '/api/v0/repositories/alice/made-by-push', {
        basic: alice,
      });
      expect(event.body).toEqual({
        type: 'REPO_EVENT',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        contents: {
          namespace: 'alice',
          repository: 'made-by-push',
          event: 'REPO_CREATED',
          author: 'alice',
          // The repository as the API shows it: private, as DTR creates on push.
          data: repository.json(),
        },
      });
      expect(repository.json()).toMatchObject({ visibility: 'private', namespaceType: 'user' });
      // One repository, one REPO_CREATED: the second push (and its blobs) created nothing.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(receiver.received.filter((r) => r.path === '/alice-repos')).toHaveLength(1);
      expect(receiver.received.filter((r) => r.path === '/bob-repos')).toHaveLength(0);
    } finally {
      await settings(false);
    }
  });

  it('keeps a bounded history of finished deliveries per webhook', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orca-webhook-history-'));
    const store = new EmbeddedStore({ dir });
    try {
      const webhooks = new WebhookStore(store);
      const hook = await webhooks.create({
        type: 'TAG_PUSH',
        key: 'alice/app',
        endpoint: `${receiver.url}/history`,
        authorID: 'alice',
        tlsCert: '',
        skipTLSVerification: false,
      });
      const dispatcher = new WebhookDispatcher({ store, webhooks, deliveryHistory: 3 });
      const event = (tag: string) =>
        tagPushEvent(
          'h',
          {
            name: parseRepositoryName('alice/app')!,
            digest: `sha256:${'2'.repeat(64)}`,
            author: 'alice',
            tag,
          },
          { os: 'linux', architecture: 'amd64' },
          new Date(),
        );
      for (let i = 0; i < 7; i++) {
        await webhooks.enqueue(event(`h${i}`));
        // Distinct creation times, so "newest" is well defined.
        await new Promise((r) => setTimeout(r, 5));
      }
      while ((await dispatcher.runOnce()) > 0);
      expect(receiver.received.filter((r) => r.path === '/history')).toHaveLength(7);
      const kept = await webhooks.deliveries(hook.id);
      expect(kept.map((d) => [d.state, d.payload.contents.tag])).toEqual([
        ['delivered', 'h4'],
        ['delivered', 'h5'],
        ['delivered', 'h6'],
      ]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends a sample payload from the test endpoint', async () => {
    const res = await dtrRequest(dtr, 'POST', '/api/v0/webhooks/test', {
      basic: bob,
      body: json({ type: 'TAG_PUSH', endpoint: `${receiver.url}/test` }),
    });
    expect(res.status).toBe(200);
    const sample = receiver.received.find((r) => r.path === '/test');
    expect(sample?.body).toMatchObject({
      type: 'TAG_PUSH',
      contents: { namespace: 'foo', repository: 'bar' },
    });
    const down = await dtrRequest(dtr, 'POST', '/api/v0/webhooks/test', {
      basic: bob,
      body: json({ type: 'TAG_PUSH', endpoint: 'http://127.0.0.1:1/nothing' }),
    });
    expect(down.status).toBe(400);
  });

  it('answers bad input with DTR errors', async () => {
    const error = async (res: Promise<{ status: number; json<T>(): T }>, status: number, code: string) => {
      const r = await res;
      expect({ status: r.status, code: r.json<{ errors: { code: string }[] }>().errors[0]!.code }).toEqual({
        status,
        code,
      });
    };
    const post = (body: string, who = alice) =>
      dtrRequest(dtr, 'POST', '/api/v0/webhooks', { basic: who, body });
    await error(post('{not json'), 400, 'INVALID_JSON');
    await error(post('[]'), 400, 'INVALID_JSON');
    await error(post(json({ type: 'TAG_PUSH', key: 'alice/app', endpoint: 42 })), 400, 'INVALID_PARAMETERS');
    await error(
      post(json({ type: 'NOPE', key: 'alice/app', endpoint: 'http://127.0.0.1:9/' })),
      400,
      'INVALID_PARAMETERS',
    );
    await error(
      post(json({ type: 'TAG_PUSH', key: 'alice/app', endpoint: 'ftp://127.0.0.1/' })),
      400,
      'INVALID_PARAMETERS',
    );
    await error(
      post(json({ type: 'TAG_PUSH', key: 'alice/app', endpoint: 'file:///etc/passwd' })),
      400,
      'INVALID_PARAMETERS',
    );
    await error(post(json({ type: 'TAG_PUSH', endpoint: 'http://127.0.0.1:9/' })), 400, 'INVALID_PARAMETERS');
    await error(
      post(json({ type: 'TAG_PUSH', key: 'alice/nope', endpoint: 'http://127.0.0.1:9/' })),
      404,
      'NO_SUCH_REPOSITORY',
    );
    await error(
      post(json({ type: 'TAG_PUSH', key: 'alice/app', endpoint: 'http://127.0.0.1:9/' }), bob),
      403,
      'NOT_AUTHORIZED',
    );
    await error(
      post(json({ type: 'SCANNER_UPDATE_COMPLETED', endpoint: 'http://127.0.0.1:9/' })),
      403,
      'NOT_AUTHORIZED',
    );
    await error(dtrRequest(dtr, 'POST', '/api/v0/webhooks', { body: '{}' }), 401, 'NOT_AUTHENTICATED');
    await error(
      dtrRequest(dtr, 'DELETE', `/api/v0/webhooks/${'a'.repeat(64)}`, { basic: alice }),
      404,
      'NO_SUCH_WEBHOOK',
    );
    await error(
      dtrRequest(dtr, 'DELETE', '/api/v0/webhooks/..%2F..', { basic: alice }),
      404,
      'NO_SUCH_WEBHOOK',
    );
    await error(
      dtrRequest(dtr, 'POST', '/api/v0/webhooks/update', {
        basic: alice,
        body: json({ id: 'x', inactive: 'yes' }),
      }),
      400,
      'INVALID_PARAMETERS',
    );
    await error(
      dtrRequest(dtr, 'POST', '/api/v0/webhooks/test', {
        basic: alice,
        body: json({ endpoint: 'gopher://x' }),
      }),
      400,
      'INVALID_PARAMETERS',
    );
    await error(
      dtrRequest(dtr, 'GET', '/api/v0/webhooks?webhookType=BOGUS', { basic: alice }),
      400,
      'INVALID_PARAMETERS',
    );
    // An admin may create a global hook without a key.
    const global = await post(json({ type: 'REPO_EVENT', endpoint: `${receiver.url}/repos` }), root);
    expect(global.status).toBe(200);
    const created = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice', {
      basic: alice,
      body: json({ name: 'other' }),
    });
    expect(created.status).toBe(201);
    const repoEvent = await waitFor('REPO_EVENT', () => receiver.received.find((r) => r.path === '/repos'));
    expect(repoEvent.body).toMatchObject({
      type: 'REPO_EVENT',
      contents: {
        namespace: 'alice',
        repository: 'other',
        event: 'REPO_CREATED',
        author: 'alice',
        data: { name: 'other' },
      },
    });
  });
});

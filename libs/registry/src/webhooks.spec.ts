import { ApiError } from '@orca/api';
import { tagDeleteEvent, tagPushEvent, manifestEvent, eventPayload } from './events.js';
import { parseRepositoryName } from './grammar.js';
import { parseRemoteHost, parseRemoteRepository } from './mirroring.js';
import {
  backoffDelay,
  checkEndpoint,
  MAX_BACKOFF_MS,
  samplePayload,
  webhookMatches,
  type WebhookRecord,
} from './webhooks.js';

const name = parseRepositoryName('alice/app')!;
const at = new Date('2024-03-05T06:07:08.009Z');
const digest = `sha256:${'a'.repeat(64)}`;
const platform = { os: 'linux', architecture: 'arm64' };

describe('webhook payloads', () => {
  it('builds the TAG_PUSH envelope DTR documents', () => {
    const event = tagPushEvent(
      'dtr.example:9443',
      { name, digest, author: 'alice', tag: 'v1' },
      platform,
      at,
    );
    expect(eventPayload(event)).toEqual({
      type: 'TAG_PUSH',
      createdAt: '2024-03-05T06:07:08.009Z',
      contents: {
        namespace: 'alice',
        repository: 'app',
        tag: 'v1',
        digest,
        imageName: 'dtr.example:9443/alice/app:v1',
        os: 'linux',
        architecture: 'arm64',
        author: 'alice',
        pushedAt: '2024-03-05T06:07:08.009Z',
      },
    });
  });

  it('swaps pushedAt for deletedAt on TAG_DELETE and names manifests by digest', () => {
    const deleted = tagDeleteEvent('h', { name, digest, author: 'bob', tag: 'v1' }, platform, at);
    expect(deleted.type).toBe('TAG_DELETE');
    expect(deleted.contents).not.toHaveProperty('pushedAt');
    expect(deleted.contents.deletedAt).toBe(at.toISOString());
    const manifest = manifestEvent('MANIFEST_DELETE', 'h', { name, digest, author: 'bob' }, platform, at);
    expect(manifest.contents).toMatchObject({
      imageName: `h/alice/app@${digest}`,
      deletedAt: at.toISOString(),
    });
    expect(
      manifestEvent('MANIFEST_PUSH', 'h', { name, digest, author: 'bob' }, platform, at).contents,
    ).not.toHaveProperty('deletedAt');
  });

  it('has a sample payload for every event type', () => {
    expect(samplePayload('SCAN_COMPLETED', 'h').contents).toHaveProperty('scanSummary');
    expect(samplePayload('REPO_EVENT', 'h').contents).toMatchObject({ event: 'REPO_CREATED' });
  });
});

describe('webhook delivery rules', () => {
  it('backs off exponentially from the base, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(backoffDelay(40, 1000)).toBe(MAX_BACKOFF_MS);
  });

  it('matches events by type, repository, namespace or globally, skipping inactive hooks', () => {
    const hook = (key: string, extra: Partial<WebhookRecord> = {}) =>
      ({ type: 'TAG_PUSH', key, inactive: false, ...extra }) as WebhookRecord;
    const event = tagPushEvent('h', { name, digest, author: 'a', tag: 't' }, platform, at);
    expect(webhookMatches(hook('alice/app'), event)).toBe(true);
    expect(webhookMatches(hook('alice'), event)).toBe(true);
    expect(webhookMatches(hook(''), event)).toBe(true);
    expect(webhookMatches(hook('alic'), event)).toBe(false);
    expect(webhookMatches(hook('alice/app2'), event)).toBe(false);
    expect(webhookMatches(hook('alice/app', { inactive: true }), event)).toBe(false);
    expect(webhookMatches(hook('alice/app', { type: 'TAG_DELETE' }), event)).toBe(false);
  });

  it('accepts only http(s) endpoints without credentials', () => {
    expect(checkEndpoint('https://hooks.example/x')).toBe('https://hooks.example/x');
    for (const bad of ['ftp://x/', 'file:///etc/passwd', 'not a url', '', 42, 'http://u:p@host/'])
      expect(() => checkEndpoint(bad)).toThrow(ApiError);
  });
});

describe('mirroring targets', () => {
  it('normalizes remote hosts and refuses anything but an http(s) origin', () => {
    expect(parseRemoteHost('registry.example:5000')).toBe('https://registry.example:5000');
    expect(parseRemoteHost('http://127.0.0.1:5000/')).toBe('http://127.0.0.1:5000');
    for (const bad of ['ftp://x', 'https://u:p@x', 'https://x/path', 'https://x/?q=1', '', 5])
      expect(() => parseRemoteHost(bad)).toThrow(ApiError);
    expect(parseRemoteRepository('a/b')).toBe('a/b');
    expect(() => parseRemoteRepository('A/b')).toThrow(ApiError);
  });
});

// DTR 2.5 push mirroring (SW25 pushMirroringPolicies): when a pushed tag matches a policy's rules,
// orca pushes the image to another registry as a Distribution API client — blobs first (skipped
// when the remote has them), then the manifest (an index's child manifests before the index).
// The remote is reached with HTTP Basic or the token flow its 401 challenge asks for. Passwords
// and tokens are sealed with the KEK in the store and never returned or logged.
import { ApiError } from '@orca/api';
import { openSecret, sealSecret, type Kek } from '@orca/pki';
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.js';
import { checkDigest, isValidName, parseRepositoryName, type RepositoryName } from './grammar.js';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest.js';
import type { ManifestRecord, RegistryMetadata } from './metadata.js';
import { expandTagTemplate, rulesMatch, unscannedFacts, type Rule } from './promotion.js';

const ROOT = '/orca/v1/dtr/';
export type MirroringKind = 'pushmirroring' | 'pollmirroring';
export const mirroringKeys = {
  policy: (kind: MirroringKind, local: RepositoryName, id: string) => `${ROOT}${kind}/${local.full}/${id}`,
  policies: (kind: MirroringKind, local: RepositoryName) => `${ROOT}${kind}/${local.full}/`,
  all: (kind: MirroringKind) => `${ROOT}${kind}/`,
};

const REQUEST_TIMEOUT_MS = 60_000;
/** Manifests and token answers; nothing bigger is read into memory. */
const MAX_SMALL_RESPONSE = MAX_MANIFEST_BYTES;

export interface MirrorStatus {
  code: string;
  detail: string;
  timestamp: string;
}

export interface PushMirroringPolicyRecord {
  id: string;
  rules: Rule[];
  username: string;
  sealedPassword: string;
  sealedAuthToken: string;
  localRepository: string;
  remoteHost: string;
  remoteRepository: string;
  remoteCA: string;
  skipTLSVerification: boolean;
  tagTemplate: string;
  enabled: boolean;
  lastMirroredAt: string;
  lastStatus: MirrorStatus;
  authorId: string;
  authorName: string;
  /** Poll mirroring: when the next poll is due (ms since the epoch). */
  nextPollAt?: number;
}

/** responses.PollMirroringPolicy: no secrets, no rules. */
export function pollMirroringPolicyView(p: PushMirroringPolicyRecord) {
  const { rules: _rules, tagTemplate: _template, ...view } = pushMirroringPolicyView(p);
  return view;
}

/** responses.PushMirroringPolicy: no secrets. */
export function pushMirroringPolicyView(p: PushMirroringPolicyRecord) {
  return {
    id: p.id,
    rules: p.rules,
    username: p.username,
    localRepository: p.localRepository,
    remoteHost: p.remoteHost,
    remoteRepository: p.remoteRepository,
    remoteCA: p.remoteCA,
    skipTLSVerification: p.skipTLSVerification,
    tagTemplate: p.tagTemplate,
    enabled: p.enabled,
    lastMirroredAt: p.lastMirroredAt,
    lastStatus: p.lastStatus,
  };
}

/** "https://host[:port]" or "http://host[:port]"; a bare host means https. */
export function parseRemoteHost(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'remoteHost must be a registry URL or host');
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `https://${raw}`);
  } catch {
    throw new ApiError(400, 'INVALID_PARAMETERS', 'remoteHost must be a registry URL or host');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search)
    throw new ApiError(400, 'INVALID_PARAMETERS', 'remoteHost must be an http(s) registry URL');
  if (url.pathname !== '/' && url.pathname !== '')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'remoteHost must not have a path');
  return `${url.protocol}//${url.host}`;
}

export function parseRemoteRepository(raw: unknown): string {
  if (typeof raw !== 'string' || !isValidName(raw))
    throw new ApiError(400, 'INVALID_PARAMETERS', 'remoteRepository must be a repository name');
  return raw;
}

export class PushMirroringPolicies {
  constructor(
    private readonly store: Store,
    private readonly kek: Kek,
    readonly kind: MirroringKind = 'pushmirroring',
  ) {}

  async list(local: RepositoryName): Promise<PushMirroringPolicyRecord[]> {
    const { kvs } = await this.store.range(mirroringKeys.policies(this.kind, local));
    return kvs.map((kv) => JSON.parse(kv.value) as PushMirroringPolicyRecord);
  }

  async get(local: RepositoryName, id: string): Promise<PushMirroringPolicyRecord | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
    const kv = await this.store.get(mirroringKeys.policy(this.kind, local, id));
    return kv ? (JSON.parse(kv.value) as PushMirroringPolicyRecord) : undefined;
  }

  async put(record: PushMirroringPolicyRecord): Promise<void> {
    const local = parseRepositoryName(record.localRepository)!;
    await this.store.put(mirroringKeys.policy(this.kind, local, record.id), JSON.stringify(record));
  }

  seal(secret: string): string {
    return secret === '' ? '' : sealSecret(secret, this.kek);
  }

  credentials(record: PushMirroringPolicyRecord): RemoteCredentials {
    return {
      username: record.username,
      password: record.sealedPassword ? openSecret(record.sealedPassword, this.kek) : '',
      authToken: record.sealedAuthToken ? openSecret(record.sealedAuthToken, this.kek) : '',
    };
  }

  async create(
    fields: Omit<PushMirroringPolicyRecord, 'id' | 'lastMirroredAt' | 'lastStatus'>,
  ): Promise<PushMirroringPolicyRecord> {
    const record: PushMirroringPolicyRecord = {
      ...fields,
      id: randomUUID(),
      lastMirroredAt: '0001-01-01T00:00:00Z',
      lastStatus: { code: '', detail: '', timestamp: '0001-01-01T00:00:00Z' },
    };
    await this.put(record);
    return record;
  }

  async delete(local: RepositoryName, id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return false;
    return (await this.store.delete(mirroringKeys.policy(this.kind, local, id))).deleted > 0;
  }
}

export interface RemoteCredentials {
  username: string;
  password: string;
  /** A bearer token used as is (DTR's authToken). */
  authToken: string;
}

export interface RemoteTarget {
  /** https://host[:port] or http://host[:port]. */
  host: string;
  repository: string;
  ca: string;
  skipTLSVerification: boolean;
  credentials: RemoteCredentials;
}

interface RemoteResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export class RemoteRegistryError extends Error {}

/** A Distribution API client for one remote repository, authorized for pull and push. */
export class RemoteRegistryClient {
  private authorization?: string;

  constructor(private readonly target: RemoteTarget) {}

  private call(
    method: string,
    pathOrUrl: string,
    headers: Record<string, string | number> = {},
    body?: Buffer | Readable,
  ): Promise<RemoteResponse> {
    // Paths resolve against the remote; only the token realm is passed as a full URL.
    const url = new URL(pathOrUrl, this.target.host);
    const https = url.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    return new Promise<RemoteResponse>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers: { ...headers, ...(this.authorization ? { Authorization: this.authorization } : {}) },
          timeout: REQUEST_TIMEOUT_MS,
          agent: false,
          ...(https
            ? {
                rejectUnauthorized: !this.target.skipTLSVerification,
                ...(this.target.ca ? { ca: this.target.ca } : {}),
              }
            : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= MAX_SMALL_RESPONSE) chunks.push(c);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new RemoteRegistryError(`${method} ${url.pathname} timed out`)));
      req.on('error', reject);
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (error) => req.destroy(error));
        body.pipe(req);
      }
    });
  }

  /** Answers the remote's challenge: Basic with the credentials, or a bearer token for pull,push. */
  async authorize(actions = 'pull,push'): Promise<void> {
    const { credentials } = this.target;
    if (credentials.authToken) {
      this.authorization = `Bearer ${credentials.authToken}`;
      return;
    }
    const ping = await this.call('GET', '/v2/');
    if (ping.status === 200) return;
    const challenge = String(ping.headers['www-authenticate'] ?? '');
    if (ping.status !== 401) throw new RemoteRegistryError(`GET /v2/ answered ${ping.status}`);
    const basic = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    if (/^basic\b/i.test(challenge)) {
      this.authorization = basic;
      return;
    }
    const params = Object.fromEntries(
      [...challenge.replace(/^bearer\s+/i, '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [
        m[1]!.toLowerCase(),
        m[2]!,
      ]),
    );
    if (!/^bearer\b/i.test(challenge) || !params.realm)
      throw new RemoteRegistryError('unsupported auth challenge');
    const realm = new URL(params.realm);
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:')
      throw new RemoteRegistryError('bad token realm');
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${this.target.repository}:${actions}`);
    const saved = this.authorization;
    this.authorization = credentials.username ? basic : undefined;
    const res = await this.call('GET', realm.toString());
    this.authorization = saved;
    if (res.status !== 200) throw new RemoteRegistryError(`token request answered ${res.status}`);
    const token = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
    const value = token.token ?? token.access_token;
    if (!value) throw new RemoteRegistryError('token response without a token');
    this.authorization = `Bearer ${value}`;
  }

  /** A GET whose body streams (a blob); redirects to blob storage are followed once. */
  async streamBlob(digest: string): Promise<IncomingMessage> {
    let url = new URL(this.path(`blobs/${digest}`), this.target.host);
    for (let hop = 0; hop < 2; hop++) {
      const https = url.protocol === 'https:';
      const sameOrigin = url.origin === new URL(this.target.host).origin;
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = (https ? httpsRequest : httpRequest)(
          url,
          {
            method: 'GET',
            // Credentials stay with the registry, not a storage redirect.
            headers: sameOrigin && this.authorization ? { Authorization: this.authorization } : {},
            timeout: REQUEST_TIMEOUT_MS,
            agent: false,
            ...(https
              ? {
                  rejectUnauthorized: !this.target.skipTLSVerification,
                  ...(this.target.ca ? { ca: this.target.ca } : {}),
                }
              : {}),
          },
          resolve,
        );
        req.on('timeout', () => req.destroy(new RemoteRegistryError('blob download timed out')));
        req.on('error', reject);
        req.end();
      });
      if ((res.statusCode === 307 || res.statusCode === 302) && typeof res.headers.location === 'string') {
        res.resume();
        url = new URL(res.headers.location, url);
        continue;
      }
      if (res.statusCode !== 200) {
        res.resume();
        throw new RemoteRegistryError(`blob ${digest} answered ${res.statusCode}`);
      }
      return res;
    }
    throw new RemoteRegistryError(`blob ${digest}: too many redirects`);
  }

  async tags(): Promise<string[]> {
    const res = await this.call('GET', this.path('tags/list'));
    if (res.status !== 200) throw new RemoteRegistryError(`tag list answered ${res.status}`);
    const body = JSON.parse(res.body.toString('utf8')) as { tags?: unknown };
    return Array.isArray(body.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : [];
  }

  async manifest(reference: string): Promise<{ mediaType: string; body: Buffer }> {
    const res = await this.call('GET', this.path(`manifests/${reference}`), {
      Accept: [
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
      ].join(', '),
    });
    if (res.status !== 200) throw new RemoteRegistryError(`manifest ${reference} answered ${res.status}`);
    return {
      mediaType: String(res.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim(),
      body: res.body,
    };
  }

  private path(rest: string): string {
    return `/v2/${this.target.repository}/${rest}`;
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.call('HEAD', this.path(`blobs/${digest}`))).status === 200;
  }

  async pushBlob(digest: string, size: number, content: () => Readable): Promise<void> {
    if (await this.hasBlob(digest)) return;
    const started = await this.call('POST', this.path('blobs/uploads/'), { 'Content-Length': 0 });
    const location = started.headers.location;
    if (started.status !== 202 || typeof location !== 'string')
      throw new RemoteRegistryError(`starting a blob upload answered ${started.status}`);
    const url = new URL(location, this.target.host);
    if (url.origin !== new URL(this.target.host).origin)
      throw new RemoteRegistryError('upload on another origin');
    url.searchParams.set('digest', digest);
    const done = await this.call(
      'PUT',
      `${url.pathname}${url.search}`,
      { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
      content(),
    );
    if (done.status !== 201) throw new RemoteRegistryError(`blob upload answered ${done.status}`);
  }

  async pushManifest(reference: string, mediaType: string, body: Buffer): Promise<void> {
    const res = await this.call(
      'PUT',
      this.path(`manifests/${reference}`),
      { 'Content-Type': mediaType, 'Content-Length': body.length },
      body,
    );
    if (res.status !== 201)
      throw new RemoteRegistryError(
        `manifest push answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`,
      );
  }
}

/** Pushes one local image (blobs, children, manifest) to the remote under `tag`. */
export async function pushImageToRemote(
  metadata: RegistryMetadata,
  blobs: BlobStore,
  local: RepositoryName,
  record: ManifestRecord,
  client: RemoteRegistryClient,
  reference: string,
  depth = 0,
): Promise<void> {
  const digest = checkDigest(record.digest);
  if (!digest.ok || depth > 2) throw new RemoteRegistryError(`cannot mirror ${record.digest}`);
  const body = await blobs.readSmall(digest.digest);
  if (!body) throw new RemoteRegistryError(`manifest ${record.digest} has no content`);
  const parsed = parseManifest(record.mediaType, body);
  for (const blob of parsed.blobs) {
    const blobDigest = checkDigest(blob.digest);
    const stat = blobDigest.ok ? await blobs.stat(blobDigest.digest) : undefined;
    if (!blobDigest.ok || !stat) throw new RemoteRegistryError(`blob ${blob.digest} is missing`);
    await client.pushBlob(blob.digest, stat.size, () => blobs.read(blobDigest.digest));
  }
  for (const child of parsed.children) {
    const childRecord = await metadata.manifest(local, child.digest);
    if (!childRecord) throw new RemoteRegistryError(`manifest ${child.digest} is missing`);
    await pushImageToRemote(metadata, blobs, local, childRecord, client, child.digest, depth + 1);
  }
  await client.pushManifest(reference, record.mediaType, body);
}

export interface MirrorOutcome {
  policy: PushMirroringPolicyRecord;
  remoteTag: string;
  digest: string;
  error?: string;
}

/** Runs a repository's push mirroring policies for one pushed tag. */
export class PushMirroringEngine {
  constructor(
    private readonly options: {
      policies: PushMirroringPolicies;
      metadata: RegistryMetadata;
      blobs: BlobStore;
      onMirrored?(outcome: MirrorOutcome & { local: RepositoryName; tag: string }): void;
      log?: { error(message: string): void };
    },
  ) {}

  async evaluate(local: RepositoryName, tag: string): Promise<MirrorOutcome[]> {
    const { metadata, policies } = this.options;
    const tagRecord = await metadata.tag(local, tag);
    const record = tagRecord ? await metadata.manifest(local, tagRecord.digest) : undefined;
    if (!record) return [];
    const outcomes: MirrorOutcome[] = [];
    for (const policy of await policies.list(local)) {
      if (!policy.enabled || !rulesMatch(policy.rules, unscannedFacts(tag))) continue;
      const at = new Date();
      const remoteTag = expandTagTemplate(policy.tagTemplate, tag, at);
      let error: string | undefined;
      try {
        const client = new RemoteRegistryClient({
          host: policy.remoteHost,
          repository: policy.remoteRepository,
          ca: policy.remoteCA,
          skipTLSVerification: policy.skipTLSVerification,
          credentials: policies.credentials(policy),
        });
        await client.authorize();
        await pushImageToRemote(metadata, this.options.blobs, local, record, client, remoteTag);
      } catch (e) {
        error = (e as Error).message;
        this.options.log?.error(`push mirroring ${policy.id} to ${policy.remoteHost}: ${error}`);
      }
      const current = await policies.get(local, policy.id);
      const updated: PushMirroringPolicyRecord = {
        ...(current ?? policy),
        ...(error ? {} : { lastMirroredAt: at.toISOString() }),
        lastStatus: {
          code: error ? 'FAILED' : 'SUCCESS',
          detail: error ?? '',
          timestamp: new Date().toISOString(),
        },
      };
      if (current) await policies.put(updated);
      const outcome = { policy: updated, remoteTag, digest: record.digest, ...(error ? { error } : {}) };
      outcomes.push(outcome);
      if (!error) this.options.onMirrored?.({ ...outcome, local, tag });
    }
    return outcomes;
  }
}

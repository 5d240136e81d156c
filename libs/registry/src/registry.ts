// The OCI Distribution Specification 1.1 at /v2/, behind DTR's token auth. Every request needs a
// bearer token from /auth/token carrying the actions it performs; without one the answer is 401
// with a challenge naming the realm, service and scope to ask for.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RepositoryAccessResolver } from './access.js';
import { LengthMismatchError, repositoryUploadKey, type BlobStore } from './blob-store.js';
import { RegistryError, registryError } from './errors.js';
import type { RegistryEventSink } from './events.js';
import {
  checkDigest,
  isUploadId,
  parseReference,
  parseRepositoryName,
  type Digest,
  type DigestAlgorithm,
  type RepositoryName,
} from './grammar.js';
import { BodyTooLargeError, readBody, rawPath, requestUrl, send, sendJson } from './http.js';
import { TokenError, type TokenClaims, type TokenSigner } from './jwt.js';
import { MAX_MANIFEST_BYTES, MEDIA_TYPES, parseManifest } from './manifest.js';
import {
  BlobSweepingError,
  repositoryView,
  type ManifestRecord,
  type RegistryMetadata,
  type TouchGuard,
} from './metadata.js';

const unauthenticatedClaims = (needs: Need[], service: string): TokenClaims => ({
  iss: service,
  sub: '',
  aud: service,
  exp: 0,
  nbf: 0,
  iat: 0,
  jti: '',
  access: needs.map((n) => ({ type: 'repository', name: n.name, actions: n.actions })),
});

/** A GC swept the blob between this request's touch and its commit (rare): the client retries. */
const sweptMeanwhile = () =>
  registryError(429, 'TOOMANYREQUESTS', 'garbage collection removed this blob meanwhile, retry');
import { parseRangeRequest, parseUploadRange, uploadRangeHeader } from './ranges.js';
import { formatScope, grants } from './scope.js';

export interface RegistryOptions {
  metadata: RegistryMetadata;
  blobs: BlobStore;
  signer: TokenSigner;
  access: RepositoryAccessResolver;
  /** The token endpoint clients are sent to: https://<dtr host>/auth/token. */
  realm: string;
  /** The service name tokens are issued for (their audience). */
  service: string;
  /** Told about pushes and deletes after they are stored (webhooks, promotion, mirroring). */
  events?: RegistryEventSink;
  log?: { error(message: string): void };
  /** Benchmarks only (off by default): every request acts as an anonymous client granted exactly
   *  what it needs, with no token. */
  authDisabled?: boolean;
}

/** Catalog and tag-list pages: the default and the most one request returns (CVE-2023-2253). */
export const PAGE_DEFAULT = 100;
export const PAGE_MAX = 1000;

const ROUTE =
  /^\/v2\/(.+?)\/(?:blobs\/uploads\/([^/]*)|blobs\/([^/]+)|manifests\/([^/]+)|tags\/list|referrers\/([^/]+))$/;

interface Need {
  name: string;
  actions: string[];
}

interface UploadHash {
  offset: number;
  hash: Hash;
}

const MAX_RUNNING_HASHES = 1024;

const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' };

function digestError(raw: string | null | undefined): RegistryError {
  if (!raw) return registryError(400, 'DIGEST_INVALID', 'digest parameter missing');
  const check = checkDigest(raw);
  return check.ok
    ? registryError(400, 'DIGEST_INVALID')
    : registryError(400, 'DIGEST_INVALID', `${check.reason} digest ${raw.slice(0, 200)}`);
}

function requireDigest(raw: string | null | undefined): Digest {
  const check = raw ? checkDigest(raw) : undefined;
  if (!check?.ok) throw digestError(raw);
  return check.digest;
}

function parsePageSize(raw: string | null, fallback: number): number {
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw))
    throw registryError(400, 'PAGINATION_NUMBER_INVALID', `invalid n ${raw.slice(0, 50)}`);
  return Math.min(Number(raw), PAGE_MAX);
}

export class RegistryHandler {
  private readonly hashes = new Map<string, UploadHash>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly options: RegistryOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [name, value] of Object.entries(API_VERSION)) res.setHeader(name, value);
    try {
      await this.route(req, res);
    } catch (error) {
      // A client that went away mid-body (an aborted push) is not a server error.
      if (res.headersSent || req.socket.destroyed) {
        res.destroy();
        return;
      }
      const failure =
        error instanceof RegistryError
          ? error
          : error instanceof BodyTooLargeError
            ? registryError(413, 'MANIFEST_INVALID', `manifest exceeds ${error.limit} bytes`)
            : undefined;
      if (!failure)
        this.options.log?.error(`registry ${req.method} ${rawPath(req)}: ${(error as Error).stack}`);
      const e = failure ?? registryError(500, 'UNKNOWN');
      const body = req.method === 'HEAD' ? undefined : JSON.stringify(e.body());
      send(res, e.status, { 'Content-Type': 'application/json; charset=utf-8', ...e.headers }, body);
    }
  }

  // ---- authentication ----

  private challenge(needs: Need[], error?: string): Record<string, string> {
    const scope = needs.map((n) => formatScope('repository', n.name, n.actions)).join(' ');
    const parts = [`realm="${this.options.realm}"`, `service="${this.options.service}"`];
    if (scope) parts.push(`scope="${scope}"`);
    if (error) parts.push(`error="${error}"`);
    return { 'WWW-Authenticate': `Bearer ${parts.join(',')}` };
  }

  /** The token's claims, if it carries every needed action; 401 with a challenge otherwise. */
  private async authorize(req: IncomingMessage, needs: Need[], challengeNeeds = needs): Promise<TokenClaims> {
    if (this.options.authDisabled) return unauthenticatedClaims(needs, this.options.service);
    const header = req.headers.authorization ?? '';
    const match = /^bearer\s+(\S+)$/i.exec(header.trim());
    const unauthorized = (error?: string, message?: string) => {
      const detail = needs.flatMap((n) =>
        n.actions.map((a) => ({ Type: 'repository', Name: n.name, Action: a })),
      );
      return new RegistryError(
        401,
        'UNAUTHORIZED',
        message ?? 'authentication required',
        detail.length ? detail : undefined,
        this.challenge(challengeNeeds, error),
      );
    };
    if (!match) throw unauthorized();
    let claims: TokenClaims;
    try {
      claims = await this.options.signer.verify(match[1]!, this.options.service);
    } catch (error) {
      if (error instanceof TokenError) throw unauthorized('invalid_token', error.message);
      throw error;
    }
    for (const need of needs)
      for (const action of need.actions)
        if (!grants(claims.access, 'repository', need.name, action))
          throw unauthorized('insufficient_scope', 'access to the requested resource is not authorized');
    return claims;
  }

  // ---- routing ----

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = rawPath(req);
    const method = req.method ?? 'GET';
    const url = requestUrl(req);
    if (path === '/v2' || path === '/v2/') {
      if (method !== 'GET' && method !== 'HEAD') throw registryError(405, 'UNSUPPORTED');
      await this.authorize(req, []);
      sendJson(res, 200, {});
      return;
    }
    if (path === '/v2/_catalog') {
      if (method !== 'GET') throw registryError(405, 'UNSUPPORTED');
      await this.catalog(req, res, url);
      return;
    }
    const m = ROUTE.exec(path);
    if (!m) throw registryError(404, 'NAME_UNKNOWN', 'no such route');
    const name = parseRepositoryName(m[1]!);
    if (!name)
      throw registryError(
        400,
        'NAME_INVALID',
        'repository names are namespace/repository in the OCI grammar',
      );
    const [, , uploadId, blobDigest, reference, subject] = m;
    if (uploadId !== undefined) return this.uploads(req, res, url, name, method, uploadId);
    if (blobDigest !== undefined) return this.blob(req, res, name, method, blobDigest);
    if (reference !== undefined) return this.manifest(req, res, name, method, reference);
    if (subject !== undefined) return this.referrers(req, res, url, name, method, subject);
    return this.tagList(req, res, url, name, method);
  }

  /** The repository record; a push may create it when the token allows pushing to a missing repository. */
  private async repository(name: RepositoryName, claims: TokenClaims, create = false) {
    const existing = await this.options.metadata.repository(name);
    if (existing) return existing;
    if (create && grants(claims.access, 'repository', name.full, 'push')) {
      const namespace = await this.options.access.namespace(name.namespace);
      if (namespace) {
        const { created, record } = await this.options.metadata.createRepository(name, {
          namespaceType: namespace.isOrg ? 'organization' : 'user',
          visibility: 'private',
        });
        // As a repository made through /api/v0: REPO_EVENT webhooks hear of it, once (a
        // concurrent push that lost the race found it created and publishes nothing).
        if (created)
          this.options.events?.repository('REPO_CREATED', name, claims.sub, repositoryView(record));
        return record;
      }
    }
    throw registryError(404, 'NAME_UNKNOWN', `repository ${name.full} not known to registry`);
  }

  // ---- blobs ----

  private async blob(
    req: IncomingMessage,
    res: ServerResponse,
    name: RepositoryName,
    method: string,
    raw: string,
  ) {
    if (method === 'DELETE') {
      const claims = await this.authorize(req, [{ name: name.full, actions: ['delete'] }]);
      await this.repository(name, claims);
      const digest = requireDigest(raw);
      if (!(await this.options.metadata.unlinkBlob(name, digest.value)))
        throw registryError(404, 'BLOB_UNKNOWN');
      send(res, 202);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') throw registryError(405, 'UNSUPPORTED');
    const claims = await this.authorize(req, [{ name: name.full, actions: ['pull'] }]);
    await this.repository(name, claims);
    const digest = requireDigest(raw);
    const link = await this.options.metadata.blobLink(name, digest.value);
    const stat = link ? await this.options.blobs.stat(digest) : undefined;
    if (!stat) throw registryError(404, 'BLOB_UNKNOWN', `blob ${digest.value} unknown to registry`);
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest.value,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest.value}"`,
      'Cache-Control': 'max-age=31536000',
    };
    const range = parseRangeRequest(req.headers.range, stat.size);
    if (range.kind === 'unsatisfiable') {
      throw new RegistryError(416, 'RANGE_INVALID', 'requested range not satisfiable', undefined, {
        'Content-Range': `bytes */${stat.size}`,
      });
    }
    let status = 200;
    let length = stat.size;
    if (range.kind === 'range') {
      status = 206;
      length = range.range.end - range.range.start + 1;
      headers['Content-Range'] = `bytes ${range.range.start}-${range.range.end}/${stat.size}`;
    }
    headers['Content-Length'] = length;
    if (method === 'HEAD' || length === 0) {
      send(res, status, headers);
      return;
    }
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.writeHead(status);
    const byteRange = range.kind === 'range' ? range.range : undefined;
    if (this.options.blobs.send) {
      try {
        await this.options.blobs.send(digest, byteRange, res);
      } catch {
        res.destroy();
        return;
      }
      if (!res.destroyed) res.end();
      return;
    }
    const stream = this.options.blobs.read(digest, byteRange);
    await new Promise<void>((resolve) => {
      stream.once('error', () => {
        res.destroy();
        resolve();
      });
      res.once('close', () => {
        stream.destroy();
        resolve();
      });
      stream.pipe(res);
    });
  }

  // ---- uploads ----

  private withLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    });
    return next;
  }

  private uploadLocation(name: RepositoryName, id: string): string {
    return `/v2/${name.full}/blobs/uploads/${id}`;
  }

  private uploadHeaders(name: RepositoryName, id: string, offset: number): Record<string, string | number> {
    return {
      Location: this.uploadLocation(name, id),
      Range: uploadRangeHeader(offset),
      'Docker-Upload-UUID': id,
    };
  }

  private async uploads(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    name: RepositoryName,
    method: string,
    id: string,
  ) {
    const push = { name: name.full, actions: ['pull', 'push'] };
    if (id === '') {
      if (method !== 'POST') throw registryError(405, 'UNSUPPORTED');
      const from = url.searchParams.get('from');
      const mount = url.searchParams.get('mount');
      const fromName = from ? parseRepositoryName(from) : undefined;
      // The challenge asks for pull on the mount source too; without it the mount becomes an upload.
      const challengeNeeds =
        fromName && fromName.full !== name.full ? [push, { name: fromName.full, actions: ['pull'] }] : [push];
      const claims = await this.authorize(req, [push], challengeNeeds);
      await this.repository(name, claims, true);
      if (mount !== null) {
        const digest = requireDigest(mount);
        if (fromName && (await this.mount(name, fromName, digest, claims))) {
          send(res, 201, {
            Location: `/v2/${name.full}/blobs/${digest.value}`,
            'Docker-Content-Digest': digest.value,
          });
          return;
        }
      } else if (url.searchParams.has('digest')) {
        await this.monolithic(req, res, name, requireDigest(url.searchParams.get('digest')));
        return;
      }
      const uploadId = randomUUID();
      const key = repositoryUploadKey(name.full, uploadId);
      await this.options.blobs.createUpload(key);
      this.rememberHash(key, { offset: 0, hash: createHash('sha256') });
      send(res, 202, this.uploadHeaders(name, uploadId, 0));
      return;
    }
    if (!['GET', 'PATCH', 'PUT', 'DELETE'].includes(method)) throw registryError(405, 'UNSUPPORTED');
    const claims = await this.authorize(req, [push]);
    await this.repository(name, claims);
    if (!isUploadId(id)) throw registryError(404, 'BLOB_UPLOAD_UNKNOWN');
    // An upload session belongs to the repository it was started in: its storage key is derived
    // from the repository's name, so the same id used from another repository finds nothing.
    const key = repositoryUploadKey(name.full, id);
    await this.withLock(key, async () => {
      const offset = await this.options.blobs.uploadSize(key);
      if (offset === undefined) throw registryError(404, 'BLOB_UPLOAD_UNKNOWN');
      if (method === 'GET') {
        send(res, 204, this.uploadHeaders(name, id, offset));
        return;
      }
      if (method === 'DELETE') {
        await this.discard(key);
        send(res, 204);
        return;
      }
      if (method === 'PUT') {
        await this.finish(req, res, url, name, id, key, offset);
        return;
      }
      const size = await this.appendChunk(req, name, id, key, offset, true);
      send(res, 202, this.uploadHeaders(name, id, size));
    });
  }

  private async mount(name: RepositoryName, from: RepositoryName, digest: Digest, claims: TokenClaims) {
    if (!grants(claims.access, 'repository', from.full, 'pull')) return false;
    if (!(await this.options.metadata.repository(from))) return false;
    const guard = await this.touch([digest.value]);
    const link = await this.options.metadata.blobLink(from, digest.value);
    const stat = link ? await this.options.blobs.stat(digest) : undefined;
    if (!stat) return false;
    // False when a GC swept it meanwhile: the client then uploads instead of mounting.
    return this.options.metadata.linkBlob(name, digest.value, stat.size, guard);
  }

  /** GC safety (metadata.touchBlobs); a sweep that outlasts the wait is a retryable 503. */
  private async touch(digests: string[]): Promise<TouchGuard> {
    try {
      return await this.options.metadata.touchBlobs(digests);
    } catch (error) {
      if (error instanceof BlobSweepingError)
        throw registryError(429, 'TOOMANYREQUESTS', 'garbage collection in progress, retry');
      throw error;
    }
  }

  private async discard(key: string): Promise<void> {
    this.hashes.delete(key);
    await this.options.blobs.deleteUpload(key);
  }

  /** The running sha256 of an upload at `offset`, rebuilt from storage when this process lost it. */
  private async uploadHash(key: string, offset: number): Promise<UploadHash> {
    const known = this.hashes.get(key);
    if (known && known.offset === offset) return known;
    const hash = createHash('sha256');
    if (offset > 0) {
      for await (const chunk of this.options.blobs.readUpload(key)) hash.update(chunk as Buffer);
    }
    const state = { offset, hash };
    this.rememberHash(key, state);
    return state;
  }

  /** Running hashes of abandoned uploads must not pile up: past the cap the oldest is dropped (and rebuilt from storage if its upload resumes). */
  private rememberHash(id: string, state: UploadHash): void {
    this.hashes.delete(id);
    this.hashes.set(id, state);
    if (this.hashes.size > MAX_RUNNING_HASHES) this.hashes.delete(this.hashes.keys().next().value!);
  }

  /** Appends the request body, checking Content-Range against the current offset. */
  private async appendChunk(
    req: IncomingMessage,
    name: RepositoryName,
    id: string,
    key: string,
    offset: number,
    chunked: boolean,
  ): Promise<number> {
    const rangeHeader = req.headers['content-range'];
    let expected: number | undefined;
    if (rangeHeader !== undefined) {
      const range = parseUploadRange(rangeHeader);
      if (!range || range.start !== offset) {
        // Out of order: the session stays as it was; the client asks where to resume.
        throw new RegistryError(
          416,
          'BLOB_UPLOAD_INVALID',
          'chunk does not start at the upload offset',
          undefined,
          {
            ...this.uploadHeaders(name, id, offset),
          },
        );
      }
      expected = range.end - range.start + 1;
    }
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader !== undefined) {
      const length = Number(lengthHeader);
      if (expected !== undefined && length !== expected)
        throw registryError(400, 'SIZE_INVALID', 'Content-Length does not match Content-Range');
      expected ??= length;
    } else if (!chunked) {
      return offset;
    }
    if (expected === 0) return offset;
    const state = await this.uploadHash(key, offset);
    try {
      const size = await this.options.blobs.append(
        key,
        offset,
        req,
        (chunk) => state.hash.update(chunk),
        expected,
      );
      state.offset = size;
      return size;
    } catch (error) {
      // The hash may have seen bytes that were rolled back: rebuild it from storage next time.
      this.hashes.delete(key);
      if (error instanceof LengthMismatchError) throw registryError(400, 'SIZE_INVALID');
      throw error;
    }
  }

  private async finish(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    name: RepositoryName,
    id: string,
    key: string,
    offset: number,
  ) {
    const digest = requireDigest(url.searchParams.get('digest'));
    const size = await this.appendChunk(
      req,
      name,
      id,
      key,
      offset,
      req.headers['transfer-encoding'] !== undefined,
    );
    const actual =
      digest.algorithm === 'sha256'
        ? (await this.uploadHash(key, size)).hash.copy().digest('hex')
        : await this.options.blobs.hashUpload(key, digest.algorithm);
    if (actual !== digest.hex) {
      await this.discard(key);
      throw registryError(
        400,
        'DIGEST_INVALID',
        `content digest ${digest.algorithm}:${actual} does not match ${digest.value}`,
      );
    }
    // Touched only now: a refused body must leave nothing in the store (not even a touch record).
    const guard = await this.touch([digest.value]);
    await this.options.blobs.commitUpload(key, digest);
    this.hashes.delete(key);
    if (!(await this.options.metadata.linkBlob(name, digest.value, size, guard))) throw sweptMeanwhile();
    send(res, 201, {
      Location: `/v2/${name.full}/blobs/${digest.value}`,
      'Docker-Content-Digest': digest.value,
    });
  }

  /** POST with ?digest=: the whole blob in one request, hashed with the digest's own algorithm. */
  private async monolithic(req: IncomingMessage, res: ServerResponse, name: RepositoryName, digest: Digest) {
    const id = randomUUID();
    await this.options.blobs.createUpload(id);
    try {
      const hash = createHash(digest.algorithm as DigestAlgorithm);
      const lengthHeader = req.headers['content-length'];
      const expected = lengthHeader === undefined ? undefined : Number(lengthHeader);
      let size: number;
      try {
        size = await this.options.blobs.append(id, 0, req, (chunk) => hash.update(chunk), expected);
      } catch (error) {
        if (error instanceof LengthMismatchError) throw registryError(400, 'SIZE_INVALID');
        throw error;
      }
      if (hash.digest('hex') !== digest.hex) throw registryError(400, 'DIGEST_INVALID');
      const guard = await this.touch([digest.value]);
      await this.options.blobs.commitUpload(id, digest);
      if (!(await this.options.metadata.linkBlob(name, digest.value, size, guard))) throw sweptMeanwhile();
    } finally {
      await this.options.blobs.deleteUpload(id);
    }
    send(res, 201, {
      Location: `/v2/${name.full}/blobs/${digest.value}`,
      'Docker-Content-Digest': digest.value,
    });
  }

  // ---- manifests ----

  private async resolve(name: RepositoryName, raw: string): Promise<ManifestRecord | undefined> {
    const reference = parseReference(raw);
    if (!reference)
      throw registryError(
        400,
        raw.includes(':') ? 'DIGEST_INVALID' : ('TAG_INVALID' as const),
        'invalid reference',
      );
    const digest =
      reference.kind === 'digest'
        ? reference.digest.value
        : (await this.options.metadata.tag(name, reference.tag))?.digest;
    return digest ? this.options.metadata.manifest(name, digest) : undefined;
  }

  private async manifest(
    req: IncomingMessage,
    res: ServerResponse,
    name: RepositoryName,
    method: string,
    raw: string,
  ) {
    if (method === 'GET' || method === 'HEAD') {
      const claims = await this.authorize(req, [{ name: name.full, actions: ['pull'] }]);
      await this.repository(name, claims);
      const record = await this.resolve(name, raw);
      const digest = record ? checkDigest(record.digest) : undefined;
      const content = digest?.ok ? await this.options.blobs.readSmall(digest.digest) : undefined;
      if (!record || !content)
        throw registryError(404, 'MANIFEST_UNKNOWN', `manifest ${raw} unknown to registry`);
      const headers = {
        'Content-Type': record.mediaType,
        'Docker-Content-Digest': record.digest,
        ETag: `"${record.digest}"`,
        'Content-Length': content.length,
      };
      send(res, 200, headers, method === 'HEAD' ? undefined : content);
      return;
    }
    if (method === 'DELETE') {
      const claims = await this.authorize(req, [{ name: name.full, actions: ['delete'] }]);
      await this.repository(name, claims);
      const reference = parseReference(raw);
      if (!reference)
        throw registryError(400, raw.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', 'invalid reference');
      const before = await this.resolve(name, raw);
      const deleted =
        reference.kind === 'tag'
          ? await this.options.metadata.deleteTag(name, reference.tag)
          : await this.options.metadata.deleteManifest(name, reference.digest.value);
      if (!deleted) throw registryError(404, 'MANIFEST_UNKNOWN');
      if (before) {
        const facts = { name, digest: before.digest, configDigest: before.configDigest, author: claims.sub };
        if (reference.kind === 'tag') this.options.events?.tagDeleted({ ...facts, tag: reference.tag });
        else this.options.events?.manifestDeleted(facts);
      }
      send(res, 202);
      return;
    }
    if (method !== 'PUT') throw registryError(405, 'UNSUPPORTED');
    const claims = await this.authorize(req, [{ name: name.full, actions: ['pull', 'push'] }]);
    const reference = parseReference(raw);
    if (!reference)
      throw registryError(400, raw.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', 'invalid reference');
    const body = await readBody(req, MAX_MANIFEST_BYTES);
    const repository = await this.repository(name, claims, true);
    const algorithm = reference.kind === 'digest' ? reference.digest.algorithm : 'sha256';
    const hex = createHash(algorithm).update(body).digest('hex');
    const digest = `${algorithm}:${hex}`;
    if (reference.kind === 'digest' && reference.digest.value !== digest)
      throw registryError(
        400,
        'DIGEST_INVALID',
        `manifest digest ${digest} does not match ${reference.digest.value}`,
      );
    const parsed = parseManifest(req.headers['content-type'], body);
    // Touch before checking: a concurrent GC then either keeps these blobs or has already removed
    // their links, so the check below fails with MANIFEST_BLOB_UNKNOWN (never a dangling manifest).
    const guard = await this.touch([
      digest,
      ...parsed.blobs.map((d) => d.digest),
      ...parsed.children.map((d) => d.digest),
    ]);
    const unknown: string[] = [];
    await Promise.all([
      ...parsed.blobs.map(async (d) => {
        if (!(await this.options.metadata.blobLink(name, d.digest))) unknown.push(d.digest);
      }),
      ...parsed.children.map(async (d) => {
        if (!(await this.options.metadata.manifest(name, d.digest))) unknown.push(d.digest);
      }),
    ]);
    if (unknown.length > 0)
      throw registryError(
        400,
        'MANIFEST_BLOB_UNKNOWN',
        undefined,
        unknown.map((d) => ({ digest: d })),
      );
    if (repository.immutableTags && reference.kind === 'tag') {
      const existing = await this.options.metadata.tag(name, reference.tag);
      // DTR's exact text; Docker shows it as "unknown: tag=... is an immutable repository".
      if (existing && existing.digest !== digest)
        throw registryError(
          400,
          'UNKNOWN',
          `tag=${reference.tag} cannot be overwritten because ${this.options.service}/${name.full} is an immutable repository`,
        );
    }
    await this.options.blobs.putSmall({ algorithm, hex, value: digest }, body);
    const record: ManifestRecord = {
      digest,
      mediaType: parsed.mediaType,
      size: body.length,
      createdAt: new Date().toISOString(),
      author: claims.sub,
      ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
      ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
      ...(parsed.config
        ? { configMediaType: parsed.config.mediaType, configDigest: parsed.config.digest }
        : {}),
    };
    const recorded = await this.options.metadata.putManifest(
      name,
      record,
      reference.kind === 'tag' ? reference.tag : undefined,
      guard,
    );
    // A GC swept a referenced blob between the touch and now: the client uploads it again.
    if (!recorded)
      throw registryError(
        400,
        'MANIFEST_BLOB_UNKNOWN',
        'a referenced blob was garbage collected meanwhile; push it again',
      );
    this.options.events?.manifestPushed({
      name,
      digest,
      mediaType: record.mediaType,
      configDigest: record.configDigest,
      author: claims.sub,
      ...(reference.kind === 'tag' ? { tag: reference.tag } : {}),
    });
    const headers: Record<string, string> = {
      Location: `/v2/${name.full}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
    };
    if (parsed.subject) headers['OCI-Subject'] = parsed.subject.digest;
    send(res, 201, headers);
  }

  // ---- listings ----

  private async tagList(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    name: RepositoryName,
    method: string,
  ) {
    if (method !== 'GET') throw registryError(405, 'UNSUPPORTED');
    const claims = await this.authorize(req, [{ name: name.full, actions: ['pull'] }]);
    await this.repository(name, claims);
    const n = parsePageSize(url.searchParams.get('n'), PAGE_MAX);
    const last = url.searchParams.get('last') ?? undefined;
    const { tags, more } =
      n === 0 ? { tags: [], more: false } : await this.options.metadata.tags(name, last, n);
    const headers: Record<string, string> = {};
    if (more && tags.length > 0)
      headers.Link = `</v2/${name.full}/tags/list?n=${n}&last=${encodeURIComponent(tags[tags.length - 1]!)}>; rel="next"`;
    sendJson(res, 200, { name: name.full, tags }, headers);
  }

  private async catalog(req: IncomingMessage, res: ServerResponse, url: URL) {
    const header = req.headers.authorization ?? '';
    const match = /^bearer\s+(\S+)$/i.exec(header.trim());
    const challenge = {
      'WWW-Authenticate': `Bearer realm="${this.options.realm}",service="${this.options.service}",scope="registry:catalog:*"`,
    };
    let claims: TokenClaims | undefined;
    if (match)
      claims = await this.options.signer.verify(match[1]!, this.options.service).catch(() => undefined);
    if (!claims || !grants(claims.access, 'registry', 'catalog', '*'))
      throw new RegistryError(401, 'UNAUTHORIZED', 'authentication required', undefined, challenge);
    const n = parsePageSize(url.searchParams.get('n'), PAGE_DEFAULT);
    const last = url.searchParams.get('last') ?? '';
    const names = (await this.options.metadata.listRepositories())
      .map((r) => `${r.namespace}/${r.name}`)
      .filter((full) => full > last)
      .sort();
    const page = names.slice(0, n);
    const headers: Record<string, string> = {};
    if (names.length > n && page.length > 0)
      headers.Link = `</v2/_catalog?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
    sendJson(res, 200, { repositories: page }, headers);
  }

  private async referrers(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    name: RepositoryName,
    method: string,
    raw: string,
  ) {
    if (method !== 'GET') throw registryError(405, 'UNSUPPORTED');
    const claims = await this.authorize(req, [{ name: name.full, actions: ['pull'] }]);
    await this.repository(name, claims);
    const subject = requireDigest(raw);
    const artifactType = url.searchParams.get('artifactType');
    let manifests = await this.options.metadata.referrers(name, subject.value);
    // Annotations come from the referrer manifests themselves (they can be large: not in the store).
    manifests = await Promise.all(
      manifests.map(async (descriptor) => {
        const digest = checkDigest(descriptor.digest);
        const content = digest.ok ? await this.options.blobs.readSmall(digest.digest) : undefined;
        if (!content) return descriptor;
        try {
          const doc = JSON.parse(content.toString('utf8')) as { annotations?: unknown };
          const annotations = doc.annotations;
          return typeof annotations === 'object' && annotations !== null && !Array.isArray(annotations)
            ? { ...descriptor, annotations: annotations as Record<string, string> }
            : descriptor;
        } catch {
          return descriptor;
        }
      }),
    );
    const headers: Record<string, string> = { 'Content-Type': MEDIA_TYPES.ociIndex };
    if (artifactType !== null) {
      manifests = manifests.filter((d) => d.artifactType === artifactType);
      headers['OCI-Filters-Applied'] = 'artifactType';
    }
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests });
    send(res, 200, headers, body);
  }
}

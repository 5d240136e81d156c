// The part of DTR 2.5's /api/v0 the registry needs to be usable: repositories (with visibility),
// team access on a repository and on a whole namespace, and the createRepositoryOnPush setting.
// HTTP Basic (eNZi password) or a bearer session; DTR's paging (pageStart/pageSize with
// X-Next-Page-Start) and error body {"errors":[{"code","message"}]}.
import type { Principal } from '@orca/api';
import { ApiError } from '@orca/api';
import type { Directory } from '@orca/identity';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { levelAllows, type RepositoryAccessResolver } from './access.js';
import { apiTokenView, type ApiTokens } from './api-tokens.js';
import type { BlobStore } from './blob-store.js';
import type { DtrCredentials } from './credentials.js';
import type { RegistryEventSink } from './events.js';
import {
  isValidComponent,
  isValidTag,
  parseDigest,
  parseRepositoryName,
  type RepositoryName,
} from './grammar.js';
import { BodyTooLargeError, readBody, rawPath, requestUrl, send, sendJson } from './http.js';
import type { ApiV0Extension } from './webhooks-api.js';
import {
  ACCESS_LEVELS,
  repositoryView,
  type AccessLevel,
  type ManifestRecord,
  type RegistryMetadata,
  type RepositoryRecord,
  type TagRecord,
  type TeamAccessRecord,
} from './metadata.js';

export interface ApiV0Options {
  metadata: RegistryMetadata;
  blobs: BlobStore;
  credentials: DtrCredentials;
  apiTokens: ApiTokens;
  access: RepositoryAccessResolver;
  directory: Directory;
  /** host[:port] clients use for this DTR (settings.dtrHost). */
  dtrHost: string;
  log?: { error(message: string): void };
  /** Told about repository and tag changes (webhooks). */
  events?: RegistryEventSink;
  /** More /api/v0 routes (webhooks, promotion policies), tried before answering 404. */
  extensions?: ApiV0Extension[];
}

const PAGE_SIZE_DEFAULT = 10;
/** Image configs bigger than this are not read for the os/architecture of a listing. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const PAGE_SIZE_MAX = 1000;
const MAX_BODY = 64 * 1024;

class DtrApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const fail = (status: number, code: string, message: string) => new DtrApiError(status, code, message);
const noRepo = () => fail(404, 'NO_SUCH_REPOSITORY', 'A repository with the given name does not exist.');
const notAuthorized = () => fail(403, 'NOT_AUTHORIZED', 'The client is not authorized.');

function body(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    throw fail(400, 'INVALID_JSON', 'The request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw fail(400, 'INVALID_JSON', 'The request body must be a JSON object.');
  return value as Record<string, unknown>;
}

function field<T extends 'string' | 'boolean'>(
  form: Record<string, unknown>,
  name: string,
  type: T,
): (T extends 'string' ? string : boolean) | undefined {
  const value = form[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw fail(400, 'INVALID_PARAMETERS', `${name} must be a ${type}`);
  return value as T extends 'string' ? string : boolean;
}

function visibilityOf(form: Record<string, unknown>): RepositoryRecord['visibility'] | undefined {
  const value = form.visibility;
  if (value === undefined || value === null) return undefined;
  if (value !== 'public' && value !== 'private')
    throw fail(400, 'INVALID_REPOSITORY_VISIBILITY', 'Visibility must be "public" or "private".');
  return value;
}

function pageSize(raw: string | null): number {
  if (raw === null || raw === '') return PAGE_SIZE_DEFAULT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw fail(400, 'INVALID_PARAMETERS', 'pageSize must be a positive integer');
  return Math.min(n, PAGE_SIZE_MAX);
}

export class ApiV0Handler {
  constructor(private readonly options: ApiV0Options) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      let e: DtrApiError;
      if (error instanceof DtrApiError) e = error;
      else if (error instanceof BodyTooLargeError) e = fail(413, 'INVALID_PARAMETERS', error.message);
      else if (error instanceof ApiError && error.status === 401)
        e = fail(401, 'NOT_AUTHENTICATED', error.message);
      else if (error instanceof ApiError && error.status < 500)
        e = fail(error.status, error.code, error.message);
      else {
        this.options.log?.error(`api ${req.method} ${rawPath(req)}: ${(error as Error).stack}`);
        e = fail(500, 'INTERNAL_ERROR', 'An internal server error occurred.');
      }
      sendJson(res, e.status, { errors: [{ code: e.code, message: e.message }] });
    }
  }

  private async principal(req: IncomingMessage): Promise<Principal | undefined> {
    return this.options.credentials.principal(req.headers.authorization);
  }

  private async signedIn(req: IncomingMessage): Promise<Principal> {
    const principal = await this.principal(req);
    if (!principal) throw fail(401, 'NOT_AUTHENTICATED', 'The client is not authenticated.');
    return principal;
  }

  private async level(
    principal: Pick<Principal, 'id' | 'name' | 'isAdmin'> | undefined,
    name: RepositoryName,
  ): Promise<AccessLevel | undefined> {
    return (await this.options.access.decide(principal, name)).level;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = requestUrl(req);
    const parts = rawPath(req)
      .slice('/api/v0/'.length)
      .split('/')
      .filter((p, i, all) => p !== '' || i < all.length - 1);
    const [area, a, b, c, d] = parts;
    if (area === 'repositories') {
      if (a === undefined && method === 'GET') return this.listRepositories(req, res, url);
      if (a !== undefined && b === undefined) {
        if (method === 'GET') return this.listRepositories(req, res, url, a);
        if (method === 'POST') return this.createRepository(req, res, a);
      }
      if (a !== undefined && b !== undefined && c === undefined) {
        if (method === 'GET') return this.getRepository(req, res, a, b);
        if (method === 'PATCH') return this.updateRepository(req, res, a, b);
        if (method === 'DELETE') return this.deleteRepository(req, res, a, b);
      }
      if (a !== undefined && b !== undefined && c === 'tags' && parts.length <= 5) {
        if (d === undefined && method === 'GET') return this.listTags(req, res, url, a, b);
        if (d !== undefined && method === 'GET') return this.getTag(req, res, a, b, d);
        if (d !== undefined && method === 'DELETE') return this.deleteTag(req, res, a, b, d);
      }
      if (a !== undefined && b !== undefined && c === 'manifests' && d === undefined && method === 'GET')
        return this.listManifests(req, res, url, a, b);
      if (a !== undefined && b !== undefined && c === 'teamAccess' && parts.length <= 5) {
        if (d === undefined && method === 'GET') return this.listTeamAccess(req, res, a, b);
        if (d !== undefined && method === 'PUT') return this.setTeamAccess(req, res, a, b, d);
        if (d !== undefined && method === 'DELETE') return this.removeTeamAccess(req, res, a, b, d);
      }
    }
    if (area === 'repositoryNamespaces' && a !== undefined && b === 'teamAccess' && parts.length <= 4) {
      if (c === undefined && method === 'GET') return this.listNamespaceAccess(req, res, a);
      if (c !== undefined && method === 'GET') return this.getNamespaceAccess(req, res, a, c);
      if (c !== undefined && method === 'PUT') return this.setNamespaceAccess(req, res, a, c);
      if (c !== undefined && method === 'DELETE') return this.removeNamespaceAccess(req, res, a, c);
    }
    if (
      area === 'accounts' &&
      b === 'repositoryAccess' &&
      c !== undefined &&
      d !== undefined &&
      parts.length === 5
    ) {
      if (method === 'GET') return this.userRepositoryAccess(req, res, a!, c, d);
    }
    if (area === 'api_tokens' && parts.length <= 2) {
      if (a === undefined && method === 'GET') return this.listApiTokens(req, res, url);
      if (a === undefined && method === 'POST') return this.createApiToken(req, res, url);
      if (a !== undefined && method === 'GET') return this.getApiToken(req, res, a);
      if (a !== undefined && method === 'PATCH') return this.updateApiToken(req, res, a);
      if (a !== undefined && method === 'DELETE') return this.deleteApiToken(req, res, a);
    }
    if (area === 'meta' && a === 'settings' && parts.length === 2) {
      if (method === 'GET') return this.getSettings(req, res);
      if (method === 'POST') return this.updateSettings(req, res);
    }
    for (const extension of this.options.extensions ?? [])
      if (await extension.handle(req, res, parts, method)) return;
    throw fail(404, 'NOT_FOUND', 'No such API endpoint.');
  }

  private name(namespace: string, repository: string): RepositoryName {
    const name = parseRepositoryName(`${namespace}/${repository}`);
    if (!name) throw noRepo();
    return name;
  }

  // ---- repositories ----

  private async listRepositories(req: IncomingMessage, res: ServerResponse, url: URL, namespace?: string) {
    const principal = await this.principal(req);
    if (namespace !== undefined && !(await this.options.access.namespace(namespace)))
      throw fail(404, 'NO_SUCH_ACCOUNT', 'An account with the given name does not exist.');
    const size = pageSize(url.searchParams.get('pageSize'));
    const start = url.searchParams.get('pageStart') ?? '';
    const all = (await this.options.metadata.listRepositories(namespace)).sort((x, y) =>
      `${x.namespace}/${x.name}`.localeCompare(`${y.namespace}/${y.name}`),
    );
    const visible: RepositoryRecord[] = [];
    let begun = start === '';
    let next = '';
    for (const r of all) {
      if (!begun) {
        if (r.id !== start) continue;
        begun = true;
      }
      const name = this.name(r.namespace, r.name);
      if (!(await this.level(principal, name))) continue;
      if (visible.length === size) {
        next = r.id;
        break;
      }
      visible.push(r);
    }
    const headers: Record<string, string> = {};
    if (next) headers['X-Next-Page-Start'] = next;
    sendJson(res, 200, { repositories: visible.map(repositoryView) }, headers);
  }

  private async createRepository(req: IncomingMessage, res: ServerResponse, namespace: string) {
    const principal = await this.signedIn(req);
    const form = body(await readBody(req, MAX_BODY));
    const repository = field(form, 'name', 'string');
    if (!repository || !isValidComponent(repository) || !isValidComponent(namespace))
      throw fail(
        400,
        'INVALID_PARAMETERS',
        'name must be a valid repository name (lowercase letters, digits, . _ -)',
      );
    const owner = await this.options.access.namespace(namespace);
    if (!owner) throw fail(404, 'NO_SUCH_ACCOUNT', 'An account with the given name does not exist.');
    const name = this.name(namespace, repository);
    const decision = await this.options.access.decide(principal, name);
    if (decision.level !== 'admin') {
      if (await this.options.metadata.repository(name))
        throw fail(400, 'REPOSITORY_EXISTS', 'A repository with the same name already exists.');
      throw notAuthorized();
    }
    const { created, record } = await this.options.metadata.createRepository(name, {
      namespaceType: owner.isOrg ? 'organization' : 'user',
      shortDescription: field(form, 'shortDescription', 'string') ?? '',
      longDescription: field(form, 'longDescription', 'string') ?? '',
      scanOnPush: field(form, 'scanOnPush', 'boolean') ?? false,
      immutableTags: field(form, 'immutableTags', 'boolean') ?? false,
      enableManifestLists: field(form, 'enableManifestLists', 'boolean') ?? false,
      visibility: visibilityOf(form) ?? 'public',
    });
    if (!created) throw fail(400, 'REPOSITORY_EXISTS', 'A repository with the same name already exists.');
    this.options.events?.repository('REPO_CREATED', name, principal.name, repositoryView(record));
    sendJson(res, 201, repositoryView(record));
  }

  /** The repository and the caller's level on it; 404 when it does not exist or the caller cannot see it. */
  private async visibleRepository(
    principal: Pick<Principal, 'id' | 'name' | 'isAdmin'> | undefined,
    namespace: string,
    repository: string,
  ) {
    const name = this.name(namespace, repository);
    const record = await this.options.metadata.repository(name);
    const level = record ? await this.level(principal, name) : undefined;
    if (!record || !level) throw noRepo();
    return { name, record, level };
  }

  private async getRepository(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
  ) {
    const { record } = await this.visibleRepository(await this.principal(req), namespace, repository);
    sendJson(res, 200, repositoryView(record));
  }

  private async updateRepository(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
  ) {
    const principal = await this.signedIn(req);
    const { name, level } = await this.visibleRepository(principal, namespace, repository);
    if (!levelAllows(level, 'admin')) throw notAuthorized();
    const form = body(await readBody(req, MAX_BODY));
    const patch: Partial<RepositoryRecord> = {};
    const set = <K extends keyof RepositoryRecord>(key: K, value: RepositoryRecord[K] | undefined) => {
      if (value !== undefined) patch[key] = value;
    };
    set('shortDescription', field(form, 'shortDescription', 'string'));
    set('longDescription', field(form, 'longDescription', 'string'));
    set('scanOnPush', field(form, 'scanOnPush', 'boolean'));
    set('immutableTags', field(form, 'immutableTags', 'boolean'));
    set('enableManifestLists', field(form, 'enableManifestLists', 'boolean'));
    set('visibility', visibilityOf(form));
    const updated = await this.options.metadata.updateRepository(name, patch);
    if (!updated) throw noRepo();
    this.options.events?.repository('REPO_UPDATED', name, principal.name, repositoryView(updated));
    sendJson(res, 200, repositoryView(updated));
  }

  private async deleteRepository(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
  ) {
    const principal = await this.signedIn(req);
    const name = parseRepositoryName(`${namespace}/${repository}`);
    // "success or repository does not exist": 204 either way, once the caller may administer it.
    const existing = name ? await this.options.metadata.repository(name) : undefined;
    if (name && existing) {
      if (!levelAllows(await this.level(principal, name), 'admin')) {
        if (!(await this.level(principal, name))) throw noRepo();
        throw notAuthorized();
      }
      await this.options.metadata.deleteRepository(name);
      this.options.events?.repository('REPO_DELETED', name, principal.name, repositoryView(existing));
    }
    send(res, 204);
  }

  // ---- team access ----

  private async team(org: string, teamName: string) {
    const namespace = await this.options.access.namespace(org);
    if (!namespace?.isOrg)
      throw fail(404, 'NO_SUCH_ACCOUNT', 'An organization with the given name does not exist.');
    try {
      return (await this.options.directory.teamRecord(org, teamName)).team;
    } catch {
      throw fail(404, 'NO_SUCH_TEAM', 'A team with the given name does not exist.');
    }
  }

  private async teamAccessView(principal: Principal | undefined, record: TeamAccessRecord) {
    const members = principal ? (await this.options.directory.groupsOf(principal.id)).teamIds : [];
    return {
      accessLevel: record.accessLevel,
      team: {
        id: record.teamId,
        name: record.teamName,
        orgID: record.orgName,
        clientUserIsMember: members.includes(record.teamId),
      },
    };
  }

  private accessLevel(form: Record<string, unknown>): AccessLevel {
    const level = form.accessLevel;
    if (typeof level !== 'string' || !ACCESS_LEVELS.includes(level as AccessLevel))
      throw fail(400, 'INVALID_PARAMETERS', 'accessLevel must be read-only, read-write or admin');
    return level as AccessLevel;
  }

  private async repoTeamAccess(principal: Principal, name: RepositoryName, record: RepositoryRecord) {
    const list = await this.options.metadata.teamAccess(name);
    return {
      repository: repositoryView(record),
      teamAccessList: await Promise.all(list.map((t) => this.teamAccessView(principal, t))),
    };
  }

  private async listTeamAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
  ) {
    const principal = await this.signedIn(req);
    const { name, record, level } = await this.visibleRepository(principal, namespace, repository);
    if (!levelAllows(level, 'admin')) throw notAuthorized();
    sendJson(res, 200, await this.repoTeamAccess(principal, name, record));
  }

  private async setTeamAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
    teamName: string,
  ) {
    const principal = await this.signedIn(req);
    const { name, record, level } = await this.visibleRepository(principal, namespace, repository);
    if (!levelAllows(level, 'admin')) throw notAuthorized();
    if (record.namespaceType !== 'organization')
      throw fail(400, 'INVALID_PARAMETERS', 'Team access applies to repositories owned by an organization.');
    const accessLevel = this.accessLevel(body(await readBody(req, MAX_BODY)));
    const team = await this.team(namespace, teamName);
    await this.options.metadata.setTeamAccess(name, {
      teamId: team.id,
      teamName: team.name,
      orgName: namespace,
      accessLevel,
    });
    sendJson(res, 200, await this.repoTeamAccess(principal, name, record));
  }

  private async removeTeamAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
    teamName: string,
  ) {
    const principal = await this.signedIn(req);
    const { name, level } = await this.visibleRepository(principal, namespace, repository);
    if (!levelAllows(level, 'admin')) throw notAuthorized();
    const team = await this.team(namespace, teamName);
    await this.options.metadata.removeTeamAccess(name, team.id);
    send(res, 204);
  }

  /** Namespace-wide grants: org admins (and DTR admins) manage them. */
  private async orgAdmin(req: IncomingMessage, namespace: string): Promise<Principal> {
    const principal = await this.signedIn(req);
    const owner = await this.options.access.namespace(namespace);
    if (!owner?.isOrg)
      throw fail(404, 'NO_SUCH_ACCOUNT', 'An organization with the given name does not exist.');
    if (principal.isAdmin) return principal;
    const membership = await this.options.directory.membership(namespace, principal.name);
    if (!membership?.isAdmin) throw notAuthorized();
    return principal;
  }

  private async namespaceAccessView(principal: Principal, namespace: string, record: TeamAccessRecord) {
    return { ...(await this.teamAccessView(principal, record)), namespace };
  }

  private async listNamespaceAccess(req: IncomingMessage, res: ServerResponse, namespace: string) {
    const principal = await this.orgAdmin(req, namespace);
    const list = await this.options.metadata.namespaceTeamAccess(namespace);
    sendJson(res, 200, {
      namespace,
      teamAccessList: await Promise.all(list.map((t) => this.teamAccessView(principal, t))),
    });
  }

  private async getNamespaceAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    teamName: string,
  ) {
    const principal = await this.orgAdmin(req, namespace);
    const team = await this.team(namespace, teamName);
    const record = (await this.options.metadata.namespaceTeamAccess(namespace)).find(
      (t) => t.teamId === team.id,
    );
    if (!record)
      throw fail(404, 'NO_SUCH_NAMESPACE_TEAM_ACCESS', 'The team has no access to this namespace.');
    sendJson(res, 200, await this.namespaceAccessView(principal, namespace, record));
  }

  private async setNamespaceAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    teamName: string,
  ) {
    const principal = await this.orgAdmin(req, namespace);
    const accessLevel = this.accessLevel(body(await readBody(req, MAX_BODY)));
    const team = await this.team(namespace, teamName);
    const record = { teamId: team.id, teamName: team.name, orgName: namespace, accessLevel };
    await this.options.metadata.setNamespaceTeamAccess(namespace, record);
    sendJson(res, 200, await this.namespaceAccessView(principal, namespace, record));
  }

  private async removeNamespaceAccess(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    teamName: string,
  ) {
    await this.orgAdmin(req, namespace);
    const team = await this.team(namespace, teamName);
    await this.options.metadata.removeNamespaceTeamAccess(namespace, team.id);
    send(res, 204);
  }

  // ---- tags and manifests ----

  /** DTR's Manifest shape, with os/architecture read from the image config (when small enough). */
  private async manifestView(record: ManifestRecord) {
    let os = '';
    let architecture = '';
    const config = record.configDigest ? parseDigest(record.configDigest) : undefined;
    const stat = config ? await this.options.blobs.stat(config) : undefined;
    if (config && stat && stat.size <= MAX_CONFIG_BYTES) {
      try {
        const doc = JSON.parse(
          (await this.options.blobs.readSmall(config))?.toString('utf8') ?? '{}',
        ) as Record<string, unknown>;
        if (typeof doc.os === 'string') os = doc.os;
        if (typeof doc.architecture === 'string') architecture = doc.architecture;
      } catch {
        // Not JSON (an artifact's config): no platform.
      }
    }
    return {
      digest: record.digest,
      mediaType: record.mediaType,
      configMediaType: record.configMediaType ?? '',
      configDigest: record.configDigest ?? '',
      size: record.size,
      createdAt: record.createdAt,
      author: record.author ?? '',
      os,
      osVersion: '',
      architecture,
      dockerfile: [],
    };
  }

  private async tagView(name: RepositoryName, tag: string, record: TagRecord) {
    const manifest = await this.options.metadata.manifest(name, record.digest);
    return {
      name: tag,
      digest: record.digest,
      author: record.author ?? '',
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      hashMismatch: false,
      inNotary: false,
      manifest: manifest ? await this.manifestView(manifest) : { digest: record.digest },
      licenses: [],
      components: [],
    };
  }

  private page<T>(items: T[], marker: (item: T) => string, url: URL, res: ServerResponse): T[] {
    const size = pageSize(url.searchParams.get('pageSize'));
    const start = url.searchParams.get('pageStart');
    let from = start ? items.findIndex((item) => marker(item) === start) : 0;
    if (from < 0) from = items.length;
    const next = items[from + size];
    if (next !== undefined) res.setHeader('X-Next-Page-Start', marker(next));
    return items.slice(from, from + size);
  }

  private async listTags(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    namespace: string,
    repository: string,
  ) {
    const { name } = await this.visibleRepository(await this.principal(req), namespace, repository);
    const tags = this.page(await this.options.metadata.tagsOf(name), (t) => t.tag, url, res);
    sendJson(res, 200, await Promise.all(tags.map((t) => this.tagView(name, t.tag, t.record))));
  }

  private async getTag(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
    tag: string,
  ) {
    const { name } = await this.visibleRepository(await this.principal(req), namespace, repository);
    const record = isValidTag(tag) ? await this.options.metadata.tag(name, tag) : undefined;
    if (!record) throw fail(404, 'NO_SUCH_TAG', 'A tag with the given name does not exist.');
    // An array: one entry per platform in DTR (orca: the tag's own manifest).
    sendJson(res, 200, [await this.tagView(name, tag, record)]);
  }

  private async deleteTag(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    repository: string,
    tag: string,
  ) {
    const principal = await this.signedIn(req);
    const { name, level } = await this.visibleRepository(principal, namespace, repository);
    if (!levelAllows(level, 'read-write')) throw notAuthorized();
    const before = isValidTag(tag) ? await this.options.metadata.tag(name, tag) : undefined;
    if (!isValidTag(tag) || !(await this.options.metadata.deleteTag(name, tag)))
      throw fail(404, 'NO_SUCH_TAG', 'A tag with the given name does not exist.');
    if (before) {
      const manifest = await this.options.metadata.manifest(name, before.digest);
      this.options.events?.tagDeleted({
        name,
        tag,
        digest: before.digest,
        configDigest: manifest?.configDigest,
        author: principal.name,
      });
    }
    send(res, 204);
  }

  private async listManifests(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    namespace: string,
    repository: string,
  ) {
    const { name } = await this.visibleRepository(await this.principal(req), namespace, repository);
    const manifests = this.page(await this.options.metadata.manifestsOf(name), (m) => m.digest, url, res);
    sendJson(res, 200, await Promise.all(manifests.map((m) => this.manifestView(m))));
  }

  /** GET /api/v0/accounts/{user}/repositoryAccess/{ns}/{repo}: the user's level, as the decision gives it. */
  private async userRepositoryAccess(
    req: IncomingMessage,
    res: ServerResponse,
    username: string,
    namespace: string,
    repository: string,
  ) {
    const principal = await this.signedIn(req);
    if (principal.name !== username && !principal.isAdmin) throw notAuthorized();
    let account;
    try {
      account = await this.options.directory.user(username);
    } catch {
      throw fail(404, 'NO_SUCH_USER', 'A user with the given name does not exist.');
    }
    const subject = { id: account.id, name: account.name, isAdmin: account.isAdmin };
    // A user without even read access does not see the repository: 404, as for the user themselves.
    const { record, level } = await this.visibleRepository(subject, namespace, repository);
    const view = await this.options.directory.view(account);
    sendJson(res, 200, {
      accessLevel: level,
      user: {
        id: view.id,
        name: view.name,
        fullName: view.fullName,
        isOrg: view.isOrg,
        isImported: view.isImported,
        isActive: view.isActive,
        isAdmin: view.isAdmin,
      },
      repository: repositoryView(record),
    });
  }

  // ---- access tokens ----

  /** The account whose tokens are meant: the caller, or (admins only) ?username=. */
  private async tokenOwner(req: IncomingMessage, url: URL): Promise<string> {
    const principal = await this.signedIn(req);
    const username = url.searchParams.get('username');
    if (!username || username === principal.name) return principal.name;
    if (!principal.isAdmin) throw notAuthorized();
    const owner = await this.options.access.namespace(username);
    if (!owner || owner.isOrg) throw fail(404, 'NO_SUCH_USER', 'A user with the given name does not exist.');
    return username;
  }

  private async ownedToken(req: IncomingMessage, hashedToken: string) {
    const principal = await this.signedIn(req);
    const record = await this.options.apiTokens.get(hashedToken);
    if (!record || (record.accountName !== principal.name && !principal.isAdmin))
      throw fail(404, 'NO_SUCH_API_TOKEN', 'An API token with the given hash does not exist.');
    return record;
  }

  private async listApiTokens(req: IncomingMessage, res: ServerResponse, url: URL) {
    const owner = await this.tokenOwner(req, url);
    const tokens = this.page(await this.options.apiTokens.list(owner), (t) => t.hashedToken, url, res);
    sendJson(res, 200, tokens.map(apiTokenView));
  }

  private async createApiToken(req: IncomingMessage, res: ServerResponse, url: URL) {
    const owner = await this.tokenOwner(req, url);
    const form = body(await readBody(req, MAX_BODY));
    const tokenLabel = field(form, 'tokenLabel', 'string') ?? '';
    if (tokenLabel.length > 200) throw fail(400, 'INVALID_PARAMETERS', 'tokenLabel is too long');
    const userAgent = req.headers['user-agent'] ?? '';
    const { token, record } = await this.options.apiTokens.create(owner, {
      tokenLabel,
      generatedBy: 'user',
      creatorUa: userAgent.slice(0, 200),
    });
    sendJson(res, 200, { ...apiTokenView(record), token });
  }

  private async getApiToken(req: IncomingMessage, res: ServerResponse, hashedToken: string) {
    sendJson(res, 200, apiTokenView(await this.ownedToken(req, hashedToken)));
  }

  private async updateApiToken(req: IncomingMessage, res: ServerResponse, hashedToken: string) {
    await this.ownedToken(req, hashedToken);
    const form = body(await readBody(req, MAX_BODY));
    const patch: { tokenLabel?: string; isActive?: boolean } = {};
    const tokenLabel = field(form, 'tokenLabel', 'string');
    const isActive = field(form, 'isActive', 'boolean');
    if (tokenLabel !== undefined) patch.tokenLabel = tokenLabel.slice(0, 200);
    if (isActive !== undefined) patch.isActive = isActive;
    const updated = await this.options.apiTokens.update(hashedToken, patch);
    if (!updated) throw fail(404, 'NO_SUCH_API_TOKEN', 'An API token with the given hash does not exist.');
    sendJson(res, 200, apiTokenView(updated));
  }

  private async deleteApiToken(req: IncomingMessage, res: ServerResponse, hashedToken: string) {
    await this.ownedToken(req, hashedToken);
    await this.options.apiTokens.remove(hashedToken);
    send(res, 200);
  }

  // ---- settings ----

  private async admin(req: IncomingMessage): Promise<Principal> {
    const principal = await this.signedIn(req);
    if (!principal.isAdmin) throw notAuthorized();
    return principal;
  }

  private async getSettings(req: IncomingMessage, res: ServerResponse) {
    await this.admin(req);
    const settings = await this.options.metadata.settings();
    sendJson(res, 200, {
      dtrHost: this.options.dtrHost,
      sso: false,
      createRepositoryOnPush: settings.createRepositoryOnPush,
      replicaSettings: {},
      httpProxy: '',
      httpsProxy: '',
      noProxy: '',
      reportAnalytics: false,
      anonymizeAnalytics: false,
      disableBackupWarning: false,
      logProtocol: 'internal',
      logHost: '',
      logLevel: 'INFO',
      webTLSCert: '',
      webTLSCA: '',
      replicaID: '',
      scanningEnabled: false,
      scanningSyncOnline: false,
      scanningEnableAutoRecheck: false,
      jobHistoryToKeep: 10,
      storageVolume: '',
      nfsHost: '',
      nfsPath: '',
    });
  }

  private async updateSettings(req: IncomingMessage, res: ServerResponse) {
    await this.admin(req);
    const form = body(await readBody(req, MAX_BODY));
    const createRepositoryOnPush = field(form, 'createRepositoryOnPush', 'boolean');
    if (createRepositoryOnPush !== undefined)
      await this.options.metadata.updateSettings({ createRepositoryOnPush });
    send(res, 202);
  }
}

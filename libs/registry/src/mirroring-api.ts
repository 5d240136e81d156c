// /api/v0/repositories/{ns}/{repo}/pushMirroringPolicies and …/pollMirroringPolicies (SW25):
// create, list, get, update (PUT), delete. Poll policies have no rules or tag template. Admin on the local repository is required. Passwords and tokens are sealed on the way
// in and never come back out.
import { ApiError, type Principal } from '@orca/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { levelAllows, type RepositoryAccessResolver } from './access.js';
import type { DtrCredentials } from './credentials.js';
import { parseRepositoryName, type RepositoryName } from './grammar.js';
import { send, sendJson } from './http.js';
import type { RegistryMetadata } from './metadata.js';
import {
  parseRemoteHost,
  pollMirroringPolicyView,
  parseRemoteRepository,
  pushMirroringPolicyView,
  type PushMirroringPolicies,
  type PushMirroringPolicyRecord,
} from './mirroring.js';
import { checkTagTemplate, parseRules } from './promotion.js';
import { readForm, signedIn, type ApiV0Extension } from './webhooks-api.js';

const noRepo = () =>
  new ApiError(404, 'NO_SUCH_REPOSITORY', 'A repository with the given name does not exist.');

function optional<T extends 'string' | 'boolean'>(
  form: Record<string, unknown>,
  name: string,
  type: T,
): (T extends 'string' ? string : boolean) | undefined {
  const value = form[name];
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new ApiError(400, 'INVALID_PARAMETERS', `${name} must be a ${type}`);
  return value as T extends 'string' ? string : boolean;
}

export class MirroringApi implements ApiV0Extension {
  constructor(
    private readonly options: {
      policies: PushMirroringPolicies;
      credentials: DtrCredentials;
      access: RepositoryAccessResolver;
      metadata: RegistryMetadata;
      /** Called after a poll policy is created or changed, so it is polled promptly. */
      onChange?(): void;
    },
  ) {}

  private get poll(): boolean {
    return this.options.policies.kind === 'pollmirroring';
  }

  private view(p: PushMirroringPolicyRecord) {
    return this.poll ? pollMirroringPolicyView(p) : pushMirroringPolicyView(p);
  }

  private noPolicy() {
    return this.poll
      ? new ApiError(
          404,
          'NO_SUCH_POLL_MIRRORING_POLICY',
          'A poll mirroring policy with the given id does not exist.',
        )
      : new ApiError(
          404,
          'NO_SUCH_PUSH_MIRRORING_POLICY',
          'A push mirroring policy with the given id does not exist.',
        );
  }

  async handle(req: IncomingMessage, res: ServerResponse, parts: string[], method: string): Promise<boolean> {
    const [area, ns, repo, what, id, extra] = parts;
    const route = this.poll ? 'pollMirroringPolicies' : 'pushMirroringPolicies';
    if (area !== 'repositories' || ns === undefined || repo === undefined || what !== route) return false;
    if (extra !== undefined) return false;
    let work: Promise<void> | undefined;
    if (id === undefined && method === 'GET') work = this.list(req, res, ns, repo);
    if (id === undefined && method === 'POST') work = this.create(req, res, ns, repo);
    if (id !== undefined && method === 'GET') work = this.getOne(req, res, ns, repo, id);
    if (id !== undefined && method === 'PUT') work = this.update(req, res, ns, repo, id);
    if (id !== undefined && method === 'DELETE') work = this.remove(req, res, ns, repo, id);
    if (!work) return false;
    await work;
    return true;
  }

  private async administered(
    principal: Principal,
    namespace: string,
    repository: string,
  ): Promise<RepositoryName> {
    const name = parseRepositoryName(`${namespace}/${repository}`);
    if (!name || !(await this.options.metadata.repository(name))) throw noRepo();
    const level = (await this.options.access.decide(principal, name)).level;
    if (!level) throw noRepo();
    if (!levelAllows(level, 'admin'))
      throw new ApiError(403, 'NOT_AUTHORIZED', 'The client is not authorized.');
    return name;
  }

  private async list(req: IncomingMessage, res: ServerResponse, ns: string, repo: string) {
    const name = await this.administered(await signedIn(this.options.credentials, req), ns, repo);
    sendJson(
      res,
      200,
      (await this.options.policies.list(name)).map((p) => this.view(p)),
    );
  }

  private async create(req: IncomingMessage, res: ServerResponse, ns: string, repo: string) {
    const principal = await signedIn(this.options.credentials, req);
    const local = await this.administered(principal, ns, repo);
    const form = await readForm(req);
    const enabled = optional(form, 'enabled', 'boolean');
    if (enabled === undefined) throw new ApiError(400, 'INVALID_PARAMETERS', 'enabled must be a boolean');
    const { policies } = this.options;
    const created = await policies.create({
      rules: this.poll ? [] : parseRules(form.rules),
      remoteHost: parseRemoteHost(form.remoteHost),
      remoteRepository: parseRemoteRepository(form.remoteRepository),
      remoteCA: optional(form, 'remoteCA', 'string') ?? '',
      skipTLSVerification: optional(form, 'skipTLSVerification', 'boolean') ?? false,
      tagTemplate: this.poll ? '%n' : checkTagTemplate(form.tagTemplate),
      enabled,
      username: optional(form, 'username', 'string') ?? '',
      sealedPassword: policies.seal(optional(form, 'password', 'string') ?? ''),
      sealedAuthToken: policies.seal(optional(form, 'authToken', 'string') ?? ''),
      localRepository: local.full,
      authorId: principal.id,
      authorName: principal.name,
    });
    this.options.onChange?.();
    sendJson(res, 201, this.view(created));
  }

  private async getOne(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const name = await this.administered(await signedIn(this.options.credentials, req), ns, repo);
    const policy = await this.options.policies.get(name, id);
    if (!policy) throw this.noPolicy();
    sendJson(res, 200, this.view(policy));
  }

  private async update(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const principal = await signedIn(this.options.credentials, req);
    const local = await this.administered(principal, ns, repo);
    const form = await readForm(req);
    const { policies } = this.options;
    const policy = await policies.get(local, id);
    if (!policy) throw this.noPolicy();
    const next: PushMirroringPolicyRecord = { ...policy, authorId: principal.id, authorName: principal.name };
    if (!this.poll && form.rules !== undefined) next.rules = parseRules(form.rules);
    if (form.remoteHost !== undefined) next.remoteHost = parseRemoteHost(form.remoteHost);
    if (form.remoteRepository !== undefined)
      next.remoteRepository = parseRemoteRepository(form.remoteRepository);
    if (!this.poll && form.tagTemplate !== undefined) next.tagTemplate = checkTagTemplate(form.tagTemplate);
    next.remoteCA = optional(form, 'remoteCA', 'string') ?? next.remoteCA;
    next.skipTLSVerification = optional(form, 'skipTLSVerification', 'boolean') ?? next.skipTLSVerification;
    next.enabled = optional(form, 'enabled', 'boolean') ?? next.enabled;
    next.username = optional(form, 'username', 'string') ?? next.username;
    const password = optional(form, 'password', 'string');
    if (password !== undefined) next.sealedPassword = policies.seal(password);
    const authToken = optional(form, 'authToken', 'string');
    if (authToken !== undefined) next.sealedAuthToken = policies.seal(authToken);
    // A poll policy that changed is polled again right away.
    if (this.poll) delete next.nextPollAt;
    await policies.put(next);
    this.options.onChange?.();
    sendJson(res, 200, this.view(next));
  }

  private async remove(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const name = await this.administered(await signedIn(this.options.credentials, req), ns, repo);
    if (!(await this.options.policies.delete(name, id))) throw this.noPolicy();
    send(res, 204);
  }
}

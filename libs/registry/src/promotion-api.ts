// /api/v0/repositories/{ns}/{repo}/promotionPolicies (SW25): create, list (?source=true|false),
// get, update (PUT), delete; ?initialEvaluation=true runs the policy over the existing tags.
// Authorization (SW25): admin on the source and on the target repository.
import { ApiError, type Principal } from '@orca/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { levelAllows, type RepositoryAccessResolver } from './access.js';
import type { DtrCredentials } from './credentials.js';
import { parseRepositoryName, type RepositoryName } from './grammar.js';
import { requestUrl, send, sendJson } from './http.js';
import type { RegistryMetadata } from './metadata.js';
import {
  checkTagTemplate,
  parseRules,
  promotionPolicyView,
  type PromotionEngine,
  type PromotionPolicies,
  type PromotionPolicyRecord,
} from './promotion.js';
import { readForm, signedIn, type ApiV0Extension } from './webhooks-api.js';

const noRepo = () =>
  new ApiError(404, 'NO_SUCH_REPOSITORY', 'A repository with the given name does not exist.');
const noPolicy = () =>
  new ApiError(404, 'NO_SUCH_PROMOTION_POLICY', 'A promotion policy with the given id does not exist.');
const notAuthorized = () => new ApiError(403, 'NOT_AUTHORIZED', 'The client is not authorized.');

export class PromotionApi implements ApiV0Extension {
  constructor(
    private readonly options: {
      policies: PromotionPolicies;
      engine: PromotionEngine;
      credentials: DtrCredentials;
      access: RepositoryAccessResolver;
      metadata: RegistryMetadata;
    },
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, parts: string[], method: string): Promise<boolean> {
    const [area, ns, repo, what, id, extra] = parts;
    if (area !== 'repositories' || ns === undefined || repo === undefined || what !== 'promotionPolicies')
      return false;
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

  /** The repository, which the caller must administer. */
  private async administered(
    principal: Principal,
    namespace: string,
    repository: string,
  ): Promise<RepositoryName> {
    const name = parseRepositoryName(`${namespace}/${repository}`);
    if (!name || !(await this.options.metadata.repository(name))) throw noRepo();
    const level = (await this.options.access.decide(principal, name)).level;
    if (!level) throw noRepo();
    if (!levelAllows(level, 'admin')) throw notAuthorized();
    return name;
  }

  private async target(principal: Principal, raw: unknown): Promise<RepositoryName> {
    if (typeof raw !== 'string')
      throw new ApiError(400, 'INVALID_PARAMETERS', 'targetRepository must be "namespace/repository"');
    const name = parseRepositoryName(raw);
    if (!name || raw.split('/').length !== 2)
      throw new ApiError(400, 'INVALID_PARAMETERS', 'targetRepository must be "namespace/repository"');
    const [ns, repo] = raw.split('/') as [string, string];
    return this.administered(principal, ns, repo);
  }

  private async list(req: IncomingMessage, res: ServerResponse, ns: string, repo: string) {
    const principal = await signedIn(this.options.credentials, req);
    const name = await this.administered(principal, ns, repo);
    const source = requestUrl(req).searchParams.get('source');
    if (source !== null && source !== 'true' && source !== 'false')
      throw new ApiError(400, 'INVALID_PARAMETERS', 'source must be true or false');
    const list =
      source === 'false'
        ? await this.options.policies.targeting(name)
        : await this.options.policies.list(name);
    sendJson(res, 200, list.map(promotionPolicyView));
  }

  private async create(req: IncomingMessage, res: ServerResponse, ns: string, repo: string) {
    const principal = await signedIn(this.options.credentials, req);
    const source = await this.administered(principal, ns, repo);
    const form = await readForm(req);
    const rules = parseRules(form.rules);
    const tagTemplate = checkTagTemplate(form.tagTemplate);
    if (typeof form.enabled !== 'boolean')
      throw new ApiError(400, 'INVALID_PARAMETERS', 'enabled must be a boolean');
    const target = await this.target(principal, form.targetRepository);
    if (target.full === source.full)
      throw new ApiError(
        400,
        'INVALID_PARAMETERS',
        'targetRepository must differ from the source repository',
      );
    const created = await this.options.policies.create({
      sourceRepository: source.full,
      targetRepository: target.full,
      tagTemplate,
      rules,
      enabled: form.enabled,
      authorId: principal.id,
      authorName: principal.name,
    });
    const evaluated = await this.initialEvaluation(req, source, created);
    sendJson(res, 201, promotionPolicyView(evaluated));
  }

  private async initialEvaluation(
    req: IncomingMessage,
    source: RepositoryName,
    policy: PromotionPolicyRecord,
  ) {
    if (requestUrl(req).searchParams.get('initialEvaluation') !== 'true') return policy;
    let latest = policy;
    for (const { tag } of await this.options.metadata.tagsOf(source)) {
      const done = await this.options.engine.evaluate(source, tag, latest);
      if (done[0]) latest = done[0].policy;
    }
    return latest;
  }

  private async getOne(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const principal = await signedIn(this.options.credentials, req);
    const name = await this.administered(principal, ns, repo);
    const policy = await this.options.policies.get(name, id);
    if (!policy) throw noPolicy();
    sendJson(res, 200, promotionPolicyView(policy));
  }

  private async update(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const principal = await signedIn(this.options.credentials, req);
    const source = await this.administered(principal, ns, repo);
    const form = await readForm(req);
    const policy = await this.options.policies.get(source, id);
    if (!policy) throw noPolicy();
    const next: PromotionPolicyRecord = { ...policy, authorId: principal.id, authorName: principal.name };
    if (form.rules !== undefined) next.rules = parseRules(form.rules);
    if (form.tagTemplate !== undefined) next.tagTemplate = checkTagTemplate(form.tagTemplate);
    if (form.enabled !== undefined) {
      if (typeof form.enabled !== 'boolean')
        throw new ApiError(400, 'INVALID_PARAMETERS', 'enabled must be a boolean');
      next.enabled = form.enabled;
    }
    if (form.targetRepository !== undefined)
      next.targetRepository = (await this.target(principal, form.targetRepository)).full;
    if (next.targetRepository === source.full)
      throw new ApiError(
        400,
        'INVALID_PARAMETERS',
        'targetRepository must differ from the source repository',
      );
    await this.options.policies.put(next);
    sendJson(res, 200, promotionPolicyView(await this.initialEvaluation(req, source, next)));
  }

  private async remove(req: IncomingMessage, res: ServerResponse, ns: string, repo: string, id: string) {
    const principal = await signedIn(this.options.credentials, req);
    const name = await this.administered(principal, ns, repo);
    if (!(await this.options.policies.delete(name, id))) throw noPolicy();
    send(res, 204);
  }
}

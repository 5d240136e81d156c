// /api/v0/webhooks and the webhook listings (SW25): create, list, update (inactive), delete, the
// test endpoint, plus orca's own GET /api/v0/webhooks/{id} and …/{id}/deliveries (delivery state
// and attempt history; not in DTR 2.5). Who may subscribe (reference §1.6): repository admins for
// "ns/repo" keys, the namespace owner (or org admin) for "ns" keys, DTR admins for global ones.
import { ApiError, type Principal } from '@orca/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { levelAllows, type RepositoryAccessResolver } from './access.js';
import type { DtrCredentials } from './credentials.js';
import { isWebhookEventType } from './events.js';
import { isValidComponent, parseRepositoryName } from './grammar.js';
import { readBody, requestUrl, send, sendJson } from './http.js';
import type { RegistryMetadata } from './metadata.js';
import {
  parseWebhookForm,
  postPayload,
  samplePayload,
  webhookView,
  type WebhookRecord,
  type WebhookStore,
} from './webhooks.js';

const MAX_FORM = 64 * 1024;

/** The JSON object in a request body, or DTR's 400 INVALID_JSON. */
export async function readForm(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, MAX_FORM);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ApiError(400, 'INVALID_JSON', 'The request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ApiError(400, 'INVALID_JSON', 'The request body must be a JSON object.');
  return value as Record<string, unknown>;
}

export async function signedIn(credentials: DtrCredentials, req: IncomingMessage): Promise<Principal> {
  const principal = await credentials.principal(req.headers.authorization);
  if (!principal) throw new ApiError(401, 'NOT_AUTHENTICATED', 'The client is not authenticated.');
  return principal;
}

const notAuthorized = () => new ApiError(403, 'NOT_AUTHORIZED', 'The client is not authorized.');
const noWebhook = () => new ApiError(404, 'NO_SUCH_WEBHOOK', 'A webhook with the given id does not exist.');

/** Handles its routes and answers true; false leaves the request to the rest of /api/v0. */
export interface ApiV0Extension {
  handle(req: IncomingMessage, res: ServerResponse, parts: string[], method: string): Promise<boolean>;
}

export class WebhooksApi implements ApiV0Extension {
  constructor(
    private readonly options: {
      webhooks: WebhookStore;
      credentials: DtrCredentials;
      access: RepositoryAccessResolver;
      metadata: RegistryMetadata;
      dtrHost: string;
      /** Called after a webhook changes, so deliveries start promptly. */
      onChange?(): void;
    },
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, parts: string[], method: string): Promise<boolean> {
    const [area, a, b, c, d] = parts;
    if (area === 'webhooks') {
      if (a === undefined && method === 'GET') return this.done(this.list(req, res));
      if (a === undefined && method === 'POST') return this.done(this.create(req, res));
      if (a === 'test' && b === undefined && method === 'POST') return this.done(this.test(req, res));
      if (a === 'update' && b === undefined && method === 'POST') return this.done(this.update(req, res));
      if (a !== undefined && b === undefined && method === 'DELETE')
        return this.done(this.remove(req, res, a));
      if (a !== undefined && b === undefined && method === 'GET') return this.done(this.getOne(req, res, a));
      if (a !== undefined && b === 'deliveries' && c === undefined && method === 'GET')
        return this.done(this.deliveries(req, res, a));
    }
    if (area === 'accounts' && a !== undefined && b === 'webhooks' && c === undefined && method === 'GET')
      return this.done(this.listKey(req, res, a));
    if (
      area === 'repositories' &&
      a !== undefined &&
      b !== undefined &&
      c === 'webhooks' &&
      d === undefined &&
      method === 'GET'
    )
      return this.done(this.listKey(req, res, `${a}/${b}`));
    return false;
  }

  private async done(work: Promise<void>): Promise<boolean> {
    await work;
    return true;
  }

  /** Whether `principal` administers what `key` names. */
  private async mayManage(principal: Principal, key: string): Promise<boolean> {
    if (principal.isAdmin) return true;
    if (key === '') return false;
    if (key.includes('/')) {
      const name = parseRepositoryName(key);
      if (!name) return false;
      return levelAllows((await this.options.access.decide(principal, name)).level, 'admin');
    }
    if (!isValidComponent(key)) return false;
    const owner = await this.options.access.namespace(key);
    if (!owner) return false;
    if (!owner.isOrg) return owner.name === principal.name;
    // An org's admins hold admin on every repository in it; ask about a name in the namespace.
    const probe = parseRepositoryName(`${key}/webhook-scope-probe`);
    return (
      probe !== undefined && levelAllows((await this.options.access.decide(principal, probe)).level, 'admin')
    );
  }

  private async visible(principal: Principal): Promise<WebhookRecord[]> {
    const all = await this.options.webhooks.list();
    if (principal.isAdmin) return all;
    const mine: WebhookRecord[] = [];
    for (const w of all) if (await this.mayManage(principal, w.key)) mine.push(w);
    return mine;
  }

  private async list(req: IncomingMessage, res: ServerResponse) {
    const principal = await signedIn(this.options.credentials, req);
    const filter = requestUrl(req).searchParams.get('webhookType') ?? 'any';
    if (filter !== 'any' && !isWebhookEventType(filter))
      throw new ApiError(400, 'INVALID_PARAMETERS', 'webhookType must be "any" or a webhook event type');
    const hooks = (await this.visible(principal)).filter((w) => filter === 'any' || w.type === filter);
    sendJson(res, 200, hooks.map(webhookView));
  }

  private async listKey(req: IncomingMessage, res: ServerResponse, key: string) {
    const principal = await signedIn(this.options.credentials, req);
    if (key.includes('/')) {
      const name = parseRepositoryName(key);
      const level = name ? (await this.options.access.decide(principal, name)).level : undefined;
      if (!level)
        throw new ApiError(404, 'NO_SUCH_REPOSITORY', 'A repository with the given name does not exist.');
    } else if (!(await this.options.access.namespace(key)))
      throw new ApiError(404, 'NO_SUCH_ACCOUNT', 'An account with the given name does not exist.');
    if (!(await this.mayManage(principal, key))) throw notAuthorized();
    const hooks = (await this.options.webhooks.list()).filter((w) => w.key === key);
    sendJson(res, 200, hooks.map(webhookView));
  }

  private async create(req: IncomingMessage, res: ServerResponse) {
    const principal = await signedIn(this.options.credentials, req);
    const form = parseWebhookForm(await readForm(req));
    // Scanner updates are global events, for DTR admins only (API only).
    if (form.type === 'SCANNER_UPDATE_COMPLETED' && !principal.isAdmin) throw notAuthorized();
    if (form.key === '' && !principal.isAdmin)
      throw new ApiError(400, 'INVALID_PARAMETERS', 'key is required (a namespace or namespace/repository)');
    if (form.key !== '') {
      const name = form.key.includes('/') ? parseRepositoryName(form.key) : undefined;
      if (form.key.includes('/') && !name)
        throw new ApiError(400, 'INVALID_PARAMETERS', 'key must be a namespace or namespace/repository');
      if (name && !(await this.options.metadata.repository(name)))
        throw new ApiError(404, 'NO_SUCH_REPOSITORY', 'A repository with the given name does not exist.');
      if (!name && !(await this.options.access.namespace(form.key)))
        throw new ApiError(404, 'NO_SUCH_ACCOUNT', 'An account with the given name does not exist.');
    }
    if (form.type === 'REPO_EVENT' && form.key.includes('/'))
      throw new ApiError(400, 'INVALID_PARAMETERS', 'REPO_EVENT webhooks take a namespace key');
    if (!(await this.mayManage(principal, form.key))) throw notAuthorized();
    const created = await this.options.webhooks.create({ ...form, authorID: principal.id });
    this.options.onChange?.();
    sendJson(res, 200, webhookView(created));
  }

  private async owned(req: IncomingMessage, id: string) {
    const principal = await signedIn(this.options.credentials, req);
    const hook = await this.options.webhooks.get(id);
    if (!hook || !(await this.mayManage(principal, hook.key))) throw noWebhook();
    return hook;
  }

  private async getOne(req: IncomingMessage, res: ServerResponse, id: string) {
    sendJson(res, 200, webhookView(await this.owned(req, id)));
  }

  private async deliveries(req: IncomingMessage, res: ServerResponse, id: string) {
    const hook = await this.owned(req, id);
    sendJson(res, 200, await this.options.webhooks.deliveries(hook.id));
  }

  private async update(req: IncomingMessage, res: ServerResponse) {
    const form = await readForm(req);
    if (typeof form.id !== 'string' || typeof form.inactive !== 'boolean')
      throw new ApiError(400, 'INVALID_PARAMETERS', 'id (string) and inactive (boolean) are required');
    const hook = await this.owned(req, form.id);
    const updated = await this.options.webhooks.update(hook.id, { inactive: form.inactive });
    if (!updated) throw noWebhook();
    this.options.onChange?.();
    sendJson(res, 200, [webhookView(updated)]);
  }

  private async remove(req: IncomingMessage, res: ServerResponse, id: string) {
    const hook = await this.owned(req, id);
    await this.options.webhooks.delete(hook.id);
    await this.options.webhooks.removeDeliveries(hook.id);
    send(res, 200);
  }

  private async test(req: IncomingMessage, res: ServerResponse) {
    const principal = await signedIn(this.options.credentials, req);
    const form = await readForm(req);
    const { type, endpoint } = parseWebhookForm({ ...form, key: undefined });
    if (form.type === undefined) throw new ApiError(400, 'INVALID_PARAMETERS', 'type is required');
    // Anyone signed in may test an endpoint; it carries only a fixed sample payload.
    void principal;
    const attempt = await postPayload(
      { endpoint, tlsCert: '', skipTLSVerification: form.skipTLSVerification === true },
      samplePayload(type, this.options.dtrHost),
    );
    if (attempt.status === undefined || attempt.status < 200 || attempt.status >= 300)
      throw new ApiError(
        400,
        'INVALID_PARAMETERS',
        `the test delivery to the endpoint failed: ${attempt.status ?? attempt.error ?? 'no answer'}`,
      );
    send(res, 200);
  }
}

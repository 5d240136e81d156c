// What one Docker API call carries through the front door: the request, the response, the caller
// and its decisions (libs/rbac's decide(), with one grants snapshot per request), and the small
// HTTP helpers every handler shares.
import type { Principal } from '@orca/api';
import type { NodeView } from '@orca/cluster';
import {
  CATALOGUE,
  decide,
  operationsOn,
  type Authorizer,
  type AuthzDecision,
  type AuthzSnapshot,
  type AuthzSubject,
} from '@orca/rbac';
import type { Store } from '@orca/store';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readAll, type EngineCredentials } from './engines.js';
import { DockerApiError, badRequest } from './errors.js';
import { isObject } from './policy.js';

export interface FrontDoorOptions {
  store: Store;
  /** libs/rbac's Authorizer: subjects (with teams and orgs) and the grants snapshot for decide(). */
  authorizer: Authorizer;
  /** libs/identity's Authenticator over this request's credentials; throws (401) when they fail. */
  authenticate(request: IncomingMessage): Promise<Principal>;
  /**
   * The caller's teams and orgs for its RBAC subject (what authorizer.subjectFor looks up in the
   * directory); given when a watched copy answers it without store reads.
   */
  groupsOf?(accountId: string): Promise<{ teamIds: string[]; orgIds: string[] }>;
  listNodes(): Promise<NodeView[]>;
  credentials(): Promise<EngineCredentials>;
  proxyPort: number;
  /** The unix socket of the engine on the controller's own node, reached without ucp-proxy. */
  localEngineSocket?: string;
  log?: { warn(message: string): void; error(message: string): void };
}

export type Response = ServerResponse & { locals?: Record<string, unknown> };

export const MAX_JSON_BODY = 16 * 1024 * 1024;
export const EMPTY_SNAPSHOT: AuthzSnapshot = { grants: [], collections: [], roles: new Map() };
export const CONTAINER_OPERATIONS = CATALOGUE.Container;
/** Who is calling, and the decisions about them (all through rbac's decide()). */
export class Caller {
  private snapshot?: Promise<AuthzSnapshot>;
  private readonly fullControl = new Map<string, boolean>();

  constructor(
    readonly principal: Principal,
    readonly subject: AuthzSubject,
    private readonly authorizer: Authorizer,
  ) {}

  get isAdmin(): boolean {
    return this.principal.isAdmin;
  }

  private loadSnapshot(): Promise<AuthzSnapshot> {
    // Admins are decided without grants: decide() answers them first.
    this.snapshot ??= this.isAdmin ? Promise.resolve(EMPTY_SNAPSHOT) : this.authorizer.snapshot(this.subject);
    return this.snapshot;
  }

  async decide(operation: string, collectionPath: string): Promise<AuthzDecision> {
    return decide(
      { subject: this.subject, operation, resource: { collectionPath } },
      await this.loadSnapshot(),
    );
  }

  /**
   * What every decision about this caller depends on: the grants snapshot (immutable, replaced on
   * any RBAC change) and the subject with its teams and orgs. Equal keys on the same snapshot mean
   * equal decisions, so a filtered list may be reused.
   */
  async decisionKey(): Promise<{ snapshot: object; subject: string }> {
    const { id, teamIds, orgIds } = this.subject;
    return { snapshot: await this.loadSnapshot(), subject: `${id}|${teamIds.join(',')}|${orgIds.join(',')}` };
  }

  /**
   * For filtering a list: whether `operation` is allowed on a collection, decided once per
   * collection (a list's items share a few) and without a promise per item.
   */
  async allows(operation: string): Promise<(collectionPath: string) => boolean> {
    const snapshot = await this.loadSnapshot();
    const known = new Map<string, boolean>();
    return (collectionPath) => {
      let allowed = known.get(collectionPath);
      if (allowed === undefined) {
        allowed = decide(
          { subject: this.subject, operation, resource: { collectionPath } },
          snapshot,
        ).allowed;
        known.set(collectionPath, allowed);
      }
      return allowed;
    };
  }

  /** Full Control users do not see other users' containers (UCP define-roles.md). */
  async hasFullControl(collectionPath: string): Promise<boolean> {
    const known = this.fullControl.get(collectionPath);
    if (known !== undefined) return known;
    const ops = operationsOn(this.subject, { collectionPath }, await this.loadSnapshot());
    const full = CONTAINER_OPERATIONS.every((op) => ops.has(op));
    this.fullControl.set(collectionPath, full);
    return full;
  }
}

export interface Call {
  req: IncomingMessage;
  res: Response;
  caller: Caller;
  /** "/v1.41" or "". */
  prefix: string;
  /** The path without the version prefix, as sent (still percent-encoded). */
  path: string;
  /** "?..." or "". */
  search: string;
  signal: AbortSignal;
}

export const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > MAX_JSON_BODY) throw new DockerApiError(413, 'request body too large');
  let raw: Buffer;
  try {
    raw = await readAll(req, MAX_JSON_BODY);
  } catch {
    throw new DockerApiError(413, 'request body too large');
  }
  if (raw.length === 0) throw badRequest('a JSON object body is required');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw badRequest(`invalid JSON: ${(error as Error).message}`);
  }
  if (!isObject(parsed)) throw badRequest('the request body must be a JSON object');
  return parsed;
}

/** `filters` must be a JSON object (engines answer 500 to anything else; this is the caller's error). */
export function checkFilters(search: string): void {
  const raw = new URLSearchParams(search).get('filters');
  if (raw === null || raw === '') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw badRequest(`invalid filters: ${(error as Error).message}`);
  }
  if (!isObject(parsed)) throw badRequest('invalid filters: expected a JSON object');
}

export function denial(operation: string, collectionPath: string): string {
  return `access denied: no access to ${operation} on collection ${collectionPath}`;
}

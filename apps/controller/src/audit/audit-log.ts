// The audit log: one entry per state-changing request, written as a JSON line to the controller's
// log and kept in the store under /orca/v1/audit/ (newest first, the newest MAX_AUDIT_ENTRIES kept).
// Entries carry who, what, the decision and the status, never bodies, credentials or query secrets.
import { ApiError } from '@orca/api';
import type { Store } from '@orca/store';
import { randomBytes } from 'node:crypto';

export const AUDIT_PREFIX = '/orca/v1/audit/';
/** Retention: the newest this many entries stay in the store; older ones are trimmed. */
export const MAX_AUDIT_ENTRIES = 10_000;
/** Each controller trims after this many of its own writes. */
const TRIM_EVERY = 100;
const MAX_TIME = 9_999_999_999_999;

export interface AuditEntry {
  /** Sorts newest first; also the paging marker. */
  id: string;
  time: string;
  /** Account name, `node:<id>` for a node certificate, or `anonymous`. */
  subject: string;
  method: string;
  /** Path with the values of secret-looking query parameters replaced by `REDACTED`. */
  path: string;
  operation?: string;
  resource?: string;
  decision?: 'allow' | 'deny';
  reason?: string;
  status: number;
  /** success: status < 400; incomplete: no complete response (status 0). */
  outcome: 'success' | 'failure' | 'incomplete';
  durationMs: number;
  remoteAddress?: string;
}

const SECRET_PARAM = /pass|token|secret|key|auth|code|sig|cred|session/i;

/** The request path as it may be logged: secret-looking query values redacted, bounded length. */
export function auditPath(originalUrl: string): string {
  const q = originalUrl.indexOf('?');
  const path = q < 0 ? originalUrl : originalUrl.slice(0, q);
  let logged = path;
  if (q >= 0) {
    const parts = originalUrl
      .slice(q + 1)
      .split('&')
      .filter((p) => p !== '')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const name = eq < 0 ? pair : pair.slice(0, eq);
        let decoded = name;
        try {
          decoded = decodeURIComponent(name);
        } catch {
          // keep the raw name
        }
        return eq >= 0 && SECRET_PARAM.test(decoded) ? `${name}=REDACTED` : pair;
      });
    if (parts.length) logged = `${path}?${parts.join('&')}`;
  }
  return logged.length > 2048 ? `${logged.slice(0, 2048)}...` : logged;
}

export class AuditLog {
  private writes = 0;
  private trimming?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly line: (json: string) => void,
    private readonly warn: (message: string) => void,
  ) {}

  /** A new entry id: inverted milliseconds so a plain key range lists newest first. */
  static newId(now: number): string {
    return `${String(MAX_TIME - now).padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
  }

  /** Logs the line at once, then stores the entry; a store failure is logged, never thrown. */
  async record(entry: AuditEntry): Promise<void> {
    this.line(JSON.stringify({ audit: entry }));
    try {
      await this.store.put(`${AUDIT_PREFIX}${entry.id}`, JSON.stringify(entry));
      if (++this.writes % TRIM_EVERY === 0) await this.trim();
    } catch (error) {
      this.warn(`audit entry ${entry.id} not stored: ${(error as Error).message}`);
    }
  }

  /** Deletes everything older than the newest MAX_AUDIT_ENTRIES (one trim at a time per controller). */
  trim(max = MAX_AUDIT_ENTRIES): Promise<void> {
    this.trimming ??= (async () => {
      try {
        const { kvs } = await this.store.range(AUDIT_PREFIX, { keysOnly: true });
        const stale = kvs.slice(max);
        for (let i = 0; i < stale.length; i += 100) {
          await this.store.txn(
            [],
            stale.slice(i, i + 100).map((kv) => ({ type: 'delete' as const, key: kv.key })),
          );
        }
      } finally {
        this.trimming = undefined;
      }
    })();
    return this.trimming;
  }

  /** A page of entries, newest first; `start` is an entry id (inclusive), as eNZi pages. */
  async list(query: { start?: unknown; limit?: unknown }): Promise<{
    entries: AuditEntry[];
    nextPageStart: string;
    resourceCount: number;
  }> {
    const limit = query.limit === undefined || query.limit === '' ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ApiError(400, 'INVALID_REQUEST', 'limit must be an integer from 1 to 1000');
    if (
      query.start !== undefined &&
      (typeof query.start !== 'string' || !/^[0-9a-f-]{1,40}$/.test(query.start))
    )
      throw new ApiError(400, 'INVALID_REQUEST', 'start must be an entry id');
    const start = query.start ? `${AUDIT_PREFIX}${query.start}` : undefined;
    const [page, total] = await Promise.all([
      this.store.range(AUDIT_PREFIX, { startKey: start, limit: limit + 1 }),
      this.store.range(AUDIT_PREFIX, { keysOnly: true, limit: 1 }),
    ]);
    const entries = page.kvs.slice(0, limit).map((kv) => JSON.parse(kv.value) as AuditEntry);
    const next = page.kvs[limit];
    return {
      entries,
      nextPageStart: next ? next.key.slice(AUDIT_PREFIX.length) : '',
      resourceCount: total.count,
    };
  }
}

// Login sessions and the failed-login lockout. The session limits come from the `[auth.sessions]`
// table of the UCP configuration in the store, read on every use so a change applies at once on
// every controller; tokens are random UUIDs and are never logged.
import { ApiError } from '@orca/api';
import type { Store } from '@orca/store';
import { readUcpConfig } from '@orca/ucp-config';
import { randomUUID } from 'node:crypto';
import type { AccountRecord } from './accounts.js';

const MINUTE_MS = 60_000;
export interface SessionLimits {
  lifetimeMs: number;
  /** 0 disables renewal. */
  renewalThresholdMs: number;
  /** 0 means unlimited. */
  perUserLimit: number;
}

/** UCP 3.0's `[auth.sessions]` defaults (lifetime_minutes, renewal_threshold_minutes, per_user_limit). */
export const SESSION_LIMITS: Readonly<SessionLimits> = {
  lifetimeMs: 4320 * MINUTE_MS,
  renewalThresholdMs: 1440 * MINUTE_MS,
  perUserLimit: 5,
};

/** The session limits in force now: `[auth.sessions]` of the stored UCP configuration. */
export async function sessionLimits(store: Store): Promise<SessionLimits> {
  const { sessions } = (await readUcpConfig(store)).auth;
  return {
    lifetimeMs: sessions.lifetime_minutes * MINUTE_MS,
    renewalThresholdMs: sessions.renewal_threshold_minutes * MINUTE_MS,
    perUserLimit: sessions.per_user_limit,
  };
}

/** Failed logins for one account within the window lock it for lockMs (answered with 429). */
export const LOCKOUT = { maxFailures: 5, windowMs: 5 * MINUTE_MS, lockMs: 5 * MINUTE_MS } as const;

const SESSIONS_PREFIX = '/orca/v1/sessions/';
const sessionKey = (token: string) => `${SESSIONS_PREFIX}${token}`;
const failuresKey = (name: string) => `/orca/v1/loginfailures/${name}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface SessionRecord {
  token: string;
  accountId: string;
  name: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number;
}

interface FailureRecord {
  failures: number[];
  lockedUntil?: number;
}

export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    private readonly limits: () => Promise<SessionLimits> = () => sessionLimits(store),
  ) {}

  async create(account: AccountRecord): Promise<string> {
    const now = this.now();
    const limits = await this.limits();
    const record: SessionRecord = {
      token: randomUUID(),
      accountId: account.id,
      name: account.name,
      createdAt: now,
      expiresAt: now + limits.lifetimeMs,
      lastUsedAt: now,
    };
    await this.store.put(sessionKey(record.token), JSON.stringify(record));
    // Over the per-user limit (0: none), the least recently used sessions go (expired ones first).
    const mine = (await this.all()).filter((s) => s.name === account.name);
    const live = mine.filter((s) => s.expiresAt > now).sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    const over = limits.perUserLimit > 0 ? live.slice(limits.perUserLimit) : [];
    const drop = [...mine.filter((s) => s.expiresAt <= now), ...over];
    for (const s of drop) await this.store.delete(sessionKey(s.token));
    return record.token;
  }

  private async all(): Promise<SessionRecord[]> {
    const { kvs } = await this.store.range(SESSIONS_PREFIX);
    return kvs.map((kv) => JSON.parse(kv.value) as SessionRecord);
  }

  /** The live session for a token (renewed when close to expiry), or undefined. */
  async resolve(token: string): Promise<SessionRecord | undefined> {
    if (!UUID.test(token)) return undefined;
    const kv = await this.store.get(sessionKey(token));
    if (!kv) return undefined;
    const record = JSON.parse(kv.value) as SessionRecord;
    const now = this.now();
    if (record.expiresAt <= now) {
      await this.store.delete(sessionKey(token));
      return undefined;
    }
    // Within the renewal threshold of expiry, the session gets the current lifetime again; a
    // shortened lifetime also caps sessions made under a longer one.
    const limits = await this.limits();
    if (record.expiresAt - now < limits.renewalThresholdMs) record.expiresAt = now + limits.lifetimeMs;
    record.expiresAt = Math.min(record.expiresAt, now + limits.lifetimeMs);
    // lastUsedAt drives the LRU choice; a lost race here only makes it slightly stale.
    record.lastUsedAt = now;
    await this.store.txn(
      [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
      [{ type: 'put', key: kv.key, value: JSON.stringify(record) }],
    );
    return record;
  }

  async end(token: string): Promise<void> {
    if (UUID.test(token)) await this.store.delete(sessionKey(token));
  }

  async endAllFor(name: string): Promise<void> {
    for (const s of await this.all()) if (s.name === name) await this.store.delete(sessionKey(s.token));
  }

  /** Throws 429 while the account is locked out. */
  async checkLock(name: string): Promise<void> {
    const kv = await this.store.get(failuresKey(name));
    if (!kv) return;
    const record = JSON.parse(kv.value) as FailureRecord;
    const now = this.now();
    if (record.lockedUntil && record.lockedUntil > now) {
      const minutes = Math.ceil((record.lockedUntil - now) / MINUTE_MS);
      throw new ApiError(
        429,
        'ACCOUNT_LOCKED',
        `Account locked after too many failed login attempts; try again in ${minutes} minute(s).`,
      );
    }
  }

  /** Records a failed login; returns true when this failure locked the account. */
  async recordFailure(name: string): Promise<boolean> {
    const key = failuresKey(name);
    const now = this.now();
    const kv = await this.store.get(key);
    const record: FailureRecord = kv ? (JSON.parse(kv.value) as FailureRecord) : { failures: [] };
    record.failures = [...record.failures.filter((t) => t > now - LOCKOUT.windowMs), now];
    let locked = false;
    if (record.failures.length >= LOCKOUT.maxFailures) {
      record.lockedUntil = now + LOCKOUT.lockMs;
      record.failures = [];
      locked = true;
    }
    await this.store.put(key, JSON.stringify(record));
    return locked;
  }

  async clearFailures(name: string): Promise<void> {
    await this.store.delete(failuresKey(name));
  }
}

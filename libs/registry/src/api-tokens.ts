// DTR access tokens (/api/v0/api_tokens): a random token a user creates and then uses wherever
// DTR takes their password, `docker login` and HTTP Basic on /api/v0 included. Only the SHA-256 of
// a token is kept; the token itself is shown once, at creation.
import type { Store } from '@orca/store';
import { createHash, randomUUID } from 'node:crypto';

const ROOT = '/orca/v1/dtr/';
const keys = {
  token: (user: string, hashed: string) => `${ROOT}apitokens/${user}/${hashed}`,
  tokens: (user: string) => `${ROOT}apitokens/${user}/`,
  owner: (hashed: string) => `${ROOT}apitokenowners/${hashed}`,
};

/** Go's zero time: what DTR shows for a token never used. */
export const NEVER = '0001-01-01T00:00:00Z';
const HASHED = /^[0-9a-f]{64}$/;

export interface ApiTokenRecord {
  hashedToken: string;
  tokenLabel: string;
  isActive: boolean;
  lastUsed: string;
  createdAt: string;
  generatedBy: string;
  creatorUa: string;
  /** The account the token stands for. */
  accountName: string;
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export function apiTokenView(record: ApiTokenRecord) {
  const { accountName: _accountName, ...view } = record;
  return view;
}

export class ApiTokens {
  /** Last-used times are written at most this often per token. */
  private readonly touchEveryMs = 60_000;

  constructor(private readonly store: Store) {}

  async create(
    accountName: string,
    fields: { tokenLabel: string; generatedBy: string; creatorUa: string },
  ): Promise<{ token: string; record: ApiTokenRecord }> {
    const token = randomUUID();
    const record: ApiTokenRecord = {
      hashedToken: hashToken(token),
      tokenLabel: fields.tokenLabel,
      isActive: true,
      lastUsed: NEVER,
      createdAt: new Date().toISOString(),
      generatedBy: fields.generatedBy,
      creatorUa: fields.creatorUa,
      accountName,
    };
    await this.store.txn(
      [],
      [
        { type: 'put', key: keys.token(accountName, record.hashedToken), value: JSON.stringify(record) },
        { type: 'put', key: keys.owner(record.hashedToken), value: accountName },
      ],
    );
    return { token, record };
  }

  async list(accountName: string): Promise<ApiTokenRecord[]> {
    const { kvs } = await this.store.range(keys.tokens(accountName));
    return kvs
      .map((kv) => JSON.parse(kv.value) as ApiTokenRecord)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async get(hashedToken: string): Promise<ApiTokenRecord | undefined> {
    if (!HASHED.test(hashedToken)) return undefined;
    const owner = await this.store.get(keys.owner(hashedToken));
    const kv = owner ? await this.store.get(keys.token(owner.value, hashedToken)) : undefined;
    return kv ? (JSON.parse(kv.value) as ApiTokenRecord) : undefined;
  }

  async update(
    hashedToken: string,
    patch: { tokenLabel?: string; isActive?: boolean },
  ): Promise<ApiTokenRecord | undefined> {
    const record = await this.get(hashedToken);
    if (!record) return undefined;
    const next = { ...record, ...patch };
    await this.store.put(keys.token(record.accountName, hashedToken), JSON.stringify(next));
    return next;
  }

  async remove(hashedToken: string): Promise<boolean> {
    const record = await this.get(hashedToken);
    if (!record) return false;
    await this.store.txn(
      [],
      [
        { type: 'delete', key: keys.token(record.accountName, hashedToken) },
        { type: 'delete', key: keys.owner(hashedToken) },
      ],
    );
    return true;
  }

  /** The account name a presented token stands for, when it is an active token of that account. */
  async resolve(accountName: string, token: string): Promise<ApiTokenRecord | undefined> {
    const record = await this.get(hashToken(token));
    if (!record || !record.isActive || record.accountName !== accountName) return undefined;
    const now = Date.now();
    if (record.lastUsed === NEVER || now - Date.parse(record.lastUsed) > this.touchEveryMs) {
      const touched = { ...record, lastUsed: new Date(now).toISOString() };
      await this.store
        .put(keys.token(accountName, record.hashedToken), JSON.stringify(touched))
        .catch(() => undefined);
    }
    return record;
  }
}

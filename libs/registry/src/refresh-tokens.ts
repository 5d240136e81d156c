// Refresh tokens of the registry token service (distribution docs/spec/auth/oauth.md and token.md
// `offline_token`): `docker login` asks for one with grant_type=password&access_type=offline and
// keeps it instead of the password; later it trades it for short-lived access tokens with
// grant_type=refresh_token. A refresh token is opaque to clients, stands for one account and one
// service, and is stored only as its SHA-256. It works while the account exists and is active;
// each account keeps at most MAX_PER_ACCOUNT, the oldest dropped first.
import type { Principal } from '@orca/api';
import { getAccount } from '@orca/identity';
import type { Store } from '@orca/store';
import { createHash, randomBytes } from 'node:crypto';

const ROOT = '/orca/v1/dtr/';
const keys = {
  token: (account: string, hashed: string) => `${ROOT}refreshtokens/${account}/${hashed}`,
  tokens: (account: string) => `${ROOT}refreshtokens/${account}/`,
};

/** Refresh tokens live this long (a `docker login` lasts as long in DTR's clients). */
export const REFRESH_TOKEN_TTL_MS = 30 * 24 * 3600 * 1000;
export const MAX_PER_ACCOUNT = 50;

interface RefreshTokenRecord {
  accountId: string;
  service: string;
  clientId: string;
  createdAt: number;
  expiresAt: number;
}

const hashOf = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

export class RefreshTokens {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new refresh token for `principal` at `service`. Format: base64url(account name) "." secret. */
  async issue(principal: Principal, service: string, clientId: string): Promise<string> {
    const secret = randomBytes(32).toString('base64url');
    const record: RefreshTokenRecord = {
      accountId: principal.id,
      service,
      clientId: clientId.slice(0, 128),
      createdAt: this.now(),
      expiresAt: this.now() + REFRESH_TOKEN_TTL_MS,
    };
    await this.store.put(keys.token(principal.name, hashOf(secret)), JSON.stringify(record));
    await this.prune(principal.name);
    return `${Buffer.from(principal.name, 'utf8').toString('base64url')}.${secret}`;
  }

  /** The account a refresh token stands for at `service`; undefined when it is unknown, expired,
   *  issued for another service, or its account is gone, inactive or was recreated. */
  async principal(token: string, service: string): Promise<Principal | undefined> {
    const match = /^([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match) return undefined;
    const name = Buffer.from(match[1]!, 'base64url').toString('utf8');
    if (!/^[A-Za-z0-9._@-]{1,255}$/.test(name)) return undefined;
    const kv = await this.store.get(keys.token(name, hashOf(match[2]!)));
    if (!kv) return undefined;
    const record = JSON.parse(kv.value) as RefreshTokenRecord;
    if (record.expiresAt <= this.now() || record.service !== service) return undefined;
    const account = await getAccount(this.store, name);
    if (!account || account.isOrg || !account.isActive || account.id !== record.accountId) return undefined;
    return { id: account.id, name: account.name, isAdmin: account.isAdmin, via: 'token' };
  }

  /** Drops expired tokens and all but the newest MAX_PER_ACCOUNT of an account. */
  private async prune(account: string): Promise<void> {
    const { kvs } = await this.store.range(keys.tokens(account));
    const records = kvs
      .map((kv) => ({ key: kv.key, record: JSON.parse(kv.value) as RefreshTokenRecord }))
      .sort((a, b) => b.record.createdAt - a.record.createdAt);
    const stale = records.filter((r, i) => i >= MAX_PER_ACCOUNT || r.record.expiresAt <= this.now());
    if (stale.length > 0)
      await this.store.txn(
        [],
        stale.map((r) => ({ type: 'delete' as const, key: r.key })),
      );
  }
}

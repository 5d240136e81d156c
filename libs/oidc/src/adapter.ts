// oidc-provider's storage adapter on orca's store, so every controller serves the same sessions,
// codes, tokens and grants (managers stay stateless). Expiry is kept in each record and checked on
// read; `sweepExpired` deletes what has expired (idempotent, safe to run on every controller).
import type { Store } from '@orca/store';

export const OIDC_PREFIX = '/orca/v1/oidc/';

/** Models whose records belong to a grant and go when the grant is revoked. */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/** oidc-provider ids are nanoids; anything else never reaches a key. */
const SAFE_ID = /^[A-Za-z0-9._~-]{1,200}$/;

interface Stored {
  payload: Record<string, unknown>;
  /** Epoch milliseconds; null for records that do not expire (clients). */
  expiresAt: number | null;
}

export const oidcKeys = {
  record: (model: string, id: string) => `${OIDC_PREFIX}m/${model}/${id}`,
  models: () => `${OIDC_PREFIX}m/`,
  uid: (uid: string) => `${OIDC_PREFIX}uid/${uid}`,
  userCode: (code: string) => `${OIDC_PREFIX}usercode/${code}`,
  grantMember: (grantId: string, model: string, id: string) =>
    `${OIDC_PREFIX}grant/${grantId}/${model}/${id}`,
  grantMembers: (grantId: string) => `${OIDC_PREFIX}grant/${grantId}/`,
};

export class StoreAdapter {
  constructor(
    private readonly store: Store,
    private readonly model: string,
    private readonly now: () => number = Date.now,
  ) {}

  private async read(id: string): Promise<Stored | undefined> {
    if (!SAFE_ID.test(id)) return undefined;
    const kv = await this.store.get(oidcKeys.record(this.model, id));
    if (!kv) return undefined;
    const stored = JSON.parse(kv.value) as Stored;
    if (stored.expiresAt !== null && stored.expiresAt <= this.now()) return undefined;
    return stored;
  }

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    if (!SAFE_ID.test(id)) throw new Error(`unsafe ${this.model} id`);
    const expiresAt = typeof expiresIn === 'number' ? this.now() + expiresIn * 1000 : null;
    const ops: { type: 'put'; key: string; value: string }[] = [
      { type: 'put', key: oidcKeys.record(this.model, id), value: JSON.stringify({ payload, expiresAt }) },
    ];
    if (this.model === 'Session' && typeof payload.uid === 'string' && SAFE_ID.test(payload.uid))
      ops.push({ type: 'put', key: oidcKeys.uid(payload.uid), value: id });
    if (typeof payload.userCode === 'string' && SAFE_ID.test(payload.userCode))
      ops.push({ type: 'put', key: oidcKeys.userCode(payload.userCode), value: id });
    if (GRANTABLE.has(this.model) && typeof payload.grantId === 'string' && SAFE_ID.test(payload.grantId))
      ops.push({ type: 'put', key: oidcKeys.grantMember(payload.grantId, this.model, id), value: '' });
    await this.store.txn([], ops);
  }

  async find(id: string): Promise<Record<string, unknown> | undefined> {
    return (await this.read(id))?.payload;
  }

  async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    if (!SAFE_ID.test(uid)) return undefined;
    const id = await this.store.get(oidcKeys.uid(uid));
    return id ? this.find(id.value) : undefined;
  }

  async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
    if (!SAFE_ID.test(userCode)) return undefined;
    const id = await this.store.get(oidcKeys.userCode(userCode));
    return id ? this.find(id.value) : undefined;
  }

  async consume(id: string): Promise<void> {
    const stored = await this.read(id);
    if (!stored) return;
    stored.payload.consumed = Math.floor(this.now() / 1000);
    await this.store.put(oidcKeys.record(this.model, id), JSON.stringify(stored));
  }

  async destroy(id: string): Promise<void> {
    if (!SAFE_ID.test(id)) return;
    const kv = await this.store.get(oidcKeys.record(this.model, id));
    if (kv) await removeRecord(this.store, this.model, id, (JSON.parse(kv.value) as Stored).payload);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    if (!SAFE_ID.test(grantId)) return;
    const { kvs } = await this.store.range(oidcKeys.grantMembers(grantId), { keysOnly: true });
    for (const kv of kvs) {
      const [model, id] = kv.key.slice(oidcKeys.grantMembers(grantId).length).split('/');
      await this.store.delete(oidcKeys.record(model, id));
      await this.store.delete(kv.key);
    }
  }
}

/** Deletes expired records and the indexes that point at them; returns how many records went. */
export async function sweepExpired(store: Store, now: number = Date.now()): Promise<number> {
  const { kvs } = await store.range(oidcKeys.models());
  let removed = 0;
  for (const kv of kvs) {
    const stored = JSON.parse(kv.value) as Stored;
    if (stored.expiresAt === null || stored.expiresAt > now) continue;
    const [model, id] = kv.key.slice(oidcKeys.models().length).split('/');
    await removeRecord(store, model, id, stored.payload);
    removed++;
  }
  return removed;
}

async function removeRecord(
  store: Store,
  model: string,
  id: string,
  payload: Record<string, unknown>,
): Promise<void> {
  const ops = [{ type: 'delete' as const, key: oidcKeys.record(model, id) }];
  const { uid, userCode, grantId } = payload;
  if (model === 'Session' && typeof uid === 'string' && SAFE_ID.test(uid))
    ops.push({ type: 'delete', key: oidcKeys.uid(uid) });
  if (typeof userCode === 'string' && SAFE_ID.test(userCode))
    ops.push({ type: 'delete', key: oidcKeys.userCode(userCode) });
  if (GRANTABLE.has(model) && typeof grantId === 'string' && SAFE_ID.test(grantId))
    ops.push({ type: 'delete', key: oidcKeys.grantMember(grantId, model, id) });
  await store.txn([], ops);
}

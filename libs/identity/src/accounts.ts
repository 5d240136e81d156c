// eNZi accounts as UCP stores them (responses.Account in the UCP spec). Issue 3 builds the full
// accounts API on this; the control-plane core needs the admin to exist from the first start.
import { randomUUID } from 'node:crypto';
import type { Store } from '@orca/store';
import { generatePassword, hashPassword } from './passwords.js';

export interface AccountRecord {
  id: string;
  name: string;
  fullName: string;
  isOrg: boolean;
  isAdmin: boolean;
  isActive: boolean;
  isImported: boolean;
  passwordHash?: string;
  createdAt: string;
}

export const ACCOUNTS_PREFIX = '/orca/v1/accounts/';
export const accountKey = (name: string): string => `${ACCOUNTS_PREFIX}${name}`;

export async function getAccount(store: Store, name: string): Promise<AccountRecord | undefined> {
  const kv = await store.get(accountKey(name));
  return kv ? (JSON.parse(kv.value) as AccountRecord) : undefined;
}

/**
 * Creates the admin account on first start. Returns the generated password when none was given,
 * so the caller can print it once; undefined when the admin already existed or the password was given.
 */
export async function ensureAdmin(
  store: Store,
  password?: string,
): Promise<{ created: boolean; generatedPassword?: string }> {
  if (await getAccount(store, 'admin')) return { created: false };
  const generated = password ? undefined : generatePassword();
  const record: AccountRecord = {
    id: randomUUID(),
    name: 'admin',
    fullName: 'Administrator',
    isOrg: false,
    isAdmin: true,
    isActive: true,
    isImported: false,
    passwordHash: await hashPassword(password ?? (generated as string)),
    createdAt: new Date().toISOString(),
  };
  // Create-if-absent so two managers starting together cannot both create an admin.
  const result = await store.txn(
    [{ key: accountKey('admin'), target: 'createRevision', op: '=', value: 0 }],
    [{ type: 'put', key: accountKey('admin'), value: JSON.stringify(record) }],
  );
  if (!result.succeeded) return { created: false };
  return { created: true, generatedPassword: generated };
}

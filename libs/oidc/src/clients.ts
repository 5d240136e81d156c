// Registered OpenID Connect clients, kept in the store where oidc-provider's Client model finds
// them. Client secrets are sealed with the key-encryption key at rest and opened when loaded.
import { ApiError } from '@orca/api';
import { openSecret, sealSecret, type Kek } from '@orca/pki';
import type { Store } from '@orca/store';
import { oidcKeys, OIDC_PREFIX } from './adapter.js';

export const CLIENT_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** The client kubectl (kubelogin and similar) uses: public, PKCE, loopback redirects on any port. */
export const KUBERNETES_CLIENT: ClientMetadata = {
  client_id: 'kubernetes',
  client_name: 'Kubernetes',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://localhost:8000', 'http://localhost:18000', 'http://127.0.0.1/callback'],
};

export type ClientMetadata = Record<string, unknown> & { client_id: string };

interface StoredClient {
  payload: ClientMetadata;
  expiresAt: null;
}

/** Opens a stored client record's sealed secret (the Client model's adapter reads through this). */
export function openClient(payload: Record<string, unknown>, kek: Kek): Record<string, unknown> {
  const sealed = payload.client_secret_sealed;
  if (typeof sealed !== 'string') return payload;
  const { client_secret_sealed: _sealed, ...rest } = payload;
  return { ...rest, client_secret: openSecret(sealed, kek) };
}

export class OidcClients {
  constructor(
    private readonly store: Store,
    private readonly kek: Kek,
  ) {}

  /** Stores (creates or replaces) a client; metadata must already be valid for the provider. */
  async put(metadata: ClientMetadata): Promise<void> {
    if (!CLIENT_ID.test(metadata.client_id))
      throw new ApiError(400, 'INVALID_CLIENT_ID', 'client_id must be 1-100 of [A-Za-z0-9._-]');
    const { client_secret: secret, ...rest } = metadata;
    const payload: ClientMetadata =
      typeof secret === 'string' ? { ...rest, client_secret_sealed: sealSecret(secret, this.kek) } : rest;
    await this.store.put(
      oidcKeys.record('Client', metadata.client_id),
      JSON.stringify({ payload, expiresAt: null } satisfies StoredClient),
    );
  }

  /** Creates the client only when no client with its id exists (first start). */
  async ensure(metadata: ClientMetadata): Promise<void> {
    const key = oidcKeys.record('Client', metadata.client_id);
    await this.store.txn(
      [{ key, target: 'createRevision', op: '=', value: 0 }],
      [
        {
          type: 'put',
          key,
          value: JSON.stringify({ payload: metadata, expiresAt: null } satisfies StoredClient),
        },
      ],
    );
  }

  /** Client metadata without its secret. */
  async get(clientId: string): Promise<ClientMetadata | undefined> {
    if (!CLIENT_ID.test(clientId)) return undefined;
    const kv = await this.store.get(oidcKeys.record('Client', clientId));
    if (!kv) return undefined;
    const { client_secret_sealed: _sealed, ...rest } = (JSON.parse(kv.value) as StoredClient).payload;
    return rest as ClientMetadata;
  }

  async list(): Promise<ClientMetadata[]> {
    const prefix = `${OIDC_PREFIX}m/Client/`;
    const { kvs } = await this.store.range(prefix);
    return kvs.map((kv) => {
      const { client_secret_sealed: _sealed, ...rest } = (JSON.parse(kv.value) as StoredClient).payload;
      return rest as ClientMetadata;
    });
  }

  async remove(clientId: string): Promise<boolean> {
    if (!CLIENT_ID.test(clientId)) return false;
    return (await this.store.delete(oidcKeys.record('Client', clientId))).deleted > 0;
  }
}

// One request handler for a DTR replica: /v2/ (the registry), /auth/token (garant) and /api/v0.
import type { Authenticator } from '@orca/identity';
import type { Kek } from '@orca/pki';
import type { Store } from '@orca/store';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { RepositoryAccessResolver } from './access.js';
import { ApiTokens } from './api-tokens.js';
import { ApiV0Handler } from './api-v0.js';
import { FsBlobStore, type BlobStore } from './blob-store.js';
import { DtrCredentials } from './credentials.js';
import { createRegistryAutomation, type RegistryAutomation } from './events-wiring.js';
import { rawPath, sendJson } from './http.js';
import { TokenSigner } from './jwt.js';
import { RegistryMetadata } from './metadata.js';
import { RegistryHandler } from './registry.js';
import { TokenService } from './token.js';
import { JobsApi } from './jobs-api.js';
import { JobRunner, JobStore } from './jobs.js';
import { RefreshTokens } from './refresh-tokens.js';

export interface DtrHandlerOptions {
  store: Store;
  authenticator: Authenticator;
  /** Seals the token signing keys in the store. */
  kek: Kek;
  /** Where blobs live (FsBlobStore) unless `blobs` is given. */
  dataDir: string;
  blobs?: BlobStore;
  /** host[:port] clients reach this DTR at: the token realm and service. */
  dtrHost: string;
  tokenTtlSeconds?: number;
  signingKeyRotateAfterMs?: number;
  /** First webhook retry delay (doubles per attempt); tests shorten it. */
  webhookBackoffBaseMs?: number;
  /** Benchmarks only: the registry serves /v2/ without token auth (RegistryOptions.authDisabled). */
  registryAuthDisabled?: boolean;
  /** This replica's job worker id (SW25 Job.workerID); random when absent. */
  workerId?: string;
  log?: { error(message: string): void };
}

export const DEFAULT_TOKEN_TTL_SECONDS = 300;
export const DEFAULT_SIGNING_KEY_ROTATION_MS = 24 * 3600 * 1000;

export interface DtrHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  metadata: RegistryMetadata;
  signer: TokenSigner;
  access: RepositoryAccessResolver;
  /** Events, webhooks and promotion policies; stop() before closing the store. */
  automation: RegistryAutomation;
  /** Claims and runs /api/v0/jobs; stop() before closing the store. */
  jobRunner: JobRunner;
}

export async function createDtrHandler(options: DtrHandlerOptions): Promise<DtrHandler> {
  const metadata = new RegistryMetadata(options.store);
  const blobs = options.blobs ?? (await new FsBlobStore(join(options.dataDir, 'registry')).init());
  const directory = options.authenticator.directory;
  const access = new RepositoryAccessResolver(directory, metadata);
  const signer = new TokenSigner(options.store, options.kek, {
    issuer: options.dtrHost,
    ttlSeconds: options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
    rotateAfterMs: options.signingKeyRotateAfterMs ?? DEFAULT_SIGNING_KEY_ROTATION_MS,
  });
  await signer.currentKey();
  const service = options.dtrHost;
  const apiTokens = new ApiTokens(options.store);
  const credentials = new DtrCredentials(options.store, options.authenticator, apiTokens);
  const automation = createRegistryAutomation({
    store: options.store,
    metadata,
    blobs,
    access,
    credentials,
    dtrHost: options.dtrHost,
    kek: options.kek,
    webhookBackoffBaseMs: options.webhookBackoffBaseMs,
    log: options.log,
  });
  const registry = new RegistryHandler({
    events: automation.events,
    metadata,
    blobs,
    signer,
    access,
    realm: `https://${options.dtrHost}/auth/token`,
    authDisabled: options.registryAuthDisabled === true,
    service,
    log: options.log,
  });
  const tokens = new TokenService({
    signer,
    access,
    credentials,
    refreshTokens: new RefreshTokens(options.store),
    service,
  });
  const jobs = new JobStore(options.store);
  const jobRunner = new JobRunner({
    store: options.store,
    jobs,
    blobs,
    workerId: options.workerId ?? randomUUID(),
    log: options.log,
  });
  jobRunner.start();
  const jobsApi = new JobsApi({ jobs, credentials, onCreate: () => jobRunner.wake() });
  const api = new ApiV0Handler({
    metadata,
    blobs,
    credentials,
    apiTokens,
    access,
    directory,
    dtrHost: options.dtrHost,
    log: options.log,
    events: automation.events,
    extensions: [...automation.extensions, jobsApi],
  });
  const fail = (res: ServerResponse, error: unknown) => {
    options.log?.error(`dtr: ${(error as Error).stack}`);
    if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: 'internal error' }] });
    else res.destroy();
  };
  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    const path = rawPath(req);
    let work: Promise<void>;
    if (path === '/v2' || path.startsWith('/v2/')) work = registry.handle(req, res);
    else if (path === '/auth/token') work = tokens.handle(req, res);
    else if (path.startsWith('/api/v0/')) work = api.handle(req, res);
    else if (path === '/_ping' || path === '/health')
      work = Promise.resolve(sendJson(res, 200, { healthy: true, error: '' }));
    else
      work = Promise.resolve(
        sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] }),
      );
    work.catch((error: unknown) => fail(res, error));
  }) as DtrHandler;
  handler.metadata = metadata;
  handler.signer = signer;
  handler.access = access;
  handler.automation = automation;
  handler.jobRunner = jobRunner;
  return handler;
}

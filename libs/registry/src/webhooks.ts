// DTR 2.5 webhooks (reference §1.6): subscriptions in the store, one delivery record per
// (event, webhook) with its attempt history, and a queue key per pending delivery. Any replica may
// run the dispatcher: a delivery is claimed with a compare-and-swap on its queue key's revision
// (claim expires, so a replica that dies mid-delivery hands it back). A failed POST is retried
// with exponential backoff up to MAX_ATTEMPTS; the push that caused the event never waits.
import { ApiError } from '@orca/api';
import type { Store, TxnOp } from '@orca/store';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RepeatingTask } from './repeating-task.js';
import { eventPayload, isWebhookEventType, type RegistryEvent, type WebhookEventType } from './events.js';

const ROOT = '/orca/v1/dtr/';
export const webhookKeys = {
  webhook: (id: string) => `${ROOT}webhooks/${id}`,
  webhooks: () => `${ROOT}webhooks/`,
  delivery: (id: string) => `${ROOT}webhookdeliveries/${id}`,
  deliveries: () => `${ROOT}webhookdeliveries/`,
  queued: (id: string) => `${ROOT}webhookqueue/${id}`,
  queue: () => `${ROOT}webhookqueue/`,
};

/** Attempts per delivery: the first POST and up to 5 retries. */
export const MAX_ATTEMPTS = 6;
export const DEFAULT_BACKOFF_BASE_MS = 1000;
export const MAX_BACKOFF_MS = 5 * 60 * 1000;
const DELIVERY_TIMEOUT_MS = 10_000;
/** Finished deliveries (delivered or failed) kept per webhook; older ones are pruned when a newer
 *  one finishes, so the history stays bounded however many events a webhook sees. */
export const DEFAULT_DELIVERY_HISTORY = 100;
/** A claim longer than a delivery can take (timeout + slack). */
const CLAIM_MS = 30_000;
const MAX_RESPONSE_EXCERPT = 512;

export interface WebhookRecord {
  id: string;
  type: WebhookEventType;
  /** "ns/repo", "ns", or "" (global; admins only). */
  key: string;
  endpoint: string;
  authorID: string;
  createdAt: string;
  inactive: boolean;
  lastSuccessfulAt: string;
  tlsCert: string;
  skipTLSVerification: boolean;
}

export interface DeliveryAttempt {
  at: string;
  /** HTTP status; absent when the request failed before an answer. */
  status?: number;
  error?: string;
}

export interface DeliveryRecord {
  id: string;
  webhookId: string;
  type: WebhookEventType;
  createdAt: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: DeliveryAttempt[];
  payload: ReturnType<typeof eventPayload>;
}

interface QueueEntry {
  nextAttemptAt: number;
  claimedBy?: string;
  claimUntil?: number;
}

/** Delay before retry number `attempt` (1 = after the first failure): base·2^(attempt-1), capped. */
export function backoffDelay(attempt: number, baseMs = DEFAULT_BACKOFF_BASE_MS): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
}

/** The webhooks an event goes to: same type, active, and a key naming its repository, its
 *  namespace, or nothing (global). */
export function webhookMatches(webhook: WebhookRecord, event: RegistryEvent): boolean {
  if (webhook.inactive || webhook.type !== event.type) return false;
  if (webhook.key === '') return true;
  if (webhook.key === event.repository) return true;
  return !webhook.key.includes('/') && event.repository.startsWith(`${webhook.key}/`);
}

/** The public view (responses.Webhook plus the TLS fields DTR returns, use-the-api.md). */
export function webhookView(w: WebhookRecord) {
  return {
    id: w.id,
    type: w.type,
    key: w.key,
    endpoint: w.endpoint,
    authorID: w.authorID,
    createdAt: w.createdAt,
    lastSuccessfulAt: w.lastSuccessfulAt,
    inactive: w.inactive,
    tlsCert: w.tlsCert,
    skipTLSVerification: w.skipTLSVerification,
  };
}

/** An http(s) URL with a host, or a 400. */
export function checkEndpoint(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'endpoint must be a non-empty string');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ApiError(400, 'INVALID_PARAMETERS', 'endpoint must be an http or https URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'endpoint must be an http or https URL');
  if (url.username || url.password)
    throw new ApiError(400, 'INVALID_PARAMETERS', 'endpoint must not carry credentials');
  return raw;
}

/** A sample event of `type`, the fixed payload /api/v0/webhooks/test sends. */
export function samplePayload(type: WebhookEventType, host: string): ReturnType<typeof eventPayload> {
  const at = new Date().toISOString();
  const image = { namespace: 'foo', repository: 'bar' };
  const digest = `sha256:${'0'.repeat(64)}`;
  const contents: Record<WebhookEventType, Record<string, unknown>> = {
    TAG_PUSH: {
      ...image,
      tag: 'latest',
      digest,
      imageName: `${host}/foo/bar:latest`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      pushedAt: at,
    },
    TAG_DELETE: {
      ...image,
      tag: 'latest',
      digest,
      imageName: `${host}/foo/bar:latest`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      deletedAt: at,
    },
    MANIFEST_PUSH: {
      ...image,
      digest,
      imageName: `${host}/foo/bar@${digest}`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
    },
    MANIFEST_DELETE: {
      ...image,
      digest,
      imageName: `${host}/foo/bar@${digest}`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      deletedAt: at,
    },
    PROMOTION: {
      ...image,
      tag: 'latest',
      digest,
      imageName: `${host}/foo/bar:latest`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      promotedAt: at,
      sourceRepository: 'foo/src',
      sourceTag: 'latest',
    },
    PUSH_MIRRORING: {
      ...image,
      tag: 'latest',
      digest,
      imageName: `${host}/foo/bar:latest`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      remoteImageName: 'remote.example/foo/bar:latest',
      mirroredAt: at,
    },
    POLL_MIRRORING: {
      ...image,
      tag: 'latest',
      digest,
      imageName: `${host}/foo/bar:latest`,
      os: 'linux',
      architecture: 'amd64',
      author: '',
      remoteImageName: 'remote.example/foo/bar:latest',
      mirroredAt: at,
    },
    REPO_EVENT: { ...image, event: 'REPO_CREATED', author: '', data: {} },
    SCAN_COMPLETED: {
      ...image,
      tag: 'latest',
      imageName: `${host}/foo/bar:latest`,
      scanSummary: {
        ...image,
        tag: 'latest',
        critical: 0,
        major: 0,
        minor: 0,
        last_scan_status: 6,
        check_completed_at: at,
      },
    },
    SCAN_FAILED: {
      ...image,
      tag: 'latest',
      imageName: `${host}/foo/bar:latest`,
      error: 'sample scan failure',
    },
    SCANNER_UPDATE_COMPLETED: {
      scanner_version: '',
      scanner_updated_at: at,
      db_version: 0,
      db_updated_at: at,
      success: true,
      replicas: {},
    },
  };
  return { type, createdAt: at, contents: contents[type] };
}

/** One POST of a payload; the outcome as an attempt record. */
export async function postPayload(
  webhook: Pick<WebhookRecord, 'endpoint' | 'tlsCert' | 'skipTLSVerification'>,
  payload: unknown,
): Promise<DeliveryAttempt> {
  const at = new Date().toISOString();
  const body = Buffer.from(JSON.stringify(payload));
  const url = new URL(webhook.endpoint);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<DeliveryAttempt>((resolve) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': body.length,
          'User-Agent': 'orca-dtr-webhook',
        },
        timeout: DELIVERY_TIMEOUT_MS,
        agent: false,
        ...(url.protocol === 'https:'
          ? {
              rejectUnauthorized: !webhook.skipTLSVerification,
              ...(webhook.tlsCert ? { ca: webhook.tlsCert } : {}),
            }
          : {}),
      },
      (res) => {
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > MAX_RESPONSE_EXCERPT * 1024) res.destroy();
        });
        res.on('close', () => resolve({ at, status: res.statusCode ?? 0 }));
        res.on('error', () => resolve({ at, status: res.statusCode ?? 0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve({ at, error: error.message.slice(0, MAX_RESPONSE_EXCERPT) }));
    req.end(body);
  });
}

const succeeded = (a: DeliveryAttempt) => a.status !== undefined && a.status >= 200 && a.status < 300;

export class WebhookStore {
  constructor(private readonly store: Store) {}

  async get(id: string): Promise<WebhookRecord | undefined> {
    if (!/^[0-9a-f]{1,128}$/.test(id)) return undefined;
    const kv = await this.store.get(webhookKeys.webhook(id));
    return kv ? (JSON.parse(kv.value) as WebhookRecord) : undefined;
  }

  async list(): Promise<WebhookRecord[]> {
    const { kvs } = await this.store.range(webhookKeys.webhooks());
    return kvs
      .map((kv) => JSON.parse(kv.value) as WebhookRecord)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async create(
    fields: Omit<WebhookRecord, 'id' | 'createdAt' | 'inactive' | 'lastSuccessfulAt'>,
  ): Promise<WebhookRecord> {
    const record: WebhookRecord = {
      ...fields,
      id: randomBytes(32).toString('hex'),
      createdAt: new Date().toISOString(),
      inactive: false,
      lastSuccessfulAt: '0001-01-01T00:00:00Z',
    };
    await this.store.put(webhookKeys.webhook(record.id), JSON.stringify(record));
    return record;
  }

  async update(
    id: string,
    patch: Partial<Pick<WebhookRecord, 'inactive' | 'lastSuccessfulAt'>>,
  ): Promise<WebhookRecord | undefined> {
    for (;;) {
      const kv = await this.store.get(webhookKeys.webhook(id));
      if (!kv) return undefined;
      const next = { ...(JSON.parse(kv.value) as WebhookRecord), ...patch };
      const txn = await this.store.txn(
        [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: kv.key, value: JSON.stringify(next) }],
      );
      if (txn.succeeded) return next;
    }
  }

  async delete(id: string): Promise<boolean> {
    if (!/^[0-9a-f]{1,128}$/.test(id)) return false;
    return (await this.store.delete(webhookKeys.webhook(id))).deleted > 0;
  }

  /** One pending delivery per matching webhook, written with its queue key in one transaction. */
  async enqueue(event: RegistryEvent): Promise<DeliveryRecord[]> {
    const hooks = (await this.list()).filter((w) => webhookMatches(w, event));
    const created: DeliveryRecord[] = [];
    for (const hook of hooks) {
      const delivery: DeliveryRecord = {
        id: randomUUID(),
        webhookId: hook.id,
        type: event.type,
        createdAt: new Date().toISOString(),
        state: 'pending',
        attempts: [],
        payload: eventPayload(event),
      };
      const queued: QueueEntry = { nextAttemptAt: Date.now() };
      await this.store.txn(
        [],
        [
          { type: 'put', key: webhookKeys.delivery(delivery.id), value: JSON.stringify(delivery) },
          { type: 'put', key: webhookKeys.queued(delivery.id), value: JSON.stringify(queued) },
        ],
      );
      created.push(delivery);
    }
    return created;
  }

  async deliveries(webhookId: string): Promise<DeliveryRecord[]> {
    const { kvs } = await this.store.range(webhookKeys.deliveries());
    return kvs
      .map((kv) => JSON.parse(kv.value) as DeliveryRecord)
      .filter((d) => d.webhookId === webhookId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Deletes all but the newest `keep` finished deliveries of a webhook (pending ones stay);
   *  returns how many were removed. */
  async pruneDeliveries(webhookId: string, keep: number): Promise<number> {
    const finished = (await this.deliveries(webhookId)).filter((d) => d.state !== 'pending');
    const excess = finished.slice(0, Math.max(0, finished.length - keep));
    for (const d of excess) await this.store.delete(webhookKeys.delivery(d.id));
    return excess.length;
  }

  async removeDeliveries(webhookId: string): Promise<void> {
    for (const d of await this.deliveries(webhookId)) {
      await this.store.delete(webhookKeys.queued(d.id));
      await this.store.delete(webhookKeys.delivery(d.id));
    }
  }
}

export interface WebhookDispatcherOptions {
  store: Store;
  webhooks: WebhookStore;
  /** Distinguishes this replica's claims. */
  replicaId?: string;
  backoffBaseMs?: number;
  pollIntervalMs?: number;
  /** Finished deliveries kept per webhook (DEFAULT_DELIVERY_HISTORY). */
  deliveryHistory?: number;
  log?: { error(message: string): void };
}

/** Works the delivery queue; safe to run on every replica at once. */
export class WebhookDispatcher {
  private readonly replicaId: string;
  private readonly task: RepeatingTask;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.replicaId = options.replicaId ?? randomUUID();
    this.task = new RepeatingTask(
      'webhook dispatcher',
      () => this.runOnce(),
      () => options.pollIntervalMs ?? 500,
      options.log,
    );
  }

  start(): void {
    this.task.start();
  }

  /** Work the queue now (after an enqueue on this replica). */
  nudge(): void {
    this.task.nudge();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One pass over the due deliveries; returns how many were attempted. */
  async runOnce(): Promise<number> {
    const { store } = this.options;
    const { kvs } = await store.range(webhookKeys.queue());
    let attempted = 0;
    for (const kv of kvs) {
      if (this.task.isStopping) break;
      const entry = JSON.parse(kv.value) as QueueEntry;
      const now = Date.now();
      if (entry.nextAttemptAt > now) continue;
      if (entry.claimedBy && (entry.claimUntil ?? 0) > now) continue;
      const claim: QueueEntry = { ...entry, claimedBy: this.replicaId, claimUntil: now + CLAIM_MS };
      const won = await store.txn(
        [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: kv.key, value: JSON.stringify(claim) }],
      );
      if (!won.succeeded) continue;
      attempted++;
      await this.attempt(kv.key.slice(webhookKeys.queue().length));
    }
    return attempted;
  }

  private async attempt(id: string): Promise<void> {
    const { store, webhooks } = this.options;
    const kv = await store.get(webhookKeys.delivery(id));
    const delivery = kv ? (JSON.parse(kv.value) as DeliveryRecord) : undefined;
    const hook = delivery ? await webhooks.get(delivery.webhookId) : undefined;
    if (!delivery || !hook) {
      // The webhook was deleted: its deliveries go with it.
      await store.delete(webhookKeys.queued(id));
      return;
    }
    const result = await postPayload(hook, delivery.payload);
    delivery.attempts.push(result);
    const ok = succeeded(result);
    if (ok) delivery.state = 'delivered';
    else if (delivery.attempts.length >= MAX_ATTEMPTS) delivery.state = 'failed';
    // The attempt, and the next one (or the end of the queue entry), are recorded together.
    const ops: TxnOp[] = [{ type: 'put', key: webhookKeys.delivery(id), value: JSON.stringify(delivery) }];
    if (delivery.state === 'pending') {
      const next: QueueEntry = {
        nextAttemptAt: Date.now() + backoffDelay(delivery.attempts.length, this.options.backoffBaseMs),
      };
      ops.push({ type: 'put', key: webhookKeys.queued(id), value: JSON.stringify(next) });
    } else ops.push({ type: 'delete', key: webhookKeys.queued(id) });
    await store.txn([], ops);
    if (ok) await webhooks.update(hook.id, { lastSuccessfulAt: result.at });
    if (delivery.state !== 'pending')
      await webhooks.pruneDeliveries(hook.id, this.options.deliveryHistory ?? DEFAULT_DELIVERY_HISTORY);
  }
}

/** Builds a webhook from a forms.Webhook body; authorization is the caller's. */
export function parseWebhookForm(form: Record<string, unknown>): {
  type: WebhookEventType;
  key: string;
  endpoint: string;
  tlsCert: string;
  skipTLSVerification: boolean;
} {
  const type = form.type ?? 'TAG_PUSH';
  if (!isWebhookEventType(type))
    throw new ApiError(400, 'INVALID_PARAMETERS', 'type must be one of the webhook event types');
  const key = form.key ?? '';
  if (typeof key !== 'string') throw new ApiError(400, 'INVALID_PARAMETERS', 'key must be a string');
  const tlsCert = form.tlsCert ?? '';
  if (typeof tlsCert !== 'string') throw new ApiError(400, 'INVALID_PARAMETERS', 'tlsCert must be a string');
  const skip = form.skipTLSVerification ?? false;
  if (typeof skip !== 'boolean')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'skipTLSVerification must be a boolean');
  return { type, key, endpoint: checkEndpoint(form.endpoint), tlsCert, skipTLSVerification: skip };
}

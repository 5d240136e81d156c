// Connects registry events to their consumers on one DTR replica: webhooks (queued in the store,
// delivered by a dispatcher every replica runs), promotion policies (evaluated on each tag push;
// a promotion publishes its own PROMOTION event) and the /api/v0 routes for both.
import type { AccessSubject, RepositoryAccessResolver } from './access.js';
import type { Store } from '@orca/store';
import type { Kek } from '@orca/pki';
import { MirroringApi } from './mirroring-api.js';
import { PollMirroringRunner } from './mirroring-poll.js';
import { PushMirroringEngine, PushMirroringPolicies } from './mirroring.js';
import { getAccount } from '@orca/identity';
import type { BlobStore } from './blob-store.js';
import type { DtrCredentials } from './credentials.js';
import { RegistryEvents, imageName, type ImagePlatform } from './events.js';
import { checkDigest, type RepositoryName } from './grammar.js';
import type { RegistryMetadata } from './metadata.js';
import { PromotionApi } from './promotion-api.js';
import { PromotionEngine, PromotionPolicies } from './promotion.js';
import { WebhooksApi, type ApiV0Extension } from './webhooks-api.js';
import { WebhookDispatcher, WebhookStore } from './webhooks.js';

/** Image configs bigger than this are not read for an event's os/architecture. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export interface RegistryAutomationOptions {
  store: Store;
  metadata: RegistryMetadata;
  blobs: BlobStore;
  access: RepositoryAccessResolver;
  credentials: DtrCredentials;
  dtrHost: string;
  /** Seals push mirroring credentials. */
  kek: Kek;
  webhookBackoffBaseMs?: number;
  log?: { error(message: string): void };
}

export interface RegistryAutomation {
  events: RegistryEvents;
  webhooks: WebhookStore;
  dispatcher: WebhookDispatcher;
  promotion: PromotionEngine;
  mirroring: PushMirroringEngine;
  poller: PollMirroringRunner;
  extensions: ApiV0Extension[];
  stop(): Promise<void>;
}

export function createRegistryAutomation(options: RegistryAutomationOptions): RegistryAutomation {
  const { store, metadata, blobs, access, log } = options;
  const platform = async (
    _name: RepositoryName,
    configDigest: string | undefined,
  ): Promise<ImagePlatform> => {
    const digest = configDigest ? checkDigest(configDigest) : undefined;
    if (!digest?.ok) return { os: '', architecture: '' };
    const size = (await blobs.stat(digest.digest))?.size ?? 0;
    const raw = size > 0 && size <= MAX_CONFIG_BYTES ? await blobs.readSmall(digest.digest) : undefined;
    const config = raw ? (JSON.parse(raw.toString('utf8')) as { os?: unknown; architecture?: unknown }) : {};
    return {
      os: typeof config.os === 'string' ? config.os : '',
      architecture: typeof config.architecture === 'string' ? config.architecture : '',
    };
  };
  const events = new RegistryEvents({ host: options.dtrHost, platform, log });
  const webhooks = new WebhookStore(store);
  const dispatcher = new WebhookDispatcher({
    store,
    webhooks,
    backoffBaseMs: options.webhookBackoffBaseMs,
    log,
  });
  events.subscribe(async (event) => {
    if ((await webhooks.enqueue(event)).length > 0) dispatcher.nudge();
  });

  const subject = async (id: string, name: string): Promise<AccessSubject | undefined> => {
    const account = await getAccount(store, name);
    return account && account.id === id && account.isActive
      ? { id, name, isAdmin: account.isAdmin }
      : undefined;
  };
  const policies = new PromotionPolicies(store);
  const promotion = new PromotionEngine({
    policies,
    metadata,
    blobs,
    access,
    subject,
    log,
    onPromoted: (done) => {
      void (async () => {
        const record = await metadata.manifest(done.target, done.digest);
        const at = new Date();
        const where = await platform(done.target, record?.configDigest);
        events.publish({
          type: 'PROMOTION',
          createdAt: at.toISOString(),
          repository: done.target.full,
          contents: {
            namespace: done.target.namespace,
            repository: done.target.repository,
            tag: done.tag,
            digest: done.digest,
            imageName: imageName(options.dtrHost, done.target, { tag: done.tag, digest: done.digest }),
            os: where.os,
            architecture: where.architecture,
            author: done.policy.authorName,
            promotedAt: at.toISOString(),
            sourceRepository: done.source.full,
            sourceTag: done.sourceTag,
          },
        });
      })().catch((error: unknown) => log?.error(`promotion event: ${(error as Error).message}`));
    },
  });
  const mirrorPolicies = new PushMirroringPolicies(store, options.kek);
  const mirroring = new PushMirroringEngine({
    policies: mirrorPolicies,
    metadata,
    blobs,
    log,
    onMirrored: (done) => {
      const at = new Date().toISOString();
      const remote = new URL(done.policy.remoteHost).host;
      events.publish({
        type: 'PUSH_MIRRORING',
        createdAt: at,
        repository: done.local.full,
        contents: {
          namespace: done.local.namespace,
          repository: done.local.repository,
          tag: done.tag,
          digest: done.digest,
          imageName: imageName(options.dtrHost, done.local, { tag: done.tag, digest: done.digest }),
          remoteImageName: `${remote}/${done.policy.remoteRepository}:${done.remoteTag}`,
          author: done.policy.authorName,
          mirroredAt: at,
        },
      });
    },
  });
  const pollPolicies = new PushMirroringPolicies(store, options.kek, 'pollmirroring');
  const poller = new PollMirroringRunner({
    store,
    policies: pollPolicies,
    metadata,
    blobs,
    log,
    onPulled: (local, policy, pulled) => {
      const at = new Date().toISOString();
      const remote = new URL(policy.remoteHost).host;
      events.publish({
        type: 'POLL_MIRRORING',
        createdAt: at,
        repository: local.full,
        contents: {
          namespace: local.namespace,
          repository: local.repository,
          tag: pulled.tag,
          digest: pulled.digest,
          imageName: imageName(options.dtrHost, local, pulled),
          remoteImageName: `${remote}/${policy.remoteRepository}:${pulled.tag}`,
          author: policy.authorName,
          mirroredAt: at,
        },
      });
    },
  });
  events.onPush(async (facts) => {
    if (facts.tag === undefined) return;
    await Promise.all([promotion.evaluate(facts.name, facts.tag), mirroring.evaluate(facts.name, facts.tag)]);
  });

  const extensions: ApiV0Extension[] = [
    new WebhooksApi({
      webhooks,
      credentials: options.credentials,
      access,
      metadata,
      dtrHost: options.dtrHost,
      onChange: () => dispatcher.nudge(),
    }),
    new PromotionApi({ policies, engine: promotion, credentials: options.credentials, access, metadata }),
    new MirroringApi({ policies: mirrorPolicies, credentials: options.credentials, access, metadata }),
    new MirroringApi({
      policies: pollPolicies,
      credentials: options.credentials,
      access,
      metadata,
      onChange: () => poller.nudge(),
    }),
  ];
  dispatcher.start();
  poller.start();
  return {
    events,
    webhooks,
    dispatcher,
    promotion,
    mirroring,
    poller,
    extensions,
    async stop() {
      await events.settled();
      await poller.stop();
      await dispatcher.stop();
    },
  };
}

// Registry events: what happened to a repository, in DTR 2.5's webhook vocabulary (reference
// §1.6, SW25 forms.Webhook.type). The registry and /api/v0 publish after a change is stored;
// subscribers (webhooks, promotion, mirroring) run afterwards and never hold up or fail the
// request that caused the event.
import type { RepositoryName } from './grammar.js';

/** DTR 2.5's webhook event types (SW25 forms.Webhook.type enum). */
export const WEBHOOK_EVENT_TYPES = [
  'TAG_PUSH',
  'TAG_DELETE',
  'PROMOTION',
  'PUSH_MIRRORING',
  'POLL_MIRRORING',
  'MANIFEST_PUSH',
  'MANIFEST_DELETE',
  'REPO_EVENT',
  'SCAN_COMPLETED',
  'SCAN_FAILED',
  'SCANNER_UPDATE_COMPLETED',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export function isWebhookEventType(value: unknown): value is WebhookEventType {
  return typeof value === 'string' && (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** DTR's delivery envelope: {"type","createdAt","contents"} (use-the-api.md). */
export interface RegistryEvent {
  type: WebhookEventType;
  createdAt: string;
  contents: Record<string, unknown>;
  /** The repository the event is about ("ns/repo"); empty for global events. Not sent. */
  repository: string;
}

/** The envelope as it goes over the wire. */
export function eventPayload(event: RegistryEvent): {
  type: WebhookEventType;
  createdAt: string;
  contents: Record<string, unknown>;
} {
  return { type: event.type, createdAt: event.createdAt, contents: event.contents };
}

/** What is known about a pushed or deleted manifest when the event is published. */
export interface ManifestFacts {
  name: RepositoryName;
  digest: string;
  mediaType?: string;
  configDigest?: string;
  author: string;
  tag?: string;
}

export interface ImagePlatform {
  os: string;
  architecture: string;
}

/** host/ns/repo:tag, or host/ns/repo@digest without a tag. */
export function imageName(host: string, name: RepositoryName, reference: { tag?: string; digest: string }) {
  return reference.tag !== undefined
    ? `${host}/${name.full}:${reference.tag}`
    : `${host}/${name.full}@${reference.digest}`;
}

export function tagPushEvent(
  host: string,
  facts: ManifestFacts,
  platform: ImagePlatform,
  at: Date,
): RegistryEvent {
  return {
    type: 'TAG_PUSH',
    createdAt: at.toISOString(),
    repository: facts.name.full,
    contents: {
      namespace: facts.name.namespace,
      repository: facts.name.repository,
      tag: facts.tag ?? '',
      digest: facts.digest,
      imageName: imageName(host, facts.name, { tag: facts.tag, digest: facts.digest }),
      os: platform.os,
      architecture: platform.architecture,
      author: facts.author,
      pushedAt: at.toISOString(),
    },
  };
}

export function tagDeleteEvent(
  host: string,
  facts: ManifestFacts & { tag: string },
  platform: ImagePlatform,
  at: Date,
): RegistryEvent {
  const event = tagPushEvent(host, facts, platform, at);
  const { pushedAt: _pushed, ...contents } = event.contents;
  return { ...event, type: 'TAG_DELETE', contents: { ...contents, deletedAt: at.toISOString() } };
}

export function manifestEvent(
  type: 'MANIFEST_PUSH' | 'MANIFEST_DELETE',
  host: string,
  facts: ManifestFacts,
  platform: ImagePlatform,
  at: Date,
): RegistryEvent {
  return {
    type,
    createdAt: at.toISOString(),
    repository: facts.name.full,
    contents: {
      namespace: facts.name.namespace,
      repository: facts.name.repository,
      digest: facts.digest,
      imageName: imageName(host, facts.name, { digest: facts.digest }),
      os: platform.os,
      architecture: platform.architecture,
      author: facts.author,
      ...(type === 'MANIFEST_DELETE' ? { deletedAt: at.toISOString() } : {}),
    },
  };
}

export function repoEvent(
  event: 'REPO_CREATED' | 'REPO_DELETED' | 'REPO_UPDATED',
  name: RepositoryName,
  author: string,
  data: unknown,
  at: Date,
): RegistryEvent {
  return {
    type: 'REPO_EVENT',
    createdAt: at.toISOString(),
    repository: name.full,
    contents: { namespace: name.namespace, repository: name.repository, event, author, data },
  };
}

export type EventSubscriber = (event: RegistryEvent) => Promise<void>;

/** What the registry and /api/v0 call after a change; never throws and never waits for subscribers. */
export interface RegistryEventSink {
  manifestPushed(facts: ManifestFacts): void;
  manifestDeleted(facts: ManifestFacts): void;
  tagDeleted(facts: ManifestFacts & { tag: string }): void;
  repository(
    event: 'REPO_CREATED' | 'REPO_DELETED' | 'REPO_UPDATED',
    name: RepositoryName,
    author: string,
    data: unknown,
  ): void;
}

export interface RegistryEventsOptions {
  /** host[:port] image names use. */
  host: string;
  /** The image's os/architecture from its config (linux/amd64 style); unknown → empty strings. */
  platform(name: RepositoryName, configDigest: string | undefined): Promise<ImagePlatform>;
  log?: { error(message: string): void };
}

/** Publishes events to subscribers in the background; a failing subscriber is logged, not fatal. */
export class RegistryEvents implements RegistryEventSink {
  private readonly subscribers: EventSubscriber[] = [];
  /** Raw push facts, for subscribers that act on the pushed image itself (promotion, mirroring). */
  private readonly pushSubscribers: ((facts: ManifestFacts) => Promise<void>)[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: RegistryEventsOptions) {}

  subscribe(subscriber: EventSubscriber): void {
    this.subscribers.push(subscriber);
  }

  onPush(subscriber: (facts: ManifestFacts) => Promise<void>): void {
    this.pushSubscribers.push(subscriber);
  }

  /** Resolves when every event published so far has been handed to its subscribers (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  publish(event: RegistryEvent): void {
    this.background(async () => {
      await Promise.all(this.subscribers.map((s) => this.guard(event.type, () => s(event))));
    });
  }

  manifestPushed(facts: ManifestFacts): void {
    this.background(async () => {
      const platform = await this.platform(facts);
      const at = new Date();
      this.publish(manifestEvent('MANIFEST_PUSH', this.options.host, facts, platform, at));
      if (facts.tag !== undefined) this.publish(tagPushEvent(this.options.host, facts, platform, at));
      await Promise.all(this.pushSubscribers.map((s) => this.guard('push', () => s(facts))));
    });
  }

  manifestDeleted(facts: ManifestFacts): void {
    this.background(async () => {
      this.publish(
        manifestEvent('MANIFEST_DELETE', this.options.host, facts, await this.platform(facts), new Date()),
      );
    });
  }

  tagDeleted(facts: ManifestFacts & { tag: string }): void {
    this.background(async () => {
      this.publish(tagDeleteEvent(this.options.host, facts, await this.platform(facts), new Date()));
    });
  }

  repository(
    event: 'REPO_CREATED' | 'REPO_DELETED' | 'REPO_UPDATED',
    name: RepositoryName,
    author: string,
    data: unknown,
  ): void {
    this.publish(repoEvent(event, name, author, data, new Date()));
  }

  private async platform(facts: ManifestFacts): Promise<ImagePlatform> {
    try {
      return await this.options.platform(facts.name, facts.configDigest);
    } catch {
      return { os: '', architecture: '' };
    }
  }

  private async guard(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.options.log?.error(`registry event ${what}: ${(error as Error).stack}`);
    }
  }

  private background(work: () => Promise<void>): void {
    const running: Promise<void> = this.guard('dispatch', work).finally(() => this.pending.delete(running));
    this.pending.add(running);
  }
}

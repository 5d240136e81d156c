// DTR 2.5 poll mirroring (SW25 pollMirroringPolicies; pull-mirror.md): every 30 minutes (and right
// after a policy is created or enabled) the remote repository's tags are pulled into the local
// repository. Blobs stream through a hash into the BlobStore and are kept only when the digest
// matches; manifests are checked against their digest before they are stored. Any replica may run
// the poller: a due policy is claimed by a compare-and-swap that moves its nextPollAt forward.
import type { Store } from '@orca/store';
import { createHash, randomUUID } from 'node:crypto';
import type { BlobStore } from './blob-store.js';
import { checkDigest, isValidTag, parseRepositoryName, type RepositoryName } from './grammar.js';
import { parseManifest } from './manifest.js';
import { RepeatingTask } from './repeating-task.js';
import type { ManifestRecord, RegistryMetadata, TouchGuard } from './metadata.js';
import {
  RemoteRegistryClient,
  RemoteRegistryError,
  mirroringKeys,
  type PushMirroringPolicies,
  type PushMirroringPolicyRecord,
} from './mirroring.js';

/** DTR's poll_mirror job runs every 30 minutes. */
export const POLL_INTERVAL_MS = 30 * 60 * 1000;
const TICK_MS = 2_000;
/** Tags pulled per poll; the rest wait for the next one. */
const MAX_TAGS_PER_POLL = 100;

export interface PolledTag {
  tag: string;
  digest: string;
}

/** Pulls one manifest (with its blobs and, for an index, its children) into `local`. */
async function pullManifest(
  client: RemoteRegistryClient,
  metadata: RegistryMetadata,
  blobs: BlobStore,
  local: RepositoryName,
  reference: string,
  expectedDigest: string | undefined,
  depth: number,
): Promise<{ record: ManifestRecord; guard: TouchGuard }> {
  if (depth > 2) throw new RemoteRegistryError('manifest nesting too deep');
  const { mediaType, body } = await client.manifest(reference);
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (expectedDigest !== undefined && expectedDigest !== digest)
    throw new RemoteRegistryError(`manifest ${reference} does not match its digest`);
  const parsed = parseManifest(mediaType, body);
  // As a push does: touched before they are fetched or checked, so a running GC keeps them (or the
  // guarded commits below fail and the next poll fetches them again).
  const guard = await metadata.touchBlobs([
    digest,
    ...parsed.blobs.map((b) => b.digest),
    ...parsed.children.map((c) => c.digest),
  ]);
  for (const blob of parsed.blobs) {
    const check = checkDigest(blob.digest);
    if (!check.ok) throw new RemoteRegistryError(`bad blob digest ${blob.digest}`);
    if (!(await blobs.stat(check.digest))) {
      const id = randomUUID();
      await blobs.createUpload(id);
      try {
        const hash = createHash(check.digest.algorithm);
        const size = await blobs.append(
          id,
          0,
          await client.streamBlob(blob.digest),
          (c) => hash.update(c),
          blob.size,
        );
        if (`${check.digest.algorithm}:${hash.digest('hex')}` !== blob.digest || size !== blob.size)
          throw new RemoteRegistryError(`blob ${blob.digest} does not match its digest`);
        await blobs.commitUpload(id, check.digest);
      } catch (error) {
        await blobs.deleteUpload(id).catch(() => undefined);
        throw error;
      }
    }
    if (!(await metadata.linkBlob(local, blob.digest, blob.size, guard)))
      throw new RemoteRegistryError(`blob ${blob.digest} was garbage collected during the poll`);
  }
  for (const child of parsed.children)
    await pullManifest(client, metadata, blobs, local, child.digest, child.digest, depth + 1);
  const check = checkDigest(digest);
  if (!check.ok) throw new RemoteRegistryError('bad manifest digest');
  await blobs.putSmall(check.digest, body);
  const record: ManifestRecord = {
    digest,
    mediaType: parsed.mediaType,
    size: body.length,
    createdAt: new Date().toISOString(),
    author: '',
    ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
    ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
    ...(parsed.config
      ? { configMediaType: parsed.config.mediaType, configDigest: parsed.config.digest }
      : {}),
  };
  if (depth > 0 && !(await metadata.putManifest(local, record, undefined, guard)))
    throw new RemoteRegistryError(`manifest ${digest} lost a blob to garbage collection during the poll`);
  return { record, guard };
}

export class PollMirroringRunner {
  private readonly task: RepeatingTask;

  constructor(
    private readonly options: {
      store: Store;
      policies: PushMirroringPolicies;
      metadata: RegistryMetadata;
      blobs: BlobStore;
      intervalMs?: number;
      onPulled?(local: RepositoryName, policy: PushMirroringPolicyRecord, tag: PolledTag): void;
      log?: { error(message: string): void };
    },
  ) {
    this.task = new RepeatingTask(
      'poll mirroring',
      () => this.runOnce(),
      () => TICK_MS,
      options.log,
    );
  }

  start(): void {
    this.task.start();
  }

  nudge(): void {
    this.task.nudge();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Polls every due policy this replica manages to claim; returns how many it polled. */
  async runOnce(): Promise<number> {
    const { store } = this.options;
    const { kvs } = await store.range(mirroringKeys.all('pollmirroring'));
    let polled = 0;
    for (const kv of kvs) {
      if (this.task.isStopped) break;
      const policy = JSON.parse(kv.value) as PushMirroringPolicyRecord;
      if (!policy.enabled || (policy.nextPollAt ?? 0) > Date.now()) continue;
      const claimed = { ...policy, nextPollAt: Date.now() + (this.options.intervalMs ?? POLL_INTERVAL_MS) };
      const won = await store.txn(
        [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: kv.key, value: JSON.stringify(claimed) }],
      );
      if (!won.succeeded) continue;
      polled++;
      await this.poll(claimed);
    }
    return polled;
  }

  private async poll(policy: PushMirroringPolicyRecord): Promise<void> {
    const { metadata, blobs, policies } = this.options;
    const local = parseRepositoryName(policy.localRepository);
    if (!local) return;
    let error: string | undefined;
    const pulled: PolledTag[] = [];
    try {
      const client = new RemoteRegistryClient({
        host: policy.remoteHost,
        repository: policy.remoteRepository,
        ca: policy.remoteCA,
        skipTLSVerification: policy.skipTLSVerification,
        credentials: policies.credentials(policy),
      });
      await client.authorize('pull');
      for (const tag of (await client.tags()).filter(isValidTag).slice(0, MAX_TAGS_PER_POLL)) {
        const { record, guard } = await pullManifest(client, metadata, blobs, local, tag, undefined, 0);
        if ((await metadata.tag(local, tag))?.digest === record.digest) continue;
        if (!(await metadata.putManifest(local, record, tag, guard)))
          throw new RemoteRegistryError(
            `manifest ${record.digest} lost a blob to garbage collection during the poll`,
          );
        pulled.push({ tag, digest: record.digest });
      }
    } catch (e) {
      error = (e as Error).message;
      this.options.log?.error(`poll mirroring ${policy.id} from ${policy.remoteHost}: ${error}`);
    }
    const current = await policies.get(local, policy.id);
    if (current)
      await policies.put({
        ...current,
        ...(error ? {} : { lastMirroredAt: new Date().toISOString() }),
        lastStatus: {
          code: error ? 'FAILED' : 'SUCCESS',
          detail: error ?? '',
          timestamp: new Date().toISOString(),
        },
      });
    for (const tag of pulled) this.options.onPulled?.(local, policy, tag);
  }
}

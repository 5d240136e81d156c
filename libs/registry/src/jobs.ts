// DTR 2.5's job queue (SW25 tmpresponses.Job, /api/v0/jobs): jobs are store records; every DTR
// replica runs a JobRunner that claims waiting jobs by compare-and-swap on the record, so each job
// runs on exactly one replica. A claim is also a key bound to the replica's store lease (DTR's
// worker heartbeat): when a replica dies its lease expires, the claim key goes with it, and another
// replica takes the running job over (the job runs again from the start; GC is safe to repeat).
// Actions orca runs: "gc" and "onlinegc" (both the online GC in gc.ts; orca never needs DTR 2.5's
// read-only offline mode), and "sleep" (DTR's no-op job that waits parameters.duration seconds).
import type { Lease, Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import type { BlobStore } from './blob-store.js';
import { runGarbageCollection } from './gc.js';
import { RepeatingTask } from './repeating-task.js';

const ROOT = '/orca/v1/dtr/';
const jobKey = (id: string) => `${ROOT}jobs/${id}`;
const jobsPrefix = () => `${ROOT}jobs/`;
const logPrefix = (id: string) => `${ROOT}joblogs/${id}/`;
const logKey = (id: string, line: number) => `${logPrefix(id)}${String(line).padStart(10, '0')}`;
/** Present while a live replica runs the job: bound to that replica's lease. */
const claimKey = (id: string) => `${ROOT}jobclaims/${id}`;

export const JOB_STATUSES = ['waiting', 'running', 'done', 'canceled', 'errored'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const RUNNABLE_ACTIONS = ['gc', 'onlinegc', 'sleep'] as const;
export type JobAction = (typeof RUNNABLE_ACTIONS)[number];
export const isRunnableAction = (a: unknown): a is JobAction =>
  typeof a === 'string' && (RUNNABLE_ACTIONS as readonly string[]).includes(a);

export interface JobRecord {
  id: string;
  retryFromID: string;
  workerID: string;
  status: JobStatus;
  scheduledAt: string;
  lastUpdated: string;
  action: JobAction;
  retriesLeft: number;
  retriesTotal: number;
  capacityMap: Record<string, unknown>;
  parameters: Record<string, unknown>;
  deadline: string;
  stopTimeout: string;
  /** Set by POST …/cancel while running; the runner stops at its next step. */
  cancelRequested?: boolean;
}

export const jobView = (j: JobRecord) => {
  const { cancelRequested: _ignored, ...view } = j;
  return view;
};

/** GC grace period when a job gives none (parameters.gracePeriodSeconds). */
export const DEFAULT_GC_GRACE_SECONDS = 600;
/** The longest a "sleep" job may wait (parameters.duration, seconds). */
export const MAX_SLEEP_SECONDS = 3600;
/** Lifetime of a replica's worker lease: how long a dead replica's running job stays unclaimed. */
export const DEFAULT_JOB_LEASE_SECONDS = 15;

export class JobStore {
  constructor(private readonly store: Store) {}

  async create(fields: {
    action: JobAction;
    parameters: Record<string, unknown>;
    retries: number;
    capacityMap: Record<string, unknown>;
    deadline: string;
    stopTimeout: string;
    scheduledAt?: string;
  }): Promise<JobRecord> {
    const now = new Date().toISOString();
    const record: JobRecord = {
      id: randomUUID(),
      retryFromID: '',
      workerID: '',
      status: 'waiting',
      scheduledAt: fields.scheduledAt ?? now,
      lastUpdated: now,
      action: fields.action,
      retriesLeft: fields.retries,
      retriesTotal: fields.retries,
      capacityMap: fields.capacityMap,
      parameters: fields.parameters,
      deadline: fields.deadline,
      stopTimeout: fields.stopTimeout,
    };
    await this.store.put(jobKey(record.id), JSON.stringify(record));
    return record;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const kv = await this.store.get(jobKey(id));
    return kv ? (JSON.parse(kv.value) as JobRecord) : undefined;
  }

  /** Newest first. */
  async list(): Promise<JobRecord[]> {
    const { kvs } = await this.store.range(jobsPrefix());
    return kvs
      .map((kv) => JSON.parse(kv.value) as JobRecord)
      .sort((a, b) => b.scheduledAt.localeCompare(a.scheduledAt) || a.id.localeCompare(b.id));
  }

  /** Applies `change` by compare-and-swap; undefined when the job is gone or `change` declines. */
  async update(id: string, change: (j: JobRecord) => JobRecord | undefined): Promise<JobRecord | undefined> {
    for (;;) {
      const kv = await this.store.get(jobKey(id));
      if (!kv) return undefined;
      const next = change(JSON.parse(kv.value) as JobRecord);
      if (!next) return undefined;
      next.lastUpdated = new Date().toISOString();
      const result = await this.store.txn(
        [{ key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision }],
        [{ type: 'put', key: kv.key, value: JSON.stringify(next) }],
      );
      if (result.succeeded) return next;
    }
  }

  /**
   * Takes a job for `workerId`: a waiting one that is due, or a running one whose claim key is gone
   * (its replica's lease expired). The record and a claim key bound to `lease` are written in one
   * transaction that holds only while nobody else changed the job or claimed it meanwhile.
   */
  async claim(id: string, workerId: string, lease: Lease): Promise<JobRecord | undefined> {
    const [kv, claim] = await Promise.all([this.store.get(jobKey(id)), this.store.get(claimKey(id))]);
    if (!kv) return undefined;
    const job = JSON.parse(kv.value) as JobRecord;
    const orphaned = job.status === 'running' && !claim;
    if (job.status !== 'waiting' && !orphaned) return undefined;
    // A dead replica's job that was meanwhile canceled ends here instead of running again.
    const canceled = orphaned && job.cancelRequested === true;
    const next: JobRecord = {
      ...job,
      status: canceled ? 'canceled' : 'running',
      workerID: workerId,
      lastUpdated: new Date().toISOString(),
    };
    const result = await this.store.txn(
      [
        { key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision },
        { key: claimKey(id), target: 'createRevision', op: '=', value: 0 },
      ],
      [
        { type: 'put', key: kv.key, value: JSON.stringify(next) },
        ...(canceled ? [] : [{ type: 'put' as const, key: claimKey(id), value: workerId, lease }]),
      ],
    );
    return result.succeeded && !canceled ? next : undefined;
  }

  /** Ends `workerId`'s run with `status` and drops its claim; false when the job is no longer
   *  this worker's (its lease expired and another replica took it over). */
  async finish(id: string, workerId: string, status: JobStatus): Promise<boolean> {
    for (;;) {
      const [kv, claim] = await Promise.all([this.store.get(jobKey(id)), this.store.get(claimKey(id))]);
      if (!kv || !claim || claim.value !== workerId) return false;
      const job = JSON.parse(kv.value) as JobRecord;
      if (job.workerID !== workerId || job.status !== 'running') return false;
      const next: JobRecord = { ...job, status, lastUpdated: new Date().toISOString() };
      const result = await this.store.txn(
        [
          { key: kv.key, target: 'modRevision', op: '=', value: kv.modRevision },
          { key: claim.key, target: 'modRevision', op: '=', value: claim.modRevision },
        ],
        [
          { type: 'put', key: kv.key, value: JSON.stringify(next) },
          { type: 'delete', key: claim.key },
        ],
      );
      if (result.succeeded) return true;
    }
  }

  async remove(id: string): Promise<boolean> {
    const deleted = (await this.store.delete(jobKey(id))).deleted > 0;
    if (deleted) await this.store.deletePrefix(logPrefix(id));
    if (deleted) await this.store.delete(claimKey(id));
    return deleted;
  }

  async appendLog(id: string, line: number, data: string): Promise<void> {
    await this.store.put(logKey(id, line), data);
  }

  async logs(id: string): Promise<{ lineNum: number; data: string }[]> {
    const { kvs } = await this.store.range(logPrefix(id));
    return kvs.map((kv) => ({ lineNum: Number(kv.key.slice(logPrefix(id).length)), data: kv.value }));
  }
}

export interface JobRunnerOptions {
  store: Store;
  jobs: JobStore;
  blobs: BlobStore;
  /** This replica's worker id (SW25 Job.workerID). */
  workerId: string;
  pollMs?: number;
  /** Worker lease lifetime (DEFAULT_JOB_LEASE_SECONDS). */
  leaseSeconds?: number;
  log?: { error(message: string): void };
}

/** Claims and runs waiting jobs, and running jobs a dead replica left, one at a time per replica. */
export class JobRunner {
  private readonly task: RepeatingTask;
  private lease?: Lease;

  constructor(private readonly options: JobRunnerOptions) {
    this.task = new RepeatingTask(
      'jobs',
      () => this.tick(),
      () => options.pollMs ?? 1000,
      options.log,
    );
  }

  start(): void {
    this.task.start();
  }

  /** Nudges the runner (a job was just created). */
  wake(): void {
    this.task.nudge();
  }

  /** Stops claiming and waits for the job in flight; the lease is revoked, so a job cut short is
   *  taken over by another replica at once rather than after the lease would have expired. */
  async stop(): Promise<void> {
    await this.task.stop();
    await this.lease?.revoke().catch(() => undefined);
    this.lease = undefined;
  }

  /** This replica's worker lease (kept alive by the store client); a new one after a loss. */
  private async workerLease(): Promise<Lease> {
    if (!this.lease || this.lease.isLost())
      this.lease = await this.options.store.grantLease(
        this.options.leaseSeconds ?? DEFAULT_JOB_LEASE_SECONDS,
      );
    return this.lease;
  }

  private async tick(): Promise<void> {
    const now = new Date().toISOString();
    const candidates = (await this.options.jobs.list())
      .filter((j) => (j.status === 'waiting' && j.scheduledAt <= now) || j.status === 'running')
      .reverse();
    if (candidates.length === 0) return;
    for (const job of candidates) {
      if (this.task.isStopping) return;
      const lease = await this.workerLease();
      const claimed = await this.options.jobs.claim(job.id, this.options.workerId, lease);
      if (!claimed) continue;
      await this.run(claimed, lease, job.status === 'running' ? job.workerID : undefined);
    }
  }

  private async run(job: JobRecord, lease: Lease, takenOverFrom?: string): Promise<void> {
    const { jobs } = this.options;
    // A job taken over keeps the dead worker's lines and continues after them.
    let line = takenOverFrom === undefined ? 0 : (await jobs.logs(job.id)).length;
    const pending: Promise<void>[] = [];
    const log = (data: string) => pending.push(jobs.appendLog(job.id, line++, data));
    if (takenOverFrom !== undefined)
      log(`worker ${this.options.workerId} took the job over from ${takenOverFrom}, whose lease expired`);
    let cancelRequested = false;
    let leaseLost = false;
    void lease.lost.then(() => (leaseLost = true));
    const poll = setInterval(() => {
      void jobs.get(job.id).then(
        (j) => {
          if (!j || j.cancelRequested) cancelRequested = true;
        },
        () => undefined,
      );
    }, 500);
    // The job stops at its next step when canceled, when this replica stops, or when its lease is
    // gone (another replica may already be running it).
    const stopping = () => cancelRequested || leaseLost || this.task.isStopping;
    let status: JobStatus = 'done';
    try {
      if (job.action === 'sleep') {
        const until = Date.now() + sleepSeconds(job.parameters) * 1000;
        while (Date.now() < until && !stopping())
          await new Promise((resolve) => setTimeout(resolve, Math.min(200, until - Date.now())));
      } else {
        const grace = Number(job.parameters.gracePeriodSeconds ?? DEFAULT_GC_GRACE_SECONDS);
        await runGarbageCollection(this.options.store, this.options.blobs, {
          gracePeriodMs: grace * 1000,
          log,
          canceled: stopping,
        });
      }
      if (cancelRequested) status = 'canceled';
    } catch (error) {
      status = 'errored';
      log(`error: ${(error as Error).message}`);
    } finally {
      clearInterval(poll);
    }
    await Promise.allSettled(pending);
    // Cut short by a stop or a lost lease: left running, for the replica that takes it over.
    if (!cancelRequested && (leaseLost || this.task.isStopping)) return;
    await jobs.finish(job.id, this.options.workerId, status);
  }
}

/** A "sleep" job's parameters.duration in seconds, within 0..MAX_SLEEP_SECONDS. */
export function sleepSeconds(parameters: Record<string, unknown>): number {
  const duration = Number(parameters.duration ?? 0);
  return Number.isFinite(duration) ? Math.min(Math.max(duration, 0), MAX_SLEEP_SECONDS) : 0;
}

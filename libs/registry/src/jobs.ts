// DTR 2.5's job queue (SW25 tmpresponses.Job, /api/v0/jobs): jobs are store records; every DTR
// replica runs a JobRunner that claims waiting jobs by compare-and-swap on the record, so each job
// runs on exactly one replica. Actions orca runs: "gc" and "onlinegc" (both the online GC in
// gc.ts; orca never needs DTR 2.5's read-only offline mode).
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import type { BlobStore } from './blob-store.js';
import { runGarbageCollection } from './gc.js';
import { RepeatingTask } from './repeating-task.js';

const ROOT = '/orca/v1/dtr/';
const jobKey = (id: string) => `${ROOT}jobs/${id}`;
const jobsPrefix = () => `${ROOT}jobs/`;
const logPrefix = (id: string) => `${ROOT}joblogs/${id}/`;
const logKey = (id: string, line: number) => `${logPrefix(id)}${String(line).padStart(10, '0')}`;

export const JOB_STATUSES = ['waiting', 'running', 'done', 'canceled', 'errored'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const RUNNABLE_ACTIONS = ['gc', 'onlinegc'] as const;
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

  async remove(id: string): Promise<boolean> {
    const deleted = (await this.store.delete(jobKey(id))).deleted > 0;
    if (deleted) await this.store.deletePrefix(logPrefix(id));
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
  log?: { error(message: string): void };
}

/** Claims and runs waiting jobs, one at a time per replica. */
export class JobRunner {
  private readonly task: RepeatingTask;

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

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async tick(): Promise<void> {
    const now = new Date().toISOString();
    const waiting = (await this.options.jobs.list())
      .filter((j) => j.status === 'waiting' && j.scheduledAt <= now)
      .reverse();
    for (const job of waiting) {
      if (this.task.isStopping) return;
      const claimed = await this.options.jobs.update(job.id, (j) =>
        j.status === 'waiting' ? { ...j, status: 'running', workerID: this.options.workerId } : undefined,
      );
      if (claimed) await this.run(claimed);
    }
  }

  private async run(job: JobRecord): Promise<void> {
    const { jobs } = this.options;
    let line = 0;
    const pending: Promise<void>[] = [];
    const log = (data: string) => pending.push(jobs.appendLog(job.id, line++, data));
    let cancelRequested = false;
    const poll = setInterval(() => {
      void jobs.get(job.id).then((j) => {
        if (!j || j.cancelRequested) cancelRequested = true;
      });
    }, 500);
    let status: JobStatus = 'done';
    try {
      const grace = Number(job.parameters.gracePeriodSeconds ?? DEFAULT_GC_GRACE_SECONDS);
      await runGarbageCollection(this.options.store, this.options.blobs, {
        gracePeriodMs: grace * 1000,
        log,
        canceled: () => cancelRequested,
      });
      if (cancelRequested) status = 'canceled';
    } catch (error) {
      status = 'errored';
      log(`error: ${(error as Error).message}`);
    } finally {
      clearInterval(poll);
    }
    await Promise.all(pending);
    await jobs.update(job.id, (j) => ({ ...j, status }));
  }
}

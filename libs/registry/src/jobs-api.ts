// /api/v0/jobs (SW25 ListJobs, CreateJob, GetJob, DeleteJobs, CancelJob, GetJobLogs). DTR admins
// only; errors in DTR's shape through ApiV0Handler.
import { ApiError } from '@orca/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DtrCredentials } from './credentials.js';
import { requestUrl, send, sendJson } from './http.js';
import { isRunnableAction, jobView, MAX_SLEEP_SECONDS, RUNNABLE_ACTIONS, type JobStore } from './jobs.js';
import { readForm, signedIn, type ApiV0Extension } from './webhooks-api.js';

const invalid = (message: string) => new ApiError(400, 'INVALID_PARAMETERS', message);
const noJob = () => new ApiError(404, 'NO_SUCH_JOB', 'A job with the given id does not exist.');
const MAX_LIMIT = 1000;

function integerParam(url: URL, name: string, fallback: number, min: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw invalid(`${name} must be an integer >= ${min}`);
  return n;
}

const objectField = (form: Record<string, unknown>, name: string): Record<string, unknown> => {
  const v = form[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${name} must be an object`);
  return v as Record<string, unknown>;
};

const stringField = (form: Record<string, unknown>, name: string): string => {
  const v = form[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
};

export class JobsApi implements ApiV0Extension {
  constructor(private readonly options: { jobs: JobStore; credentials: DtrCredentials; onCreate?(): void }) {}

  async handle(req: IncomingMessage, res: ServerResponse, parts: string[], method: string): Promise<boolean> {
    const [area, id, sub, extra] = parts;
    if (area !== 'jobs' || extra !== undefined) return false;
    const known =
      (id === undefined && (method === 'GET' || method === 'POST')) ||
      (id !== undefined && sub === undefined && (method === 'GET' || method === 'DELETE')) ||
      (id !== undefined && sub === 'cancel' && method === 'POST') ||
      (id !== undefined && sub === 'logs' && method === 'GET');
    if (!known) return false;
    const principal = await signedIn(this.options.credentials, req);
    if (!principal.isAdmin) throw new ApiError(403, 'NOT_AUTHORIZED', 'The client is not authorized.');
    if (id === undefined) await (method === 'GET' ? this.list(req, res) : this.create(req, res));
    else if (sub === 'cancel') await this.cancel(res, id);
    else if (sub === 'logs') await this.logs(req, res, id);
    else if (method === 'GET') await this.getOne(res, id);
    else await this.remove(res, id);
    return true;
  }

  private async list(req: IncomingMessage, res: ServerResponse) {
    const url = requestUrl(req);
    const action = url.searchParams.get('action') ?? 'any';
    const worker = url.searchParams.get('worker') ?? 'any';
    const running = url.searchParams.get('running') ?? 'any';
    if (!['any', 'true', 'false'].includes(running)) throw invalid('running must be any, true or false');
    const start = integerParam(url, 'start', 0, 0);
    const limit = Math.min(integerParam(url, 'limit', 10, 1), MAX_LIMIT);
    const jobs = (await this.options.jobs.list()).filter(
      (j) =>
        (action === 'any' || j.action === action) &&
        (worker === 'any' || j.workerID === worker) &&
        (running === 'any' || (j.status === 'running') === (running === 'true')),
    );
    sendJson(res, 200, { jobs: jobs.slice(start, start + limit).map(jobView) });
  }

  private async create(req: IncomingMessage, res: ServerResponse) {
    const form = await readForm(req);
    if (!isRunnableAction(form.action))
      throw invalid(`action must be one of: ${RUNNABLE_ACTIONS.join(', ')}`);
    const parameters = objectField(form, 'parameters');
    const grace = parameters.gracePeriodSeconds;
    if (grace !== undefined && (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0))
      throw invalid('parameters.gracePeriodSeconds must be a number >= 0');
    const duration = parameters.duration;
    if (
      form.action === 'sleep' &&
      duration !== undefined &&
      (typeof duration !== 'number' || !(duration >= 0 && duration <= MAX_SLEEP_SECONDS))
    )
      throw invalid(`parameters.duration must be a number of seconds from 0 to ${MAX_SLEEP_SECONDS}`);
    const retries = form.retries ?? 0;
    if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0)
      throw invalid('retries must be an integer >= 0');
    const scheduledAt = stringField(form, 'scheduledAt');
    if (scheduledAt !== '' && Number.isNaN(Date.parse(scheduledAt)))
      throw invalid('scheduledAt must be an RFC 3339 time');
    const job = await this.options.jobs.create({
      action: form.action,
      parameters,
      retries,
      capacityMap: objectField(form, 'capacityMap'),
      deadline: stringField(form, 'deadline'),
      stopTimeout: stringField(form, 'stopTimeout'),
      ...(scheduledAt ? { scheduledAt: new Date(scheduledAt).toISOString() } : {}),
    });
    this.options.onCreate?.();
    sendJson(res, 202, jobView(job));
  }

  private async getOne(res: ServerResponse, id: string) {
    const job = await this.options.jobs.get(id);
    if (!job) throw noJob();
    sendJson(res, 200, jobView(job));
  }

  private async remove(res: ServerResponse, id: string) {
    const job = await this.options.jobs.get(id);
    if (!job) throw noJob();
    if (job.status === 'running') throw invalid('a running job must be canceled before it is deleted');
    await this.options.jobs.remove(id);
    send(res, 204);
  }

  private async cancel(res: ServerResponse, id: string) {
    const updated = await this.options.jobs.update(id, (j) => {
      if (j.status === 'waiting') return { ...j, status: 'canceled' };
      if (j.status === 'running') return { ...j, cancelRequested: true };
      return { ...j };
    });
    if (!updated) throw noJob();
    send(res, 204);
  }

  private async logs(req: IncomingMessage, res: ServerResponse, id: string) {
    const url = requestUrl(req);
    const offset = integerParam(url, 'offset', 0, 0);
    const limit = integerParam(url, 'limit', 0, 0);
    if (!(await this.options.jobs.get(id))) throw noJob();
    const lines = (await this.options.jobs.logs(id)).filter((l) => l.lineNum >= offset);
    sendJson(res, 200, limit > 0 ? lines.slice(0, limit) : lines);
  }
}

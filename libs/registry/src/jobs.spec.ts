import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobStore } from './jobs.js';

describe('JobStore claims', () => {
  let dir: string;
  let store: EmbeddedStore;
  let jobs: JobStore;
  const sleepJob = () =>
    jobs.create({
      action: 'sleep',
      parameters: { duration: 60 },
      retries: 0,
      capacityMap: {},
      deadline: '',
      stopTimeout: '',
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-jobs-'));
    store = new EmbeddedStore({ dir });
    jobs = new JobStore(store);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a job to one worker while its lease lives, and to another once the lease is gone', async () => {
    const job = await sleepJob();
    const leaseA = await store.grantLease(30);
    const leaseB = await store.grantLease(30);
    expect(await jobs.claim(job.id, 'a', leaseA)).toMatchObject({ status: 'running', workerID: 'a' });
    expect(await jobs.claim(job.id, 'b', leaseB)).toBeUndefined();
    await leaseA.revoke();
    expect(await jobs.claim(job.id, 'b', leaseB)).toMatchObject({ status: 'running', workerID: 'b' });
    // a no longer owns it: its finish changes nothing; b's does.
    expect(await jobs.finish(job.id, 'a', 'done')).toBe(false);
    expect(await jobs.get(job.id)).toMatchObject({ status: 'running', workerID: 'b' });
    expect(await jobs.finish(job.id, 'b', 'done')).toBe(true);
    expect(await jobs.get(job.id)).toMatchObject({ status: 'done', workerID: 'b' });
    expect(await jobs.claim(job.id, 'a', await store.grantLease(30))).toBeUndefined();
  });

  it("ends a dead worker's job that was canceled meanwhile instead of running it again", async () => {
    const job = await sleepJob();
    const leaseA = await store.grantLease(30);
    await jobs.claim(job.id, 'a', leaseA);
    await jobs.update(job.id, (j) => ({ ...j, cancelRequested: true }));
    await leaseA.revoke();
    expect(await jobs.claim(job.id, 'b', await store.grantLease(30))).toBeUndefined();
    expect(await jobs.get(job.id)).toMatchObject({ status: 'canceled' });
  });
});

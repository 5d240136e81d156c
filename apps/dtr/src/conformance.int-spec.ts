// The OCI distribution-spec conformance suite (the real Go program, built once into a cache outside
// the repository) against orca's DTR over HTTPS with token auth: pull, push, content discovery,
// content management and referrers, sha256 and sha512. No failures allowed.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { conformanceBinary, dtrRequest, runConformance, startTestDtr, type TestDtr } from './test-dtr.js';

describe('OCI distribution-spec conformance', () => {
  let dtr: TestDtr;
  let binary: string;

  beforeAll(async () => {
    binary = conformanceBinary();
    dtr = await startTestDtr();
    await dtr.createUser('conformance', 'conformance-pass');
    for (const repo of ['repo1', 'repo2']) {
      const res = await dtrRequest(dtr, 'POST', '/api/v0/repositories/conformance', {
        basic: ['conformance', 'conformance-pass'],
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: repo, visibility: 'private' }),
      });
      expect(res.status).toBe(201);
    }
  }, 120_000);

  afterAll(async () => {
    await dtr?.close();
  });

  it('passes with every API and data set enabled', async () => {
    const resultsDir = mkdtempSync(join(dtr.dir, 'results-'));
    const run = await runConformance({
      binary,
      registryHost: dtr.dtr.registryHost,
      caFile: dtr.caFile,
      username: 'conformance',
      password: 'conformance-pass',
      repos: ['conformance/repo1', 'conformance/repo2'],
      resultsDir,
    });
    if (run.status !== 0 || process.env.OCI_SHOW) console.log(run.output.slice(-20000));
    // The summary counts what ran: a run that tested nothing is a failure too.
    expect(run.count('FAIL')).toBe(0);
    expect(run.count('Error')).toBe(0);
    expect(run.count('Pass')).toBeGreaterThan(800);
    expect(run.output).not.toMatch(/failed test/i);
    expect(run.status).toBe(0);
    rmSync(resultsDir, { recursive: true, force: true });
  }, 300_000);
});

// orca's answers checked against UCP 3.0's published Swagger document.
import { checkResponse } from '@orca/api';
import { loadControllerConfig } from '@orca/config';
import { freePort } from '@orca/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsRequest } from '../../agent/src/https-json.js';
import { startController, type RunningController } from './controller.js';

describe('UCP 3.0 contract', () => {
  let dir: string;
  let controller: RunningController;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-contract-'));
    controller = await startController(
      loadControllerConfig({
        ORCA_DATA_DIR: dir,
        ORCA_PORT: String(await freePort()),
        ORCA_ADMIN_PASSWORD: 'contract-pass',
      }),
    );
  });

  afterAll(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['get', '/version'],
    ['get', '/info'],
  ])('%s %s matches the documented 200 response', async (method, path) => {
    const response = await httpsRequest(method.toUpperCase(), `${controller.url}${path}`, { insecure: true });
    expect(response.status).toBe(200);
    expect(checkResponse('ucp-3.0', method, path, 200, JSON.parse(response.text))).toEqual([]);
  });

  it('answers /_ping with a documented status', async () => {
    const response = await httpsRequest('GET', `${controller.url}/_ping`, { insecure: true });
    expect(response.status).toBe(200);
    expect(() => checkResponse('ucp-3.0', 'get', '/_ping', 200, response.text)).not.toThrow();
  });

  it('catches a response that breaks the schema', () => {
    expect(checkResponse('ucp-3.0', 'get', '/version', 200, { Version: 3 })).toEqual([
      '/Version must be string',
    ]);
  });
});

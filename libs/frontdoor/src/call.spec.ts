import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { checkFilters, readJsonObject } from './call.js';
import { DockerApiError } from './errors.js';

function request(body: string | Buffer, headers: Record<string, string> = {}): IncomingMessage {
  return Object.assign(Readable.from([Buffer.from(body)]), { headers }) as unknown as IncomingMessage;
}

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as DockerApiError).status;
  }
}

describe('request bodies and filters', () => {
  it('reads a JSON object body', async () => {
    await expect(readJsonObject(request('{"Image":"busybox"}'))).resolves.toEqual({ Image: 'busybox' });
  });

  it('answers malformed, empty, non-object and oversized bodies with 4xx', async () => {
    expect(await status(readJsonObject(request('{"Image": ')))).toBe(400);
    expect(await status(readJsonObject(request('')))).toBe(400);
    expect(await status(readJsonObject(request('[1,2]')))).toBe(400);
    expect(await status(readJsonObject(request('"text"')))).toBe(400);
    expect(await status(readJsonObject(request('{}', { 'content-length': String(64 * 1024 * 1024) })))).toBe(
      413,
    );
    expect(await status(readJsonObject(request(Buffer.alloc(17 * 1024 * 1024, 0x20))))).toBe(413);
  });

  it('accepts only a JSON object as filters', () => {
    expect(() => checkFilters('')).not.toThrow();
    expect(() => checkFilters('?all=1&filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D')).not.toThrow();
    expect(() => checkFilters('?filters=notjson')).toThrow(DockerApiError);
    expect(() => checkFilters('?filters=%5B1%5D')).toThrow('invalid filters: expected a JSON object');
  });
});

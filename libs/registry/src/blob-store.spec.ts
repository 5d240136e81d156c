import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FsBlobStore, LengthMismatchError } from './blob-store.js';
import { parseDigest } from './grammar.js';

const digestOf = (data: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256') =>
  parseDigest(`${algorithm}:${createHash(algorithm).update(data).digest('hex')}`)!;

describe('FsBlobStore', () => {
  let dir: string;
  let blobs: FsBlobStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-blobs-'));
    blobs = await new FsBlobStore(dir).init();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends chunks, hashing as they stream, and shows the blob only once committed', async () => {
    const id = randomUUID();
    const data = Buffer.from('hello, registry');
    await blobs.createUpload(id);
    const hash = createHash('sha256');
    let size = await blobs.append(id, 0, Readable.from([data.subarray(0, 5)]), (c) => hash.update(c));
    size = await blobs.append(id, size, Readable.from([data.subarray(5)]), (c) => hash.update(c));
    expect(size).toBe(data.length);
    const digest = digestOf(data);
    expect(hash.digest('hex')).toBe(digest.hex);
    expect(await blobs.stat(digest)).toBeUndefined();
    expect(await blobs.hashUpload(id, 'sha512')).toBe(digestOf(data, 'sha512').hex);
    await blobs.commitUpload(id, digest);
    expect(await blobs.stat(digest)).toEqual({ size: data.length });
    expect(await blobs.uploadSize(id)).toBeUndefined();
    const chunks: Buffer[] = [];
    for await (const c of blobs.read(digest, { start: 7, end: 14 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('registry');
  });

  it('rolls a chunk of the wrong length back to the previous offset', async () => {
    const id = randomUUID();
    await blobs.createUpload(id);
    await blobs.append(id, 0, Readable.from([Buffer.from('abc')]), () => undefined);
    await expect(
      blobs.append(id, 3, Readable.from([Buffer.from('too long')]), () => undefined, 4),
    ).rejects.toBeInstanceOf(LengthMismatchError);
    await expect(
      blobs.append(id, 3, Readable.from([Buffer.from('ab')]), () => undefined, 4),
    ).rejects.toBeInstanceOf(LengthMismatchError);
    expect(await blobs.uploadSize(id)).toBe(3);
  });

  it('never builds a path from anything but an upload id', async () => {
    await expect(blobs.createUpload('../../escape')).rejects.toThrow(/invalid upload id/);
    expect(() => blobs.readUpload('x/../../y')).toThrow(/invalid upload id/);
    expect(readdirSync(dir).sort()).toEqual(['blobs', 'uploads']);
  });
});

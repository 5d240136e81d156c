import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { FsBlobStore, LengthMismatchError, repositoryUploadKey } from './blob-store.js';
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

  it('binds an upload to its repository through its key, and refuses keys that are not upload keys', async () => {
    const id = randomUUID();
    await blobs.createUpload(repositoryUploadKey('alice/app', id));
    expect(await blobs.uploadSize(repositoryUploadKey('alice/app', id))).toBe(0);
    // The same id from another repository names nothing.
    expect(await blobs.uploadSize(repositoryUploadKey('bob/app', id))).toBeUndefined();
    expect(await blobs.uploadSize(id)).toBeUndefined();
    for (const bad of ['../blobs', `${'a'.repeat(64)}-../x`, `${'a'.repeat(63)}-${id}`, `${id}/x`])
      await expect(blobs.createUpload(bad)).rejects.toThrow('invalid upload id');
    expect(readdirSync(join(dir, 'uploads'))).toEqual([repositoryUploadKey('alice/app', id)]);
  });

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

  it('appends a many-chunk body in batched writes, byte for byte, and rolls a long one back', async () => {
    const id = randomUUID();
    await blobs.createUpload(id);
    const data = randomBytes(3 * 1024 * 1024 + 12345);
    const chunks = Array.from({ length: Math.ceil(data.length / 16384) }, (_, i) =>
      data.subarray(i * 16384, (i + 1) * 16384),
    );
    const hash = createHash('sha256');
    const size = await blobs.append(id, 0, Readable.from(chunks), (c) => hash.update(c), data.length);
    expect(size).toBe(data.length);
    expect(hash.digest('hex')).toBe(digestOf(data).hex);
    expect(await blobs.hashUpload(id, 'sha256')).toBe(digestOf(data).hex);
    await expect(
      blobs.append(id, size, Readable.from(chunks), () => undefined, data.length - 1),
    ).rejects.toBeInstanceOf(LengthMismatchError);
    expect(await blobs.uploadSize(id)).toBe(data.length);
  });

  it('sends a blob or a byte range into a sink chunk by chunk, and stops when the sink closes', async () => {
    const id = randomUUID();
    await blobs.createUpload(id);
    const data = randomBytes(2 * 1024 * 1024 + 777);
    await blobs.append(id, 0, Readable.from([data]), () => undefined);
    const digest = digestOf(data);
    await blobs.commitUpload(id, digest);
    const collect = async (range?: { start: number; end: number }) => {
      const chunks: Buffer[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(Buffer.from(chunk));
          setImmediate(done);
        },
      });
      await blobs.send(digest, range, sink);
      return Buffer.concat(chunks);
    };
    expect((await collect()).equals(data)).toBe(true);
    expect(
      (await collect({ start: 1024 * 1024 - 5, end: 2 * 1024 * 1024 + 10 })).equals(
        data.subarray(1024 * 1024 - 5, 2 * 1024 * 1024 + 11),
      ),
    ).toBe(true);
    let writes = 0;
    const closing = new Writable({
      write(_chunk, _encoding, done) {
        writes++;
        closing.destroy();
        done();
      },
    });
    await blobs.send(digest, undefined, closing);
    expect(writes).toBe(1);
    await expect(blobs.send(digestOf(Buffer.from('absent')), undefined, new Writable())).rejects.toThrow(
      /ENOENT/,
    );
  });

  it('never builds a path from anything but an upload id', async () => {
    await expect(blobs.createUpload('../../escape')).rejects.toThrow(/invalid upload id/);
    expect(() => blobs.readUpload('x/../../y')).toThrow(/invalid upload id/);
    expect(readdirSync(dir).sort()).toEqual(['blobs', 'uploads']);
  });
});

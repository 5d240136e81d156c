// Blob content, addressed by digest. The interface is what the registry needs from storage, so an
// S3-compatible backend can sit behind it later; FsBlobStore keeps blobs on local disk:
//   <root>/blobs/<algorithm>/<first two hex>/<hex>   committed content, never partial
//   <root>/uploads/<upload id>                       an upload in progress, appended in place
// A blob file appears only by rename after its digest was checked, so a half-finished or aborted
// upload is never visible. Paths are built only from validated digests and upload ids.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isUploadId, type Digest, type DigestAlgorithm } from './grammar.js';
import type { ByteRange } from './ranges.js';

export interface BlobStore {
  /** Size of a committed blob, or undefined when absent. */
  stat(digest: Digest): Promise<{ size: number } | undefined>;
  /** Streams a committed blob (or one byte range of it). */
  read(digest: Digest, range?: ByteRange): Readable;
  /** Reads a small committed blob (a manifest) whole; undefined when absent. */
  readSmall(digest: Digest): Promise<Buffer | undefined>;
  /** Stores small content (a manifest) whose digest the caller computed. */
  putSmall(digest: Digest, content: Buffer): Promise<void>;
  createUpload(id: string): Promise<void>;
  /** Bytes received so far, or undefined when the upload does not exist. */
  uploadSize(id: string): Promise<number | undefined>;
  /**
   * Appends a stream at `offset` (the current size). `observe` sees every chunk as it is written,
   * so the caller can hash while streaming. With `expectedLength`, a body of another length is
   * rolled back and rejected. Returns the new size.
   */
  append(
    id: string,
    offset: number,
    source: Readable,
    observe: (chunk: Buffer) => void,
    expectedLength?: number,
  ): Promise<number>;
  /** Streams the bytes of an upload in progress (to rebuild a hash after a restart). */
  readUpload(id: string): Readable;
  /** Hashes the upload's bytes from storage (a resumed upload, or another algorithm). */
  hashUpload(id: string, algorithm: DigestAlgorithm): Promise<string>;
  /** Moves a verified upload into place under its digest. */
  commitUpload(id: string, digest: Digest): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Removes committed content (garbage collection). */
  delete(digest: Digest): Promise<void>;
  /** Every committed blob's digest string ("sha256:…"), for garbage collection. */
  list(): AsyncIterable<string>;
}

export class LengthMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(`expected ${expected} bytes, received ${received}`);
    this.name = 'LengthMismatchError';
  }
}

const READ_CHUNK_BYTES = 1024 * 1024;

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

export class FsBlobStore implements BlobStore {
  private readonly blobs: string;
  private readonly uploads: string;

  constructor(root: string) {
    this.blobs = join(root, 'blobs');
    this.uploads = join(root, 'uploads');
  }

  async init(): Promise<this> {
    await mkdir(this.blobs, { recursive: true, mode: 0o700 });
    await mkdir(this.uploads, { recursive: true, mode: 0o700 });
    return this;
  }

  private blobPath(digest: Digest): string {
    return join(this.blobs, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  private uploadPath(id: string): string {
    if (!isUploadId(id)) throw new Error('invalid upload id');
    return join(this.uploads, id);
  }

  async stat(digest: Digest): Promise<{ size: number } | undefined> {
    try {
      return { size: (await stat(this.blobPath(digest))).size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  read(digest: Digest, range?: ByteRange): Readable {
    // Large reads: fewer, bigger writes into the TLS socket.
    return createReadStream(this.blobPath(digest), {
      highWaterMark: READ_CHUNK_BYTES,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async readSmall(digest: Digest): Promise<Buffer | undefined> {
    try {
      const handle = await open(this.blobPath(digest), 'r');
      try {
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async putSmall(digest: Digest, content: Buffer): Promise<void> {
    const target = this.blobPath(digest);
    if (await this.stat(digest)) return;
    const temp = join(this.uploads, `small-${randomUUID()}`);
    await writeFile(temp, content, { mode: 0o600 });
    await this.place(temp, target);
  }

  private async place(temp: string, target: string): Promise<void> {
    await mkdir(join(target, '..'), { recursive: true, mode: 0o700 });
    await rename(temp, target);
  }

  async createUpload(id: string): Promise<void> {
    await writeFile(this.uploadPath(id), '', { flag: 'wx', mode: 0o600 });
  }

  async uploadSize(id: string): Promise<number | undefined> {
    try {
      return (await stat(this.uploadPath(id))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async append(
    id: string,
    offset: number,
    source: Readable,
    observe: (chunk: Buffer) => void,
    expectedLength?: number,
  ): Promise<number> {
    const path = this.uploadPath(id);
    let received = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (expectedLength !== undefined && received > expectedLength) {
          callback(new LengthMismatchError(expectedLength, received));
          return;
        }
        observe(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, counter, createWriteStream(path, { flags: 'r+', start: offset }));
      if (expectedLength !== undefined && received !== expectedLength)
        throw new LengthMismatchError(expectedLength, received);
    } catch (error) {
      // Whatever part of a failed chunk landed is cut off again: the upload stays at `offset`.
      await truncate(path, offset).catch(() => undefined);
      throw error;
    }
    return offset + received;
  }

  readUpload(id: string): Readable {
    return createReadStream(this.uploadPath(id));
  }

  async hashUpload(id: string, algorithm: DigestAlgorithm): Promise<string> {
    const hash = createHash(algorithm);
    await pipeline(createReadStream(this.uploadPath(id)), hash);
    return hash.digest('hex');
  }

  async commitUpload(id: string, digest: Digest): Promise<void> {
    const temp = this.uploadPath(id);
    if (await this.stat(digest)) {
      await rm(temp, { force: true });
      return;
    }
    await this.place(temp, this.blobPath(digest));
  }

  async deleteUpload(id: string): Promise<void> {
    await rm(this.uploadPath(id), { force: true });
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async *list(): AsyncIterable<string> {
    const entries = async (dir: string) =>
      readdir(dir).catch((error: unknown) => {
        if (isMissing(error)) return [] as string[];
        throw error;
      });
    for (const algorithm of await entries(this.blobs))
      for (const prefix of await entries(join(this.blobs, algorithm)))
        for (const hex of await entries(join(this.blobs, algorithm, prefix))) yield `${algorithm}:${hex}`;
  }
}

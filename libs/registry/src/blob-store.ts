// Blob content, addressed by digest. The interface is all the registry, GC, promotion and mirroring
// need from storage (nothing else in libs/registry or apps/dtr touches the filesystem for blobs),
// so an S3-compatible backend can sit behind it later. What such a backend must keep: a committed
// blob appears atomically and only under its verified digest (S3: CompleteMultipartUpload or a
// copy into the final key); an upload in progress stays readable for readUpload/hashUpload (S3
// cannot read multipart parts, so it would keep each appended chunk as its own object and compose
// them on commit); upload ids are opaque keys chosen by the caller. FsBlobStore keeps blobs on
// local disk:
//   <root>/blobs/<algorithm>/<first two hex>/<hex>   committed content, never partial
//   <root>/uploads/<upload key>                      an upload in progress, appended in place
// A registry upload's key names its repository (repositoryUploadKey), so the session is bound to
// the repository it was started in without any record beside the upload itself.
// A blob file appears only by rename after its digest was checked, so a half-finished or aborted
// upload is never visible. Paths are built only from validated digests and upload ids.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isUploadId, type Digest, type DigestAlgorithm } from './grammar.js';
import type { ByteRange } from './ranges.js';

export interface BlobStore {
  /** Size of a committed blob, or undefined when absent. */
  stat(digest: Digest): Promise<{ size: number } | undefined>;
  /** Streams a committed blob (or one byte range of it). */
  read(digest: Digest, range?: ByteRange): Readable;
  /**
   * Optional faster path for serving: writes the blob (or range) into `sink` without ending it,
   * one chunk at a time, each after the previous was taken; resolves early if the sink closes.
   */
  send?(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void>;
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
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Free READ_CHUNK_BYTES buffers kept for send() (two per blob being served). */
const SEND_BUFFER_POOL = 16;

/** Writes one chunk; true once the sink took it, false if the sink closed or failed first. */
function writeChunk(sink: Writable, chunk: Buffer): Promise<boolean> {
  if (sink.destroyed || sink.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    const closed = () => resolve(false);
    sink.once('close', closed);
    sink.write(chunk, (error) => {
      sink.off('close', closed);
      resolve(!error);
    });
  });
}

/** Writes the buffers at `position` as one contiguous write (FileHandle.writev of many small
 *  buffers costs milliseconds per call on the main thread in Node 20; one copy is far cheaper). */
async function writeAllAt(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
    if (bytesWritten === 0) throw new Error('upload write made no progress');
    written += bytesWritten;
  }
}

/**
 * The storage key of registry upload `id` in `repository`: the SHA-256 of the repository name, then
 * the id. The same id used from another repository names an upload that does not exist.
 */
export function repositoryUploadKey(repository: string, id: string): string {
  return `${createHash('sha256').update(repository, 'utf8').digest('hex')}-${id}`;
}

/** Upload keys: a bare upload id (a UUID), or one bound to a repository by repositoryUploadKey. */
const isUploadKey = (key: string) =>
  isUploadId(key) || (/^[0-9a-f]{64}-/.test(key) && isUploadId(key.slice(65)));

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

export class FsBlobStore implements BlobStore {
  private readonly blobs: string;
  private readonly uploads: string;
  private readonly madeDirs = new Set<string>();
  private readonly sendBuffers: Buffer[] = [];

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
    if (!isUploadKey(id)) throw new Error('invalid upload id');
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

  async send(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void> {
    const handle = await open(this.blobPath(digest), 'r');
    // Two pooled buffers: one is read into while the other is being written. Writing one chunk at
    // a time keeps each TLS write a single buffer (no writev gather copy) and allocates nothing.
    const buffers = [this.sendBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK_BYTES)];
    buffers.push(this.sendBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK_BYTES));
    let completed = false;
    try {
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : (await handle.stat()).size;
      let writing: Promise<boolean> = Promise.resolve(true);
      for (let i = 0; position < end; i++) {
        const buffer = buffers[i % 2]!;
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
        if (bytesRead === 0) throw new Error(`blob ${digest.value} is shorter than expected`);
        if (!(await writing)) return;
        position += bytesRead;
        writing = writeChunk(sink, buffer.subarray(0, bytesRead));
      }
      completed = await writing;
    } finally {
      await handle.close();
      // A sink that closed early may still hold a buffer: those are left to the garbage collector.
      if (completed)
        for (const b of buffers) if (this.sendBuffers.length < SEND_BUFFER_POOL) this.sendBuffers.push(b);
    }
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
    const dir = join(target, '..');
    // Prefix directories are never removed: make each once per process, not on every commit.
    if (this.madeDirs.has(dir)) {
      try {
        await rename(temp, target);
        return;
      } catch (error) {
        // Removed behind our back after all (an operator's cleanup): make it again below.
        if (!isMissing(error)) throw error;
        this.madeDirs.delete(dir);
      }
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    this.madeDirs.add(dir);
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
    const handle = await open(this.uploadPath(id), 'r+');
    let received = 0;
    // Socket chunks are ~16 KiB: gather them into large positioned writes (one syscall per
    // WRITE_BATCH_BYTES instead of dozens), with one write in flight while the next batch fills.
    let writing: Promise<void> = Promise.resolve();
    try {
      let batch: Buffer[] = [];
      let batchBytes = 0;
      let position = offset;
      const flush = async () => {
        await writing;
        if (batchBytes === 0) return;
        writing = writeAllAt(handle, batch, position);
        // Seen at the next flush; until then a failure must not count as unhandled.
        writing.catch(() => undefined);
        position += batchBytes;
        batch = [];
        batchBytes = 0;
      };
      for await (const chunk of source as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (expectedLength !== undefined && received > expectedLength)
          throw new LengthMismatchError(expectedLength, received);
        observe(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      await writing;
      if (expectedLength !== undefined && received !== expectedLength)
        throw new LengthMismatchError(expectedLength, received);
    } catch (error) {
      // Whatever part of a failed chunk landed is cut off again: the upload stays at `offset`.
      await writing.catch(() => undefined);
      await handle.truncate(offset).catch(() => undefined);
      throw error;
    } finally {
      await handle.close();
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

import { createHash } from 'node:crypto';
import { manifestReferences, markReferenced } from './gc.js';
import type { ManifestRecord } from './metadata.js';

const d = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const record = (body: string, mediaType: string, extra: Partial<ManifestRecord> = {}): ManifestRecord => ({
  digest: d(body),
  mediaType,
  size: body.length,
  createdAt: '2026-01-01T00:00:00Z',
  ...extra,
});
const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

const image = (config: string, layers: string[], subject?: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: IMAGE,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(config), size: 1 },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: d(l),
      size: 1,
    })),
    ...(subject ? { subject: { mediaType: IMAGE, digest: subject, size: 1 } } : {}),
  });

describe('GC mark', () => {
  it('marks an image manifest, its config and its layers', () => {
    const body = image('cfg', ['a', 'b']);
    expect(manifestReferences(record(body, IMAGE), Buffer.from(body)).sort()).toEqual(
      [d(body), d('cfg'), d('a'), d('b')].sort(),
    );
  });

  it('marks index children and a referrer subject', () => {
    const child = image('cfg', ['a']);
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: INDEX,
      manifests: [{ mediaType: IMAGE, digest: d(child), size: child.length }],
    });
    const referrer = image('sig', ['s'], d('subject-manifest'));
    const marked = markReferenced([
      { record: record(index, INDEX), body: Buffer.from(index) },
      { record: record(referrer, IMAGE, { subject: d('subject-manifest') }), body: Buffer.from(referrer) },
    ]);
    for (const digest of [d(index), d(child), d(referrer), d('sig'), d('s'), d('subject-manifest')])
      expect(marked.has(digest)).toBe(true);
    expect(marked.has(d('a'))).toBe(false); // the child's own record marks its layers
  });

  it('keeps what the record names when the body is missing or unreadable, and says so', () => {
    const reasons: string[] = [];
    const marked = markReferenced(
      [
        { record: record('x', IMAGE, { configDigest: d('cfg') }), body: undefined },
        { record: record('y', IMAGE), body: Buffer.from('not json') },
      ],
      (digest, reason) => reasons.push(`${digest}: ${reason}`),
    );
    expect(marked.has(d('x'))).toBe(true);
    expect(marked.has(d('cfg'))).toBe(true);
    expect(marked.has(d('y'))).toBe(true);
    expect(reasons).toHaveLength(2);
  });

  it('does not mark blobs no manifest names', () => {
    const body = image('cfg', ['a']);
    const marked = markReferenced([{ record: record(body, IMAGE), body: Buffer.from(body) }]);
    expect(marked.has(d('orphan'))).toBe(false);
    expect(marked.size).toBe(3);
  });
});

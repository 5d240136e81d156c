import { MEDIA_TYPES, parseManifest } from './manifest.js';

const d = (c: string, mediaType = 'application/octet-stream') => ({
  mediaType,
  digest: `sha256:${c.repeat(64)}`,
  size: 1,
});
const body = (doc: unknown) => Buffer.from(JSON.stringify(doc));

describe('manifest parsing', () => {
  it('lists the blobs an image manifest needs, skipping non-distributable layers', () => {
    const parsed = parseManifest(
      MEDIA_TYPES.ociManifest,
      body({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: d('a', 'application/vnd.oci.image.config.v1+json'),
        layers: [d('b'), d('c', 'application/vnd.oci.image.layer.nondistributable.v1.tar')],
        subject: d('e', MEDIA_TYPES.ociManifest),
      }),
    );
    expect(parsed.blobs.map((x) => x.digest[7])).toEqual(['a', 'b']);
    expect(parsed.subject?.digest).toBe(d('e').digest);
    expect(parsed.artifactType).toBe('application/vnd.oci.image.config.v1+json');
  });

  it('lists the children of an index and of a Docker manifest list', () => {
    for (const mediaType of [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]) {
      const parsed = parseManifest(
        mediaType,
        body({ schemaVersion: 2, mediaType, manifests: [d('a'), d('b')] }),
      );
      expect(parsed.children).toHaveLength(2);
      expect(parsed.blobs).toEqual([]);
    }
  });

  it.each([
    ['not JSON', Buffer.from('{'), MEDIA_TYPES.ociManifest],
    ['an array', body([]), MEDIA_TYPES.ociManifest],
    ['schema 1', body({ schemaVersion: 1, config: d('a'), layers: [] }), MEDIA_TYPES.ociManifest],
    ['no config', body({ schemaVersion: 2, layers: [] }), MEDIA_TYPES.ociManifest],
    [
      'a bad digest',
      body({ schemaVersion: 2, config: { ...d('a'), digest: 'sha256:xyz' } }),
      MEDIA_TYPES.ociManifest,
    ],
    ['a negative size', body({ schemaVersion: 2, config: { ...d('a'), size: -1 } }), MEDIA_TYPES.ociManifest],
    [
      'mismatched types',
      body({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }),
      MEDIA_TYPES.ociManifest,
    ],
    ['an unknown type', body({ schemaVersion: 2, mediaType: 'application/x-nope' }), 'application/x-nope'],
  ])('refuses %s with MANIFEST_INVALID', (_what, content, contentType) => {
    expect(() => parseManifest(contentType, content)).toThrow(
      expect.objectContaining({ status: 400, code: 'MANIFEST_INVALID' }),
    );
  });
});

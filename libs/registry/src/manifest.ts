// Manifest parsing: Docker schema 2 manifests and manifest lists, OCI image manifests and indexes.
// What a manifest references (config, layers, child manifests) is returned so the registry can
// check that each exists before it accepts the manifest.
import { RegistryError } from './errors.js';
import { checkDigest } from './grammar.js';
import type { Descriptor } from './metadata.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);

/** Largest manifest accepted (distribution's limit; the spec asks for at least 4 MB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** RFC 6838 caps type and subtype at 127 characters each. */
const MAX_MEDIA_TYPE_LENGTH = 255;

export interface ParsedManifest {
  mediaType: string;
  /** Blobs that must be in the repository: the config and the distributable layers. */
  blobs: Descriptor[];
  /** Manifests that must be in the repository (index and manifest list entries). */
  children: Descriptor[];
  subject?: Descriptor;
  /** The artifact type a referrers listing shows: artifactType, or the config's media type for images. */
  artifactType?: string;
  annotations?: Record<string, string>;
  config?: Descriptor;
}

const invalid = (message: string, detail?: unknown) =>
  new RegistryError(400, 'MANIFEST_INVALID', message, detail);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} is not a descriptor`);
  const { mediaType, digest, size, artifactType, annotations } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${where}.mediaType is missing`);
  if (mediaType.length > MAX_MEDIA_TYPE_LENGTH) throw invalid(`${where}.mediaType is too long`);
  if (typeof digest !== 'string' || !checkDigest(digest).ok) throw invalid(`${where}.digest is invalid`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw invalid(`${where}.size is invalid`);
  const result: Descriptor = { mediaType, digest, size };
  if (typeof artifactType === 'string') result.artifactType = artifactType;
  if (isObject(annotations)) result.annotations = annotations as Record<string, string>;
  return result;
}

/** Layers a registry is not expected to hold (Windows foreign layers, OCI non-distributable layers). */
export function isNonDistributable(mediaType: string): boolean {
  return (
    mediaType.includes('.nondistributable.') ||
    mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
  );
}

/** Parses a manifest body; the Content-Type header and the body's mediaType must agree. */
export function parseManifest(contentType: string | undefined, body: Buffer): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (!isObject(doc)) throw invalid('manifest is not a JSON object');
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (declared && header && header !== declared && header !== 'application/json')
    throw invalid(`Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  let mediaType = declared ?? (header && header !== 'application/json' ? header : undefined);
  if (!mediaType) mediaType = Array.isArray(doc.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest;
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const parsed: ParsedManifest = { mediaType, blobs: [], children: [] };
  if (isObject(doc.annotations)) parsed.annotations = doc.annotations as Record<string, string>;
  if (typeof doc.artifactType === 'string') parsed.artifactType = doc.artifactType;
  if (mediaType.length > MAX_MEDIA_TYPE_LENGTH || (parsed.artifactType?.length ?? 0) > MAX_MEDIA_TYPE_LENGTH)
    throw invalid('media type too long');
  if (doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject');
  if (IMAGE_TYPES.has(mediaType)) {
    const config = descriptor(doc.config, 'config');
    parsed.config = config;
    parsed.blobs.push(config);
    if (doc.layers !== undefined && !Array.isArray(doc.layers)) throw invalid('layers must be an array');
    const layers = (doc.layers ?? []) as unknown[];
    if (mediaType === MEDIA_TYPES.dockerManifest && layers.length === 0)
      throw invalid('layers must not be empty');
    layers.forEach((layer, i) => {
      const d = descriptor(layer, `layers[${i}]`);
      if (!isNonDistributable(d.mediaType)) parsed.blobs.push(d);
    });
    parsed.artifactType ??= config.mediaType;
  } else if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    doc.manifests.forEach((m, i) => parsed.children.push(descriptor(m, `manifests[${i}]`)));
  } else {
    throw invalid(`unsupported manifest media type ${mediaType}`);
  }
  return parsed;
}

// Byte ranges: the `Content-Range: <start>-<end>` of a chunked upload PATCH, the `Range` header of
// a blob GET (RFC 9110, one range only), and the `Range: 0-<end>` an upload status reports.

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

const UPLOAD_RANGE = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/;

/** A PATCH Content-Range; undefined when malformed or when end < start. */
export function parseUploadRange(header: string): ByteRange | undefined {
  const m = UPLOAD_RANGE.exec(header.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  return end < start ? undefined : { start, end };
}

/** The Range header value an upload of `offset` bytes reports (distribution reports 0-0 when empty). */
export function uploadRangeHeader(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

export type RangeRequest = { kind: 'none' } | { kind: 'unsatisfiable' } | { kind: 'range'; range: ByteRange };

const BYTES_RANGE = /^bytes=(\d{0,15})-(\d{0,15})$/;

/**
 * A GET Range header against a blob of `size` bytes. Anything that is not one well-formed byte
 * range is ignored (the whole blob is served), as RFC 9110 allows; a range that starts past the
 * end, or ends before it starts, cannot be satisfied.
 */
export function parseRangeRequest(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const m = BYTES_RANGE.exec(header.trim());
  if (!m) return { kind: 'none' };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'none' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(size - suffix, 0), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}

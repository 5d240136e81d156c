// Minimal DER reader/writer and PEM helpers. The signing hot path assembles certificates from
// pre-encoded pieces (names and extensions come from @peculiar/x509) because a full ASN.1 object
// model round trip costs more than the signature itself.

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export class DerError extends Error {
  override name = 'DerError';
}

export function readTlv(buf: Uint8Array, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte DER tags are not supported');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported DER length');
    if (pos + n > limit) throw new DerError('truncated DER');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    pos += n;
  }
  const end = pos + len;
  if (end > limit) throw new DerError('truncated DER');
  return { tag, start: offset, contentStart: pos, end };
}

/** The TLVs directly inside a constructed value. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.contentStart;
  while (pos < parent.end) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function raw(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

export function content(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart);
}

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const SEQUENCE = 0x30;
export const BIT_STRING = 0x03;

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function integer(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  const pad = trimmed.length === 0 || trimmed[0]! & 0x80 ? Buffer.from([0]) : Buffer.alloc(0);
  return tlv(0x02, pad, trimmed.length === 0 ? Buffer.alloc(0) : trimmed);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, '0');
  const rest = `${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
}

/** BIT STRING with no unused bits. */
export function bitString(bytes: Uint8Array): Buffer {
  return tlv(BIT_STRING, Buffer.from([0]), bytes);
}

// ---- PEM ----

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** All DER blocks with the given label, in order. */
export function fromPemAll(pem: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) {
    if (m[1] === label) out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

export function fromPem(pem: string, label: string): Buffer {
  const [first] = fromPemAll(pem, label);
  if (!first) throw new DerError(`no ${label} PEM block found`);
  return first;
}

/** A certificate's DER bytes (as TLS hands them over) in PEM. */
export function certificateDerToPem(der: Uint8Array): string {
  return toPem('CERTIFICATE', der);
}

import { parseRangeRequest, parseUploadRange, uploadRangeHeader } from './ranges.js';

describe('upload Content-Range', () => {
  it('parses start-end, inclusive', () => {
    expect(parseUploadRange('0-99')).toEqual({ start: 0, end: 99 });
    expect(parseUploadRange('bytes=100-199')).toEqual({ start: 100, end: 199 });
    expect(parseUploadRange('bytes 5-5/10')).toEqual({ start: 5, end: 5 });
  });

  it.each(['', '5', '-5', '10-5', 'a-b', '1-2-3', '0-99999999999999999'])('refuses %j', (header) => {
    expect(parseUploadRange(header)).toBeUndefined();
  });

  it('reports the received bytes as 0-<last byte>, 0-0 when empty', () => {
    expect(uploadRangeHeader(0)).toBe('0-0');
    expect(uploadRangeHeader(1)).toBe('0-0');
    expect(uploadRangeHeader(1000)).toBe('0-999');
  });
});

describe('GET Range', () => {
  const size = 2000;
  it.each([
    ['bytes=500-1499', { start: 500, end: 1499 }],
    ['bytes=500-', { start: 500, end: 1999 }],
    ['bytes=-500', { start: 1500, end: 1999 }],
    ['bytes=-5000', { start: 0, end: 1999 }],
    ['bytes=1500-5000', { start: 1500, end: 1999 }],
  ])('%s', (header, range) => {
    expect(parseRangeRequest(header, size)).toEqual({ kind: 'range', range });
  });

  it.each(['bytes=500-0', 'bytes=2000-3000', 'bytes=-0'])('%s cannot be satisfied', (header) => {
    expect(parseRangeRequest(header, size)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([undefined, 'items=0-5', 'bytes=0-5,10-20', 'bytes=-'])('%s serves the whole blob', (header) => {
    expect(parseRangeRequest(header, size)).toEqual({ kind: 'none' });
  });
});

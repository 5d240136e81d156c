// Key ordering shared by the embedded store: etcd orders keys by their UTF-8 bytes, which is
// code point order; JavaScript's `<` compares UTF-16 code units, which differs for astral
// characters versus U+E000..U+FFFF, so surrogates are shifted above that block.
function fix(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c >= 0xd800 ? c + 0x2000 : c;
}

export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? fix(x) - fix(y) : x - y;
  }
  return a.length - b.length;
}

/** First index in sorted `keys` whose key is >= `key`. */
export function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid] as string, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** End (exclusive) of the run of keys starting with `prefix`, searching from `from`. */
export function prefixEnd(keys: readonly string[], prefix: string, from: number): number {
  if (prefix === '') return keys.length;
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string).startsWith(prefix)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

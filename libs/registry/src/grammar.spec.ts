import { checkDigest, isValidName, isValidTag, parseReference, parseRepositoryName } from './grammar.js';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

describe('repository names', () => {
  it.each(['library/busybox', 'a/b', 'my-org/my.repo', 'org/repo__x', 'ns/a--b'])('accepts %s', (name) => {
    expect(parseRepositoryName(name)).toMatchObject({ full: name });
  });

  it.each([
    '../etc/passwd',
    'ns/../x',
    'ns/%2e%2e',
    'NS/repo',
    'ns//repo',
    'ns/repo/',
    '/ns/repo',
    'ns/.repo',
    'ns/repo-',
    'ns/a___b',
    'ns/re\u0000po',
    'single',
    'a/b/c',
    `ns/${'a'.repeat(300)}`,
  ])('refuses %j', (name) => {
    expect(parseRepositoryName(name)).toBeUndefined();
  });

  it('caps the whole name at 255 characters', () => {
    expect(isValidName(`a/${'b'.repeat(253)}`)).toBe(true);
    expect(isValidName(`a/${'b'.repeat(254)}`)).toBe(false);
  });
});

describe('tags', () => {
  it.each(['latest', 'v1.0', '_x', 'A-b_c.d', 'x'.repeat(128)])('accepts %s', (tag) =>
    expect(isValidTag(tag)).toBe(true),
  );
  it.each(['', '.hidden', '-x', 'a/b', 'a:b', 'x'.repeat(129), '..'])('refuses %j', (tag) =>
    expect(isValidTag(tag)).toBe(false),
  );
});

describe('digests', () => {
  it('accepts sha256 and sha512 with lowercase hex of the right length', () => {
    expect(checkDigest(sha256)).toEqual({
      ok: true,
      digest: { algorithm: 'sha256', hex: 'a'.repeat(64), value: sha256 },
    });
    expect(checkDigest(sha512)).toMatchObject({ ok: true, digest: { algorithm: 'sha512' } });
  });

  it.each([
    ['sha256:abc', 'malformed'],
    [`sha256:${'A'.repeat(64)}`, 'malformed'],
    [`sha256:${'a'.repeat(63)}/`, 'malformed'],
    [`sha256:${'a'.repeat(128)}`, 'malformed'],
    ['sha256', 'malformed'],
    [':abc', 'malformed'],
    [`md5:${'a'.repeat(32)}`, 'unsupported'],
    [`sha384:${'a'.repeat(96)}`, 'unsupported'],
  ])('refuses %s as %s', (raw, reason) => {
    expect(checkDigest(raw)).toEqual({ ok: false, reason });
  });
});

describe('references', () => {
  it('is a digest when it has a colon, a tag otherwise', () => {
    expect(parseReference(sha256)).toMatchObject({ kind: 'digest' });
    expect(parseReference('v1')).toEqual({ kind: 'tag', tag: 'v1' });
    expect(parseReference('sha256:zz')).toBeUndefined();
    expect(parseReference('..')).toBeUndefined();
  });
});

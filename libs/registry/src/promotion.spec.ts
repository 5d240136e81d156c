import { ApiError } from '@orca/api';
import { checkTagTemplate, expandTagTemplate, parseRules, rulesMatch, unscannedFacts } from './promotion.js';

describe('promotion rules', () => {
  const rule = (field: string, operator: string, ...values: string[]) => ({ field, operator, values });

  it('matches tag rules with each operator', () => {
    const facts = unscannedFacts('release-1.2');
    expect(rulesMatch([rule('tag', 'eq', 'release-1.2')], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'sw', 'release-')], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'ew', '.2')], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'c', 'se-1')], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'oo', 'a', 'release-1.2')], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'noo', 'a', 'release-1.2')], facts)).toBe(false);
    expect(rulesMatch([rule('tag', 'sw', 'dev-')], facts)).toBe(false);
  });

  it('ANDs rules and treats unscanned images as having no vulnerabilities, licenses or packages', () => {
    const facts = unscannedFacts('v1');
    expect(rulesMatch([], facts)).toBe(true);
    expect(rulesMatch([rule('tag', 'eq', 'v1'), rule('vulnerability_critical', 'lte', '0')], facts)).toBe(
      true,
    );
    expect(rulesMatch([rule('tag', 'eq', 'v1'), rule('vulnerability_all', 'gt', '0')], facts)).toBe(false);
    expect(rulesMatch([rule('license.name', 'noo', 'GPL-3.0')], facts)).toBe(true);
    expect(rulesMatch([rule('package.name', 'oo', 'openssl')], facts)).toBe(false);
  });

  it('rejects unknown fields, operators not valid for a field, and non-numeric counts', () => {
    expect(parseRules([rule('tag', 'sw', 'x')])).toEqual([rule('tag', 'sw', 'x')]);
    for (const bad of [
      'tag',
      [rule('colour', 'eq', 'x')],
      [rule('tag', 'gt', '1')],
      [rule('vulnerability_all', 'gt', 'many')],
      [rule('tag', 'eq')],
      [{ field: 'tag', operator: 'eq', values: [1] }],
    ])
      expect(() => parseRules(bad)).toThrow(ApiError);
  });
});

describe('tag templates', () => {
  const at = new Date('2024-03-05T16:07:08.009Z'); // a Tuesday

  it('expands %n and the strftime-like symbols in UTC', () => {
    expect(expandTagTemplate('%n', 'v1', at)).toBe('v1');
    expect(expandTagTemplate('%n-%Y%m%d-%H%M%S', 'v1', at)).toBe('v1-20240305-160708');
    expect(expandTagTemplate('%A.%a.%w.%B.%b.%y.%I%p.%f.%Z.%j.%W', 'x', at)).toBe(
      'Tuesday.Tue.2.March.Mar.24.04PM.009000.UTC.065.10',
    );
    expect(expandTagTemplate('100%%', 'x', at)).toBe('100%%');
  });

  it('checks that a template is known and yields a valid tag', () => {
    expect(checkTagTemplate('%n-prod')).toBe('%n-prod');
    expect(() => checkTagTemplate('%q')).toThrow(ApiError);
    expect(() => checkTagTemplate('a b')).toThrow(ApiError);
    expect(() => checkTagTemplate('')).toThrow(ApiError);
  });
});

import { compareApiVersions, lowestApiVersion, splitVersion } from './version.js';

describe('API version prefixes', () => {
  it('splits /vX.YY/ off the path', () => {
    expect(splitVersion('/v1.41/containers/json')).toEqual({ version: '1.41', path: '/containers/json' });
    expect(splitVersion('/v1.24/_ping')).toEqual({ version: '1.24', path: '/_ping' });
    expect(splitVersion('/v1.41')).toEqual({ version: '1.41', path: '/' });
    expect(splitVersion('/containers/json')).toEqual({ path: '/containers/json' });
    expect(splitVersion('/volumes/v1.41')).toEqual({ path: '/volumes/v1.41' });
    expect(splitVersion('/v1/containers')).toEqual({ path: '/v1/containers' });
    expect(splitVersion('/vx.y/containers')).toEqual({ path: '/vx.y/containers' });
  });

  it('orders versions numerically and picks the lowest engine version', () => {
    expect(compareApiVersions('1.9', '1.41')).toBeLessThan(0);
    expect(compareApiVersions('1.41', '1.41')).toBe(0);
    expect(compareApiVersions('2.0', '1.50')).toBeGreaterThan(0);
    expect(lowestApiVersion(['1.41', '1.40', '1.43'])).toBe('1.40');
    expect(lowestApiVersion(['junk', '1.41'])).toBe('1.41');
    expect(lowestApiVersion([])).toBeUndefined();
  });
});

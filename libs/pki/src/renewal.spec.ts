import { renewalTime } from './index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('renewalTime', () => {
  it('stays within [50%, 80%] of validity from notBefore for any random value', () => {
    const cases: Array<[number, number]> = [
      [0, 90 * DAY + HOUR],
      [1_700_000_000_123, 2 * HOUR],
      [1_700_000_000_000, 61.5 * 60_000],
      [1_700_000_000_000, 90_000], // shorter than the minute granularity
    ];
    const randoms = [0, 1e-9, 0.25, 0.5, 0.999999999, 1];
    for (const [from, duration] of cases) {
      const nb = new Date(from);
      const na = new Date(from + duration);
      for (const r of [...randoms, ...Array.from({ length: 200 }, () => Math.random())]) {
        const at = renewalTime(nb, na, () => r).getTime() - from;
        expect(at).toBeGreaterThanOrEqual(duration * 0.5);
        expect(at).toBeLessThanOrEqual(duration * 0.8);
      }
    }
  });

  it('spreads renewals across the window in whole minutes', () => {
    const nb = new Date('2026-01-01T00:00:00Z');
    const na = new Date(nb.getTime() + 90 * DAY);
    const low = renewalTime(nb, na, () => 0).getTime() - nb.getTime();
    const high = renewalTime(nb, na, () => 0.9999999).getTime() - nb.getTime();
    expect(low).toBe(45 * DAY);
    expect(high).toBe(72 * DAY);
    const mid = renewalTime(nb, na).getTime() - nb.getTime();
    expect(mid % 60_000).toBe(0);
  });
});

// swarmkit ca/config.go CertLowerRotationRange / CertUpperRotationRange.
export const CERT_LOWER_ROTATION_RANGE = 0.5;
export const CERT_UPPER_ROTATION_RANGE = 0.8;

const MINUTE_MS = 60_000;

/**
 * When to renew a certificate: a uniformly random point between 50% and 80% of its validity,
 * counted from notBefore, picked in whole minutes like swarmkit's calculateRandomExpiry (spreading
 * renewals avoids certificate thundering herds). The bounds are rounded inwards so the result never
 * leaves [50%, 80%]; validities too short for whole minutes fall back to milliseconds.
 */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const from = notBefore.getTime();
  const duration = notAfter.getTime() - from;
  if (!(duration > 0)) return new Date(from);
  const lowMs = duration * CERT_LOWER_ROTATION_RANGE;
  const highMs = duration * CERT_UPPER_ROTATION_RANGE;
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  const lowMin = Math.ceil(lowMs / MINUTE_MS);
  const highMin = Math.floor(highMs / MINUTE_MS);
  if (highMin > lowMin) return new Date(from + (lowMin + Math.floor(r * (highMin - lowMin + 1))) * MINUTE_MS);
  return new Date(from + Math.ceil(lowMs + r * (highMs - lowMs)));
}

import { randomBytes } from 'node:crypto';

/** A SwarmKit-style identifier: 25 characters of base 36 from 128 random bits. */
export function newId(): string {
  return BigInt(`0x${randomBytes(16).toString('hex')}`)
    .toString(36)
    .padStart(25, '0')
    .slice(0, 25);
}

import { randomBytes } from 'node:crypto';
import { openSecret, SealError, sealSecret } from './index.js';

const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

describe('sealSecret / openSecret', () => {
  it('round-trips with a passphrase and with raw key bytes', () => {
    const sealed = sealSecret(PEM, 'correct horse battery staple');
    expect(sealed).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(openSecret(sealed, 'correct horse battery staple')).toBe(PEM);

    const kek = randomBytes(32);
    const sealedRaw = sealSecret('ünïcødé ✓', kek);
    expect(openSecret(sealedRaw, kek)).toBe('ünïcødé ✓');
    // Random salt and IV: sealing twice gives different blobs.
    expect(sealSecret(PEM, kek)).not.toBe(sealSecret(PEM, kek));
  });

  it('refuses a wrong KEK, tampering and foreign formats with SealError', () => {
    const kek = randomBytes(32);
    const sealed = sealSecret(PEM, kek);
    expect(() => openSecret(sealed, randomBytes(32))).toThrow(SealError);
    expect(() => openSecret(sealSecret(PEM, 'pass-one'), 'pass-two')).toThrow(SealError);
    expect(() => openSecret(sealed, 'a passphrase instead of the key')).toThrow(SealError);

    const parts = sealed.split(':');
    const ct = Buffer.from(parts[4]!, 'base64');
    ct[0] ^= 1;
    parts[4] = ct.toString('base64');
    expect(() => openSecret(parts.join(':'), kek)).toThrow(SealError);
    expect(() => openSecret(sealed.replace(/^v1/, 'v2'), kek)).toThrow(SealError);
    expect(() => openSecret('garbage', kek)).toThrow(SealError);
    expect(() => sealSecret(PEM, Buffer.alloc(4))).toThrow(SealError);
  });
});

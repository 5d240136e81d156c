import { createHash } from 'node:crypto';
import {
  caBundleDigest,
  caDigestMatches,
  CertificateAuthority,
  createRootCa,
  generateJoinToken,
  JoinTokenFormatError,
  matchJoinToken,
  parseJoinToken,
} from './index.js';

const TOKEN_RE = /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/;

describe('join tokens', () => {
  let bundle: string;

  beforeAll(async () => {
    bundle = new CertificateAuthority(await createRootCa({ commonName: 'swarm-ca' })).bundlePem;
  });

  it('have the swarmkit v1 format and pin the exact bundle bytes', () => {
    const token = generateJoinToken(bundle);
    expect(token).toMatch(TOKEN_RE);
    const parsed = parseJoinToken(token);
    expect(parsed.version).toBe(1);
    expect(parsed.digest).toEqual(createHash('sha256').update(bundle).digest());
    expect(parsed.secret).toBe(token.slice(-25));
    // The digest field is the base36 SHA-256, zero-padded to 50.
    const digest = BigInt(`0x${caBundleDigest(bundle).toString('hex')}`)
      .toString(36)
      .padStart(50, '0');
    expect(token.split('-')[2]).toBe(digest);
    expect(caDigestMatches(token, bundle)).toBe(true);
  });

  it('do not match a changed bundle', () => {
    const token = generateJoinToken(bundle);
    expect(caDigestMatches(token, `${bundle}\n`)).toBe(false);
    expect(caDigestMatches(token, bundle.replace(/\n/g, '\r\n'))).toBe(false);
    expect(caDigestMatches(token, Buffer.from(bundle))).toBe(true);
  });

  it('worker and manager tokens share the digest and differ in secret', () => {
    const worker = generateJoinToken(bundle);
    const manager = generateJoinToken(bundle);
    expect(worker.split('-')[2]).toBe(manager.split('-')[2]);
    expect(worker).not.toBe(manager);
  });

  it('zero-pads small values', () => {
    // A digest and secret with leading zero digits still parse back to 32 bytes.
    const token = `SWMTKN-1-${'0'.repeat(49)}1-${'0'.repeat(24)}z`;
    const parsed = parseJoinToken(token);
    expect(parsed.digest).toEqual(Buffer.from(`${'0'.repeat(63)}1`, 'hex'));
  });

  it('matchJoinToken picks the role, or nothing', () => {
    const tokens = { worker: generateJoinToken(bundle), manager: generateJoinToken(bundle) };
    expect(matchJoinToken(tokens.worker, tokens)).toBe('swarm-worker');
    expect(matchJoinToken(tokens.manager, tokens)).toBe('swarm-manager');
    expect(matchJoinToken(generateJoinToken(bundle), tokens)).toBeUndefined();
    expect(matchJoinToken(tokens.worker.slice(0, -1), tokens)).toBeUndefined();
    expect(matchJoinToken('', tokens)).toBeUndefined();
    expect(matchJoinToken(undefined as unknown as string, tokens)).toBeUndefined();
  });

  it('refuses malformed tokens with JoinTokenFormatError', () => {
    const good = generateJoinToken(bundle);
    const [, , digest, secret] = good.split('-');
    const bad = [
      '',
      'SWMTKN',
      'SWMTKN-1-abc-def',
      `SWMTKN-2-1-${digest}-${secret}`,
      `SWMTKN-3-${digest}-${secret}`,
      `XWMTKN-1-${digest}-${secret}`,
      `SWMTKN-1-${digest}-${secret}-extra`,
      `SWMTKN-1-${digest!.slice(1)}-${secret}`,
      `SWMTKN-1-${digest}-${secret!.slice(1)}`,
      `SWMTKN-1-${digest!.toUpperCase()}-${secret}`,
      `SWMTKN-1-${digest!.slice(0, -1)}_-${secret}`,
      `SWMTKN-1-${'z'.repeat(50)}-${secret}`, // > 2^256
    ];
    for (const token of bad) {
      expect(() => parseJoinToken(token)).toThrow(JoinTokenFormatError);
    }
    expect(() => caDigestMatches('SWMTKN-1-x-y', bundle)).toThrow(JoinTokenFormatError);
  });
});

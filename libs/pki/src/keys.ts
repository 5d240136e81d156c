import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { children, content, DerError, fromPem, fromPemAll, raw, readTlv, SEQUENCE, toPem } from './der.js';
import { CsrInvalidError } from './errors.js';
import { createCsrDer } from './x509.js';

export interface KeyPairPem {
  /** PKCS#8 `PRIVATE KEY` PEM. */
  privateKeyPem: string;
  /** SPKI `PUBLIC KEY` PEM. */
  publicKeyPem: string;
}

const generateKeyPairAsync = promisify(nodeGenerateKeyPair);

/** A fresh ECDSA P-256 key pair (what cfssl's default key request gives a swarm node). */
export async function generateKeyPair(): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * PKCS#10 CSR for an ECDSA P-256 key. The subject is informational only: the CA takes just the
 * public key (swarmkit's signing policy whitelists PublicKey, PublicKeyAlgorithm, SignatureAlgorithm).
 */
export async function createCsr(opts: {
  privateKeyPem: string;
  publicKeyPem?: string;
  commonName?: string;
}): Promise<string> {
  const privateKey = createPrivateKey(opts.privateKeyPem);
  assertP256(privateKey, 'CSR key');
  const publicKey = createPublicKey(opts.publicKeyPem ?? privateKey);
  const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  if (!derived.equals(spki)) throw new Error('publicKeyPem does not belong to privateKeyPem');
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  return toPem('CERTIFICATE REQUEST', await createCsrDer(pkcs8, spki, opts.commonName ?? 'orca-node'));
}

export function assertP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${what} must be an ECDSA P-256 key`);
  }
}

const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * Keys a leaf certificate may carry: swarmkit's accepted set (EC P-256/384/521, RSA >= 2048).
 * Returns the canonical SPKI DER.
 */
export function acceptedPublicKey(key: KeyObject, fail: (msg: string) => Error): Buffer {
  if (key.type !== 'public') throw fail('not a public key');
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    if (!EC_CURVES.has(details.namedCurve ?? ''))
      throw fail(`unsupported EC curve ${details.namedCurve ?? '?'}`);
  } else if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw fail('RSA keys must be at least 2048 bits');
  } else {
    throw fail(`unsupported public key type ${type ?? '?'}`);
  }
  return key.export({ type: 'spki', format: 'der' });
}

// Signature algorithms swarmkit accepts (validateSignatureAlgorithm): OID content bytes (hex) → hash.
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; key: 'ec' | 'rsa' }> = {
  '2a8648ce3d040302': { hash: 'sha256', key: 'ec' }, // ecdsa-with-SHA256
  '2a8648ce3d040303': { hash: 'sha384', key: 'ec' }, // ecdsa-with-SHA384
  '2a8648ce3d040304': { hash: 'sha512', key: 'ec' }, // ecdsa-with-SHA512
  '2a864886f70d01010b': { hash: 'sha256', key: 'rsa' }, // sha256WithRSAEncryption
  '2a864886f70d01010c': { hash: 'sha384', key: 'rsa' }, // sha384WithRSAEncryption
  '2a864886f70d01010d': { hash: 'sha512', key: 'rsa' }, // sha512WithRSAEncryption
};

// Canonical DER SPKI of an uncompressed P-256 key is this prefix + the 64-byte point. Decoding DER
// keys through OpenSSL 3 and re-exporting them dominates issuance time, so the common case builds
// the key from its coordinates (JWK import; the point is still checked to be on the curve).
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');

function p256PublicKey(spkiDer: Buffer): KeyObject | undefined {
  if (
    spkiDer.length !== P256_SPKI_PREFIX.length + 64 ||
    !spkiDer.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)
  ) {
    return undefined;
  }
  const point = spkiDer.subarray(P256_SPKI_PREFIX.length);
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(0, 32).toString('base64url'),
      y: point.subarray(32).toString('base64url'),
    },
    format: 'jwk',
  });
}

/** Public key and its canonical SPKI DER, for a key swarmkit would accept. */
function importSpki(spkiDer: Buffer, fail: (msg: string) => Error): { key: KeyObject; canonical: Buffer } {
  let key: KeyObject | undefined;
  try {
    key = p256PublicKey(spkiDer);
    if (key) return { key, canonical: Buffer.from(spkiDer) };
    key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch {
    throw fail('unreadable public key');
  }
  return { key, canonical: acceptedPublicKey(key, fail) };
}

export interface VerifiedCsr {
  /** Canonical SPKI DER of the requested key. */
  publicKeySpkiDer: Buffer;
  publicKeySpkiPem: string;
}

/**
 * Parses a PEM (or DER) PKCS#10 request and checks its self-signature with node:crypto, so a CSR
 * whose public key was swapped after signing is refused. Throws CsrInvalidError.
 */
export function verifyCsr(csr: string | Uint8Array): VerifiedCsr {
  const invalid = (msg: string) => new CsrInvalidError(`invalid CSR: ${msg}`);
  let der: Buffer;
  try {
    der = typeof csr === 'string' ? fromPem(csr, 'CERTIFICATE REQUEST') : Buffer.from(csr);
  } catch {
    throw invalid('no CERTIFICATE REQUEST PEM block');
  }
  let info: Buffer, spkiDer: Buffer, sigAlgHex: string, signature: Buffer;
  try {
    const top = readTlv(der);
    if (top.tag !== SEQUENCE || top.end !== der.length) throw new DerError('not a SEQUENCE');
    const [infoTlv, algTlv, sigTlv, ...extra] = children(der, top);
    if (!infoTlv || !algTlv || !sigTlv || extra.length > 0) throw new DerError('wrong number of fields');
    const infoFields = children(der, infoTlv);
    const spkiTlv = infoFields[2];
    if (infoTlv.tag !== SEQUENCE || !spkiTlv || spkiTlv.tag !== SEQUENCE) throw new DerError('bad info');
    const [oidTlv] = children(der, algTlv);
    if (!oidTlv || oidTlv.tag !== 0x06 || sigTlv.tag !== 0x03) throw new DerError('bad signature fields');
    const bits = content(der, sigTlv);
    if (bits.length < 2 || bits[0] !== 0) throw new DerError('bad signature bit string');
    info = raw(der, infoTlv);
    spkiDer = raw(der, spkiTlv);
    sigAlgHex = content(der, oidTlv).toString('hex');
    signature = bits.subarray(1);
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : 'malformed');
  }
  const alg = SIGNATURE_ALGORITHMS[sigAlgHex];
  if (!alg) throw invalid('unsupported signature algorithm');
  const { key, canonical } = importSpki(spkiDer, invalid);
  if (key.asymmetricKeyType !== alg.key) throw invalid('signature algorithm does not match the key type');
  let ok = false;
  try {
    ok = nodeVerify(alg.hash, info, key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw invalid('signature does not verify with the public key it contains');
  return { publicKeySpkiDer: canonical, publicKeySpkiPem: toPem('PUBLIC KEY', canonical) };
}

/** SPKI DER from a PEM public key (SPKI, or anything node:crypto reads, e.g. a certificate). */
export function spkiDerFromPem(
  publicKeyPem: string,
  fail: (msg: string) => Error = (m) => new Error(m),
): Buffer {
  const [spki] = fromPemAll(publicKeyPem, 'PUBLIC KEY');
  if (spki) return importSpki(spki, fail).canonical;
  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
  } catch {
    throw fail('unreadable public key PEM');
  }
  return acceptedPublicKey(key, fail);
}

/** Key id for account public keys: hex SHA-256 of the DER SubjectPublicKeyInfo. */
export function publicKeyFingerprint(spkiPem: string): string {
  const der = createPublicKey(spkiPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function subjectKeyIdHex(spkiDer: Uint8Array): string {
  const top = readTlv(spkiDer);
  const [, bits] = children(spkiDer, top);
  if (!bits || bits.tag !== 0x03) throw new DerError('bad SubjectPublicKeyInfo');
  return createHash('sha1').update(content(spkiDer, bits).subarray(1)).digest('hex');
}

import { X509Certificate as NodeX509 } from 'node:crypto';
import { fromPem, fromPemAll, toPem } from './der.js';
import { CertificateVerifyError } from './errors.js';
import { certificateDetails } from './x509.js';

export interface ParsedCertificate {
  subject: { CN?: string; OU?: string; O?: string };
  issuerCN?: string;
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex of the serial's magnitude. */
  serialNumber: string;
  publicKeySpkiPem: string;
  /** DNS names then IP addresses, as encoded. */
  sans: string[];
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
  /** e.g. ['digitalSignature', 'keyEncipherment']. */
  keyUsages: string[];
  /** 'serverAuth' / 'clientAuth' (other usages as OIDs). */
  extendedKeyUsages: string[];
  subjectKeyId?: string;
  authorityKeyId?: string;
}

/** Parses the first CERTIFICATE in a PEM text. */
export function parseCertificate(pem: string): ParsedCertificate {
  const { publicKeySpkiDer, ...rest } = certificateDetails(fromPem(pem, 'CERTIFICATE'));
  return { ...rest, publicKeySpkiPem: toPem('PUBLIC KEY', publicKeySpkiDer) };
}

/**
 * Checks that the first certificate in certPem was issued and signed by one of the certificates in
 * caBundlePem and that both are inside their validity window at `now`. Returns true or throws
 * CertificateVerifyError with reason 'malformed' | 'issuer' | 'signature' | 'not-yet-valid' |
 * 'expired' | 'ca-not-valid'. Leaf-only (no intermediates), which is all swarmkit issues.
 */
export function verifyCertificate(certPem: string, caBundlePem: string, now: Date = new Date()): true {
  let leaf: NodeX509;
  let leafDates: { notBefore: Date; notAfter: Date };
  let cas: Array<{ cert: NodeX509; notBefore: Date; notAfter: Date }>;
  try {
    const leafDer = fromPem(certPem, 'CERTIFICATE');
    leaf = new NodeX509(leafDer);
    leafDates = certificateDetails(leafDer);
    cas = fromPemAll(caBundlePem, 'CERTIFICATE').map((der) => ({
      cert: new NodeX509(der),
      ...certificateDetails(der),
    }));
  } catch (err) {
    throw new CertificateVerifyError(
      'malformed',
      `cannot parse certificate: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (cas.length === 0) throw new CertificateVerifyError('malformed', 'CA bundle holds no certificate');

  // checkIssued compares issuer/subject names and AKI/SKI; then the signature decides.
  const candidates = cas.filter((ca) => ca.cert.ca && leaf.checkIssued(ca.cert));
  if (candidates.length === 0) {
    throw new CertificateVerifyError('issuer', `certificate issuer "${leaf.issuer}" is not in the CA bundle`);
  }
  const signer = candidates.find((ca) => leaf.verify(ca.cert.publicKey));
  if (!signer)
    throw new CertificateVerifyError('signature', 'certificate signature does not verify with the CA key');

  const t = now.getTime();
  if (t < leafDates.notBefore.getTime()) {
    throw new CertificateVerifyError(
      'not-yet-valid',
      `certificate is not valid before ${leafDates.notBefore.toISOString()}`,
    );
  }
  if (t > leafDates.notAfter.getTime()) {
    throw new CertificateVerifyError('expired', `certificate expired at ${leafDates.notAfter.toISOString()}`);
  }
  if (t < signer.notBefore.getTime() || t > signer.notAfter.getTime()) {
    throw new CertificateVerifyError(
      'ca-not-valid',
      'the issuing CA certificate is outside its validity window',
    );
  }
  return true;
}

/** Boolean form of verifyCertificate. */
export function isCertificateValid(certPem: string, caBundlePem: string, now?: Date): boolean {
  try {
    return verifyCertificate(certPem, caBundlePem, now);
  } catch (err) {
    if (err instanceof CertificateVerifyError) return false;
    throw err;
  }
}

// A key pair and a certificate for it from a test CA: the serving and client identities of tests
// that run real TLS on loopback.
import { generateKeyPair, isCertificateValid, type CertificateAuthority } from '@orca/pki';

export interface TestIdentity {
  cert: string;
  key: string;
}

/** A server certificate (usable as a client certificate too) for `commonName` and `hosts`. */
export async function issueTestIdentity(
  ca: CertificateAuthority,
  commonName: string,
  hosts: string[] = [],
): Promise<TestIdentity> {
  const keys = await generateKeyPair();
  const issued = await ca.issueServerCertificate({ publicKeyPem: keys.publicKeyPem, commonName, hosts });
  return { cert: issued.certPem, key: keys.privateKeyPem };
}

/** A webhook's trustedCaller for tests: whether a client certificate chains to `bundlePem`. */
export function signedBy(bundlePem: string): (certificatePem: string) => Promise<boolean> {
  return async (certificatePem) => isCertificateValid(certificatePem, bundlePem);
}

// The only module of this lib that loads @peculiar/x509; it needs the Reflect metadata API first
// (it resolves its ASN.1 providers through tsyringe).
import 'reflect-metadata';
import * as px from '@peculiar/x509';
import { isIP } from 'node:net';
import { webcrypto } from 'node:crypto';

type CsrParams = Parameters<typeof px.Pkcs10CertificateRequestGenerator.create>;

// Node's WebCrypto, typed the way @peculiar/x509 expects (its d.ts names the DOM `Crypto`).
const nodeWebCrypto = webcrypto as unknown as NonNullable<CsrParams[1]>;

export type NameAttribute = 'O' | 'OU' | 'CN';

/** DER Name in Go's pkix order (O, OU, CN), so `O=…, OU=…, CN=…` reads like swarmkit's certificates. */
export function encodeName(fields: Partial<Record<NameAttribute, string>>): Buffer {
  const json: Array<Record<string, string[]>> = [];
  for (const key of ['O', 'OU', 'CN'] as const) {
    const value = fields[key];
    if (value !== undefined) json.push({ [key]: [value] });
  }
  return Buffer.from(new px.Name(json).toArrayBuffer());
}

export function extensionDer(ext: px.Extension): Buffer {
  return Buffer.from(ext.rawData);
}

export const KeyUsage = px.KeyUsageFlags;
export const ExtUsage = {
  serverAuth: px.ExtendedKeyUsage.serverAuth,
  clientAuth: px.ExtendedKeyUsage.clientAuth,
};

export function keyUsageExtension(flags: px.KeyUsageFlags): Buffer {
  return extensionDer(new px.KeyUsagesExtension(flags, true));
}

export function extKeyUsageExtension(usages: string[]): Buffer {
  return extensionDer(new px.ExtendedKeyUsageExtension(usages, false));
}

export function basicConstraintsExtension(ca: boolean): Buffer {
  return extensionDer(new px.BasicConstraintsExtension(ca, undefined, true));
}

export function subjectKeyIdExtension(keyIdHex: string): Buffer {
  return extensionDer(new px.SubjectKeyIdentifierExtension(keyIdHex, false));
}

export function authorityKeyIdExtension(keyIdHex: string): Buffer {
  return extensionDer(new px.AuthorityKeyIdentifierExtension(keyIdHex, false));
}

/** Split hosts into DNS and IP SANs (DNS first, as Go's x509 encodes them); duplicates dropped. */
export function sanNames(hosts: readonly string[]): Array<{ type: 'dns' | 'ip'; value: string }> {
  const seen = new Set<string>();
  const dns: string[] = [];
  const ips: string[] = [];
  for (const h of hosts) {
    const host = h.trim();
    if (!host || seen.has(host)) continue;
    seen.add(host);
    (isIP(host) ? ips : dns).push(host);
  }
  return [
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ];
}

export function subjectAltNameExtension(hosts: readonly string[]): Buffer | undefined {
  const names = sanNames(hosts);
  if (names.length === 0) return undefined;
  return extensionDer(new px.SubjectAlternativeNameExtension(names, false));
}

export interface CertificateDetails {
  subject: { CN?: string; OU?: string; O?: string };
  issuerCN?: string;
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex, no leading zero padding beyond what the DER integer needs. */
  serialNumber: string;
  publicKeySpkiDer: Buffer;
  sans: string[];
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
  keyUsages: string[];
  extendedKeyUsages: string[];
  subjectKeyId?: string;
  authorityKeyId?: string;
}

const KEY_USAGE_NAMES: Array<[px.KeyUsageFlags, string]> = [
  [px.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [px.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [px.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [px.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [px.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [px.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [px.KeyUsageFlags.cRLSign, 'cRLSign'],
  [px.KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [px.KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

const EKU_NAMES: Record<string, string> = {
  [px.ExtendedKeyUsage.serverAuth]: 'serverAuth',
  [px.ExtendedKeyUsage.clientAuth]: 'clientAuth',
};

/** Parsed certificates by their DER bytes: bundle and node certificates are parsed on every
 *  request (the same few certificates), and @peculiar/x509 parsing is milliseconds of CPU. */
const parsedDetails = new Map<string, CertificateDetails>();
const PARSED_DETAILS_LIMIT = 512;

/** The details of one DER certificate (each caller gets its own copy). */
export function certificateDetails(der: Uint8Array): CertificateDetails {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let details = parsedDetails.get(key);
  if (!details) {
    details = parseDetails(der);
    if (parsedDetails.size >= PARSED_DETAILS_LIMIT) parsedDetails.delete(parsedDetails.keys().next().value!);
    parsedDetails.set(key, details);
  }
  return {
    ...details,
    subject: { ...details.subject },
    notBefore: new Date(details.notBefore),
    notAfter: new Date(details.notAfter),
    publicKeySpkiDer: Buffer.from(details.publicKeySpkiDer),
    sans: [...details.sans],
    dnsNames: [...details.dnsNames],
    ipAddresses: [...details.ipAddresses],
    keyUsages: [...details.keyUsages],
    extendedKeyUsages: [...details.extendedKeyUsages],
  };
}

function parseDetails(der: Uint8Array): CertificateDetails {
  const cert = new px.X509Certificate(der);
  const field = (name: px.Name, key: string) => name.getField(key)[0];
  const san = cert.getExtension(px.SubjectAlternativeNameExtension);
  const items = san?.names.items ?? [];
  const dnsNames = items.filter((i) => i.type === 'dns').map((i) => i.value);
  const ipAddresses = items.filter((i) => i.type === 'ip').map((i) => i.value);
  const ku = cert.getExtension(px.KeyUsagesExtension);
  const eku = cert.getExtension(px.ExtendedKeyUsageExtension);
  const bc = cert.getExtension(px.BasicConstraintsExtension);
  const ski = cert.getExtension(px.SubjectKeyIdentifierExtension);
  const aki = cert.getExtension(px.AuthorityKeyIdentifierExtension);
  return {
    subject: {
      CN: field(cert.subjectName, 'CN'),
      OU: field(cert.subjectName, 'OU'),
      O: field(cert.subjectName, 'O'),
    },
    issuerCN: field(cert.issuerName, 'CN'),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    serialNumber: cert.serialNumber.toLowerCase(),
    publicKeySpkiDer: Buffer.from(cert.publicKey.rawData),
    sans: items.filter((i) => i.type === 'dns' || i.type === 'ip').map((i) => i.value),
    dnsNames,
    ipAddresses,
    isCa: bc?.ca ?? false,
    keyUsages: ku ? KEY_USAGE_NAMES.filter(([flag]) => (ku.usages & flag) !== 0).map(([, n]) => n) : [],
    extendedKeyUsages: (eku?.usages ?? []).map((u) => EKU_NAMES[String(u)] ?? String(u)),
    subjectKeyId: ski?.keyId.toLowerCase(),
    authorityKeyId: aki?.keyId?.toLowerCase(),
  };
}

/** PKCS#10 request signed with ECDSA P-256 / SHA-256 through WebCrypto. */
export async function createCsrDer(
  privateKeyPkcs8: Uint8Array,
  publicKeySpki: Uint8Array,
  commonName: string,
): Promise<Buffer> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const subtle = webcrypto.subtle;
  const [privateKey, publicKey] = await Promise.all([
    subtle.importKey('pkcs8', privateKeyPkcs8, alg, false, ['sign']),
    subtle.importKey('spki', publicKeySpki, alg, true, ['verify']),
  ]);
  const csr = await px.Pkcs10CertificateRequestGenerator.create(
    {
      name: [{ CN: [commonName] }],
      keys: { privateKey, publicKey } as CsrParams[0]['keys'],
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as CsrParams[0]['signingAlgorithm'],
    },
    nodeWebCrypto,
  );
  return Buffer.from(csr.rawData);
}

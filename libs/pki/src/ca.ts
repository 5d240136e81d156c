import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as nodeSign,
  X509Certificate as NodeX509,
  type KeyObject,
} from 'node:crypto';
import { bitString, children, fromPemAll, integer, raw, readTlv, SEQUENCE, time, tlv, toPem } from './der.js';
import { CertificateValidityError, CsrInvalidError } from './errors.js';
import { assertP256, generateKeyPair, spkiDerFromPem, subjectKeyIdHex, verifyCsr } from './keys.js';
import {
  authorityKeyIdExtension,
  basicConstraintsExtension,
  certificateDetails,
  encodeName,
  extKeyUsageExtension,
  ExtUsage,
  KeyUsage,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdExtension,
} from './x509.js';

// swarmkit ca/config.go constants.
export const MANAGER_ROLE = 'swarm-manager';
export const WORKER_ROLE = 'swarm-worker';
export const CA_ROLE = 'swarm-ca';
export const DEFAULT_ROOT_CN = 'swarm-ca';
export const CLIENT_ROOT_CN = 'UCP Client Root CA';
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** DefaultNodeCertExpiration = 2160h. */
export const DEFAULT_NODE_CERT_VALIDITY_MS = 90 * DAY_MS;
/** MinNodeCertExpiration = 1h. */
export const MIN_NODE_CERT_VALIDITY_MS = HOUR_MS;
/** CertBackdate: notBefore is set this far in the past to absorb clock skew. */
export const CERT_BACKDATE_MS = HOUR_MS;
/** UCP client bundles are valid for 10 years (reference ucp-api.md §3.2). */
export const DEFAULT_CLIENT_CERT_VALIDITY_MS = 10 * 365 * DAY_MS;
/** Not documented for UCP; long-lived like client bundles. */
export const DEFAULT_SERVER_CERT_VALIDITY_MS = 10 * 365 * DAY_MS;

export type NodeRole = typeof MANAGER_ROLE | typeof WORKER_ROLE;

export interface CaMaterial {
  certPem: string;
  /** PKCS#8 (or SEC1) PEM private key. */
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex. */
  serialNumber: string;
}

// ecdsa-with-SHA256 AlgorithmIdentifier (no parameters) and `[0] INTEGER 2` (v3).
const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
const VERSION_V3 = Buffer.from('a003020102', 'hex');

interface CertificateFields {
  issuerDer: Buffer;
  subjectDer: Buffer;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function randomSerial(): Buffer {
  for (;;) {
    const serial = randomBytes(16);
    if (serial.some((b) => b !== 0)) return serial;
  }
}

/** Assembles the TBSCertificate and signs it with node:crypto (DER ECDSA-Sig-Value, as X.509 wants). */
function signCertificate(fields: CertificateFields, key: KeyObject): { der: Buffer; serialHex: string } {
  const serial = randomSerial();
  const tbs = tlv(
    SEQUENCE,
    VERSION_V3,
    integer(serial),
    ECDSA_SHA256,
    fields.issuerDer,
    tlv(SEQUENCE, time(fields.notBefore), time(fields.notAfter)),
    fields.subjectDer,
    fields.spkiDer,
    tlv(0xa3, tlv(SEQUENCE, ...fields.extensions)),
  );
  const signature = nodeSign('sha256', tbs, key);
  // Hex of the integer's magnitude, as parsers print it back.
  const serialHex = serial.subarray(serial.findIndex((b) => b !== 0)).toString('hex');
  return { der: tlv(SEQUENCE, tbs, ECDSA_SHA256, bitString(signature)), serialHex };
}

/** Second-precision window (X.509 times have no milliseconds), backdated like cfssl/swarmkit. */
function validityWindow(now: Date | undefined, validityMs: number): { notBefore: Date; notAfter: Date } {
  const base = Math.floor((now ?? new Date()).getTime() / 1000) * 1000;
  return {
    notBefore: new Date(base - CERT_BACKDATE_MS),
    notAfter: new Date(base + Math.floor(validityMs / 1000) * 1000),
  };
}

function requirePositiveValidity(validityMs: number): void {
  if (!Number.isFinite(validityMs) || validityMs < 1000) {
    throw new CertificateValidityError('certificate validity must be at least one second');
  }
}

/** Subject DER of a certificate, byte for byte, so issuer names match exactly. */
function subjectDerOf(certDer: Buffer): Buffer {
  const cert = readTlv(certDer);
  const [tbs] = children(certDer, cert);
  if (!tbs) throw new Error('bad certificate');
  const fields = children(certDer, tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // explicit version present
  const subject = fields[offset + 4];
  if (!subject) throw new Error('bad certificate');
  return raw(certDer, subject);
}

export interface CreateRootCaOptions {
  commonName: string;
  organization?: string;
  validityYears?: number;
  now?: Date;
}

/**
 * Self-signed ECDSA P-256 root (swarmkit: CN `swarm-ca`, 20 years; UCP client root: CN
 * `UCP Client Root CA`). Returns canonical PEM (LF line ends, trailing newline) and a PKCS#8 key.
 */
export async function createRootCa(opts: CreateRootCaOptions): Promise<CaMaterial> {
  const years = opts.validityYears ?? 20;
  if (!(years > 0)) throw new CertificateValidityError('root CA validity must be positive');
  const { privateKeyPem, publicKeyPem } = await generateKeyPair();
  const key = createPrivateKey(privateKeyPem);
  const spkiDer = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  const name = encodeName({ O: opts.organization, CN: opts.commonName });
  const { der } = signCertificate(
    {
      issuerDer: name,
      subjectDer: name,
      spkiDer,
      ...validityWindow(opts.now, years * 365 * DAY_MS),
      extensions: [
        keyUsageExtension(KeyUsage.keyCertSign | KeyUsage.cRLSign),
        basicConstraintsExtension(true),
        subjectKeyIdExtension(subjectKeyIdHex(spkiDer)),
      ],
    },
    key,
  );
  return { certPem: toPem('CERTIFICATE', der), keyPem: privateKeyPem };
}

export interface IssueNodeCertificateOptions {
  csrPem: string;
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  /** Extra DNS names or IP addresses (IPs become IP SANs). */
  hosts?: string[];
  /** Requested expiry (swarm `--cert-expiry`); default 90 days, minimum 1h. */
  validityMs?: number;
  now?: Date;
}

export interface IssueClientCertificateOptions {
  /** SPKI PEM of the user's key; give this or csrPem. */
  publicKeyPem?: string;
  csrPem?: string;
  /** The username. */
  commonName: string;
  /** UCP instance id, giving O=`Orca: <instanceId>`. */
  instanceId: string;
  validityMs?: number;
  now?: Date;
}

export interface IssueServerCertificateOptions {
  publicKeyPem?: string;
  csrPem?: string;
  commonName: string;
  hosts: string[];
  organization?: string;
  validityMs?: number;
  now?: Date;
}

/**
 * A loaded CA (cluster root or client root). Holds the parsed signing key so issuance is a
 * synchronous node:crypto signature; the methods are async to leave room for an off-thread signer.
 */
export class CertificateAuthority {
  /** Canonical PEM of the signing certificate. */
  readonly certPem: string;
  /** Exact bytes the managers serve as the CA bundle (GetRootCACertificate); hashed into join tokens. */
  readonly bundlePem: string;
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectKeyId: string;
  private readonly key: KeyObject;
  private readonly issuerDer: Buffer;
  private readonly nodeExtensions: Buffer[];
  private readonly clientExtensions: Buffer[];
  private readonly serverExtensions: Buffer[];

  constructor(material: CaMaterial) {
    const ders = fromPemAll(material.certPem, 'CERTIFICATE');
    const certDer = ders[0];
    if (!certDer) throw new Error('CA certPem holds no CERTIFICATE');
    const cert = new NodeX509(certDer);
    if (!cert.ca) throw new Error('CA certificate lacks basicConstraints CA:TRUE');
    this.key = createPrivateKey(material.keyPem);
    assertP256(this.key, 'CA key');
    const certSpki = cert.publicKey.export({ type: 'spki', format: 'der' });
    const keySpki = createPublicKey(this.key).export({ type: 'spki', format: 'der' });
    if (!certSpki.equals(keySpki)) throw new Error('CA key does not match the CA certificate');

    const details = certificateDetails(certDer);
    this.commonName = details.subject.CN;
    this.notBefore = details.notBefore;
    this.notAfter = details.notAfter;
    this.subjectKeyId = details.subjectKeyId ?? subjectKeyIdHex(certSpki);
    this.certPem = toPem('CERTIFICATE', certDer);
    this.bundlePem = ders.map((d) => toPem('CERTIFICATE', d)).join('');
    this.issuerDer = subjectDerOf(certDer);

    // Fixed extensions are encoded once; only SKI and SANs vary per certificate.
    const leafUsage = keyUsageExtension(KeyUsage.digitalSignature | KeyUsage.keyEncipherment);
    const notCa = basicConstraintsExtension(false);
    const aki = authorityKeyIdExtension(this.subjectKeyId);
    const bothAuth = extKeyUsageExtension([ExtUsage.serverAuth, ExtUsage.clientAuth]);
    this.nodeExtensions = [leafUsage, bothAuth, notCa, aki];
    this.serverExtensions = [leafUsage, bothAuth, notCa, aki];
    this.clientExtensions = [leafUsage, extKeyUsageExtension([ExtUsage.clientAuth]), notCa, aki];
  }

  static async load(material: CaMaterial): Promise<CertificateAuthority> {
    return new CertificateAuthority(material);
  }

  /** `sha256:<hex>` of bundlePem, as `docker swarm ca` prints the root digest. */
  get digest(): string {
    return `sha256:${createHash('sha256').update(this.bundlePem, 'utf8').digest('hex')}`;
  }

  /**
   * swarmkit signNodeCert: only the CSR's public key is used; CN=nodeId, OU=role, O=clusterId,
   * SANs [role, nodeId] (+ swarm-ca for managers) + hosts; digitalSignature+keyEncipherment;
   * serverAuth+clientAuth; notBefore now-1h, notAfter now+validity.
   */
  async issueNodeCertificate(opts: IssueNodeCertificateOptions): Promise<IssuedCertificate> {
    if (opts.role !== MANAGER_ROLE && opts.role !== WORKER_ROLE)
      throw new TypeError(`unknown node role ${String(opts.role)}`);
    requireNonEmpty(opts.nodeId, 'nodeId');
    requireNonEmpty(opts.clusterId, 'clusterId');
    const validityMs = opts.validityMs ?? DEFAULT_NODE_CERT_VALIDITY_MS;
    if (!Number.isFinite(validityMs) || validityMs < MIN_NODE_CERT_VALIDITY_MS) {
      throw new CertificateValidityError('minimum certificate expiry time is: 1h');
    }
    const { publicKeySpkiDer } = verifyCsr(opts.csrPem);
    const hosts = [
      opts.role,
      opts.nodeId,
      ...(opts.role === MANAGER_ROLE ? [CA_ROLE] : []),
      ...(opts.hosts ?? []),
    ];
    return this.issue(
      encodeName({ O: opts.clusterId, OU: opts.role, CN: opts.nodeId }),
      publicKeySpkiDer,
      this.nodeExtensions,
      hosts,
      opts.now,
      validityMs,
    );
  }

  /** UCP client bundle certificate: O=`Orca: <instanceId>`, OU=Client, CN=<user>, clientAuth only. */
  async issueClientCertificate(opts: IssueClientCertificateOptions): Promise<IssuedCertificate> {
    requireNonEmpty(opts.commonName, 'commonName');
    requireNonEmpty(opts.instanceId, 'instanceId');
    const validityMs = opts.validityMs ?? DEFAULT_CLIENT_CERT_VALIDITY_MS;
    requirePositiveValidity(validityMs);
    return this.issue(
      encodeName({ O: `Orca: ${opts.instanceId}`, OU: 'Client', CN: opts.commonName }),
      requestedKey(opts),
      this.clientExtensions,
      [],
      opts.now,
      validityMs,
    );
  }

  /** TLS server certificate (the controller's HTTPS endpoint): serverAuth+clientAuth, SANs from hosts. */
  async issueServerCertificate(opts: IssueServerCertificateOptions): Promise<IssuedCertificate> {
    requireNonEmpty(opts.commonName, 'commonName');
    const validityMs = opts.validityMs ?? DEFAULT_SERVER_CERT_VALIDITY_MS;
    requirePositiveValidity(validityMs);
    return this.issue(
      encodeName({ O: opts.organization, CN: opts.commonName }),
      requestedKey(opts),
      this.serverExtensions,
      opts.hosts,
      opts.now,
      validityMs,
    );
  }

  private issue(
    subjectDer: Buffer,
    spkiDer: Buffer,
    fixed: Buffer[],
    hosts: string[],
    now: Date | undefined,
    validityMs: number,
  ): IssuedCertificate {
    const san = subjectAltNameExtension(hosts);
    const extensions = [...fixed, subjectKeyIdExtension(subjectKeyIdHex(spkiDer))];
    if (san) extensions.push(san);
    const window = validityWindow(now, validityMs);
    const { der, serialHex } = signCertificate(
      { issuerDer: this.issuerDer, subjectDer, spkiDer, extensions, ...window },
      this.key,
    );
    return { certPem: toPem('CERTIFICATE', der), ...window, serialNumber: serialHex };
  }
}

function requireNonEmpty(value: unknown, what: string): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${what} must be a non-empty string`);
}

function requestedKey(opts: { publicKeyPem?: string; csrPem?: string }): Buffer {
  if (opts.csrPem !== undefined && opts.publicKeyPem !== undefined)
    throw new TypeError('give publicKeyPem or csrPem, not both');
  if (opts.csrPem !== undefined) return verifyCsr(opts.csrPem).publicKeySpkiDer;
  if (opts.publicKeyPem !== undefined)
    return spkiDerFromPem(opts.publicKeyPem, (m) => new CsrInvalidError(m));
  throw new TypeError('publicKeyPem or csrPem is required');
}

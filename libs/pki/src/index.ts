export {
  CA_ROLE,
  CERT_BACKDATE_MS,
  CertificateAuthority,
  CLIENT_ROOT_CN,
  createRootCa,
  DEFAULT_CLIENT_CERT_VALIDITY_MS,
  DEFAULT_NODE_CERT_VALIDITY_MS,
  DEFAULT_ROOT_CN,
  DEFAULT_SERVER_CERT_VALIDITY_MS,
  MANAGER_ROLE,
  MIN_NODE_CERT_VALIDITY_MS,
  WORKER_ROLE,
} from './ca.js';
export type {
  CaMaterial,
  CreateRootCaOptions,
  IssueClientCertificateOptions,
  IssuedCertificate,
  IssueNodeCertificateOptions,
  IssueServerCertificateOptions,
  NodeRole,
} from './ca.js';
export {
  CertificateValidityError,
  CertificateVerifyError,
  CsrInvalidError,
  JoinTokenFormatError,
  SealError,
} from './errors.js';
export type { CertificateVerifyReason } from './errors.js';
export {
  caBundleDigest,
  caDigestMatches,
  generateJoinToken,
  matchJoinToken,
  parseJoinToken,
} from './join-token.js';
export type { ParsedJoinToken } from './join-token.js';
export { createCsr, generateKeyPair, publicKeyFingerprint, verifyCsr } from './keys.js';
export type { KeyPairPem, VerifiedCsr } from './keys.js';
export { CERT_LOWER_ROTATION_RANGE, CERT_UPPER_ROTATION_RANGE, renewalTime } from './renewal.js';
export { openSecret, sealSecret } from './seal.js';
export type { Kek } from './seal.js';
export { isCertificateValid, parseCertificate, verifyCertificate } from './verify.js';
export type { ParsedCertificate } from './verify.js';
export { certificateDerToPem } from './der.js';

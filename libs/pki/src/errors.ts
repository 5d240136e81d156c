/** The CSR is malformed, uses an unsupported key/algorithm, or its self-signature does not verify. */
export class CsrInvalidError extends Error {
  override name = 'CsrInvalidError';
}

/** Requested certificate validity is outside what the CA allows (e.g. below swarmkit's 1h minimum). */
export class CertificateValidityError extends Error {
  override name = 'CertificateValidityError';
}

/** Not a `SWMTKN-1-<50 base36>-<25 base36>` token (swarmkit: "invalid join token"). */
export class JoinTokenFormatError extends Error {
  override name = 'JoinTokenFormatError';
}

/** A sealed secret could not be opened: wrong key, tampered blob or unknown format. */
export class SealError extends Error {
  override name = 'SealError';
}

export type CertificateVerifyReason =
  'malformed' | 'issuer' | 'signature' | 'not-yet-valid' | 'expired' | 'ca-not-valid';

/** verifyCertificate failed; `reason` says which check. */
export class CertificateVerifyError extends Error {
  override name = 'CertificateVerifyError';
  constructor(
    readonly reason: CertificateVerifyReason,
    message: string,
  ) {
    super(message);
  }
}

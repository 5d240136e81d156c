// Who may read and change cluster membership: an admin account (Basic, Bearer, SessionToken or a
// client bundle, through libs/identity's Authenticator) or a manager node certificate from the cluster CA.
import { ApiError } from '@orca/api';
import type { CertificateAuthorityService } from '@orca/cluster';
import { Authenticator } from '@orca/identity';
import { parseCertificate, verifyCertificate } from '@orca/pki';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { peerCertificatePem } from './peer.js';

export async function requireAdmin(
  request: Request,
  store: Store,
  cas: CertificateAuthorityService,
): Promise<string> {
  const peer = peerCertificatePem(request);
  if (peer) {
    try {
      verifyCertificate(peer, await cas.clusterBundle());
      if (parseCertificate(peer).subject.OU === 'swarm-manager')
        return `node:${parseCertificate(peer).subject.CN}`;
    } catch {
      // Not a cluster certificate: fall through to account credentials.
    }
  }
  const principal = await new Authenticator(store, cas).authenticate({
    authorization: request.headers.authorization,
    peerCertificatePem: peer,
  });
  if (!principal.isAdmin) throw new ApiError(403, 'FORBIDDEN', 'only administrators may do this');
  return principal.name;
}

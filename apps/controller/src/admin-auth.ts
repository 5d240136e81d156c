// Who may read and change cluster membership: an admin account (HTTP Basic for now; bundles and
// tokens arrive with the identity work) or a manager node certificate from the cluster CA.
import { ApiError } from '@orca/api';
import type { CertificateAuthorityService } from '@orca/cluster';
import { getAccount, verifyPassword } from '@orca/identity';
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
  const header = request.headers.authorization;
  if (!header?.startsWith('Basic ')) {
    throw new ApiError(401, 'UNAUTHORIZED', 'authentication required');
  }
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const name = colon >= 0 ? decoded.slice(0, colon) : '';
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  const account = name ? await getAccount(store, name) : undefined;
  if (
    !account?.passwordHash ||
    !account.isActive ||
    !(await verifyPassword(password, account.passwordHash))
  ) {
    throw new ApiError(401, 'UNAUTHORIZED', 'Invalid username or password.');
  }
  if (!account.isAdmin) throw new ApiError(403, 'FORBIDDEN', 'only administrators may do this');
  return account.name;
}

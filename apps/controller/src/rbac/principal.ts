// Who is calling the RBAC API: the one Authenticator (Bearer, SessionToken, Basic, client bundle
// certificate), with a manager node certificate accepted as an administrator.
import { ApiError, type Principal } from '@orca/api';
import type { CertificateAuthorityService } from '@orca/cluster';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { requireAdmin } from '../admin-auth.js';
import { Authenticator } from '@orca/identity';
import { peerCertificatePem } from '../peer.js';

export async function currentPrincipal(
  request: Request,
  store: Store,
  cas: CertificateAuthorityService,
): Promise<Principal> {
  const peer = peerCertificatePem(request);
  try {
    return await new Authenticator(store, cas).authenticate({
      authorization: request.headers.authorization,
      peerCertificatePem: peer,
    });
  } catch (error) {
    // No account credentials: a manager's node certificate still administers the cluster.
    if (!(error instanceof ApiError) || error.status !== 401 || !peer) throw error;
    const who = await requireAdmin(request, store, cas).catch(() => {
      throw error;
    });
    return { id: who, name: who, isAdmin: true, via: 'node' };
  }
}

export function assertAdmin(principal: Principal): void {
  if (!principal.isAdmin) {
    throw new ApiError(403, 'FORBIDDEN', 'only administrators can manage roles, collections and grants');
  }
}

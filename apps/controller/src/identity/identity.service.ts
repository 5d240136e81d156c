// The controller's single Authenticator (libs/identity) and the authorization checks the routes share.
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ApiError, type Principal } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import { Authenticator, DEFAULT_ORG, type Directory } from '@orca/identity';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { peerCertificatePem } from '../peer.js';
import { STORE } from '../tokens.js';

const forbidden = () => new ApiError(403, 'FORBIDDEN', 'you are not allowed to do this');

@Injectable()
export class IdentityService {
  readonly authenticator: Authenticator;
  readonly directory: Directory;
  private readonly ready: Promise<void>;

  constructor(
    @Inject(STORE) readonly store: Store,
    readonly cas: CertificateAuthorityService,
  ) {
    const logger = new Logger('identity');
    this.authenticator = new Authenticator(store, cas, { warn: (m) => logger.warn(m) });
    this.directory = this.authenticator.directory;
    // New users join docker-datacenter: make sure it exists from the first start.
    this.ready = this.directory.ensureDefaultOrg().catch((error: unknown) => {
      logger.warn(`cannot create ${DEFAULT_ORG} yet: ${(error as Error).message}`);
    });
  }

  async principal(request: Request): Promise<Principal> {
    await this.ready;
    return this.authenticator.authenticate({
      authorization: request.headers.authorization,
      peerCertificatePem: peerCertificatePem(request),
    });
  }

  async admin(request: Request): Promise<Principal> {
    const principal = await this.principal(request);
    if (!principal.isAdmin) throw forbidden();
    return principal;
  }

  /** The caller must be an admin or the named user. */
  async selfOrAdmin(request: Request, userRef: string): Promise<Principal> {
    const principal = await this.principal(request);
    if (principal.isAdmin) return principal;
    const user = await this.directory.user(userRef);
    if (user.id !== principal.id) throw forbidden();
    return principal;
  }

  /** The caller must be a system admin or an admin of the org. */
  async orgAdmin(request: Request, orgRef: string): Promise<Principal> {
    const principal = await this.principal(request);
    if (principal.isAdmin) return principal;
    const org = await this.directory.org(orgRef);
    if (!(await this.directory.membership(org.name, principal.name))?.isAdmin) throw forbidden();
    return principal;
  }
}

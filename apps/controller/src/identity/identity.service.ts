// The controller's single Authenticator (libs/identity) and the authorization checks the routes share.
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ApiError, type Principal } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import { Authenticator, DEFAULT_ORG, type Account, type Directory } from '@orca/identity';
import { ensurePrivateCollection, putGrant } from '@orca/rbac';
import type { Store } from '@orca/store';
import { readUcpConfig } from '@orca/ucp-config';
import type { Request } from 'express';
import { noteAuditSubject, noteDecision } from '../audit/note.js';
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
    const principal = await this.authenticator.authenticate({
      authorization: request.headers.authorization,
      peerCertificatePem: peerCertificatePem(request),
    });
    noteAuditSubject(request, principal.name);
    return principal;
  }

  /**
   * A new user gets their private collection /Shared/Private/<name> and a grant on it with the
   * configured `[auth] default_new_user_role` (`admin` gives Full Control there), as UCP 3.0 did.
   */
  async provisionNewUser(account: Account): Promise<void> {
    if (account.isOrg) return;
    const role = (await readUcpConfig(this.store)).auth.default_new_user_role;
    const collection = await ensurePrivateCollection(this.store, account.name);
    await putGrant(this.store, account.id, collection.id, role === 'admin' ? 'fullcontrol' : role);
  }

  /** Notes the decision for the audit log (when the route names its operation), then enforces it. */
  private decide(
    request: Request,
    principal: Principal,
    allowed: boolean,
    audit?: { operation: string; resource?: string },
  ): Principal {
    if (audit) {
      noteDecision(request, {
        subject: principal.name,
        operation: audit.operation,
        ...(audit.resource ? { resource: audit.resource } : {}),
        decision: allowed ? 'allow' : 'deny',
        ...(allowed ? {} : { reason: 'you are not allowed to do this' }),
      });
    }
    if (!allowed) throw forbidden();
    return principal;
  }

  async admin(request: Request, operation?: string, resource?: string): Promise<Principal> {
    const principal = await this.principal(request);
    return this.decide(
      request,
      principal,
      principal.isAdmin,
      operation ? { operation, resource } : undefined,
    );
  }

  /** The caller must be an admin or the named user. */
  async selfOrAdmin(request: Request, userRef: string, operation?: string): Promise<Principal> {
    const principal = await this.principal(request);
    const audit = operation ? { operation, resource: userRef } : undefined;
    if (principal.isAdmin) return this.decide(request, principal, true, audit);
    const user = await this.directory.user(userRef);
    return this.decide(request, principal, user.id === principal.id, audit);
  }

  /** The caller must be a system admin or an admin of the org. */
  async orgAdmin(
    request: Request,
    orgRef: string,
    operation?: string,
    resource?: string,
  ): Promise<Principal> {
    const principal = await this.principal(request);
    const audit = operation ? { operation, resource: resource ?? orgRef } : undefined;
    if (principal.isAdmin) return this.decide(request, principal, true, audit);
    const org = await this.directory.org(orgRef);
    const isOrgAdmin = !!(await this.directory.membership(org.name, principal.name))?.isAdmin;
    return this.decide(request, principal, isOrgAdmin, audit);
  }
}

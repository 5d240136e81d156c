// GET /api/ucp/audit: the stored audit log for administrators, newest first. orca's own endpoint:
// UCP 3.0 only wrote audit records to the ucp-controller log.
import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import { ApiError } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { currentPrincipal } from '../rbac/principal.js';
import { STORE } from '../tokens.js';
import { AuditLog } from './audit-log.js';
import { noteAuditSubject } from './note.js';

@Controller()
export class AuditController {
  private readonly log: AuditLog;

  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
  ) {
    // Reading only: this instance never records, so its line sink and warnings are unused.
    this.log = new AuditLog(
      store,
      () => undefined,
      () => undefined,
    );
  }

  @Get('api/ucp/audit')
  async list(@Req() request: Request, @Query() query: Record<string, unknown>) {
    const principal = await currentPrincipal(request, this.store, this.cas);
    noteAuditSubject(request, principal.name);
    if (!principal.isAdmin)
      throw new ApiError(403, 'FORBIDDEN', 'only administrators can read the audit log');
    return this.log.list(query);
  }
}

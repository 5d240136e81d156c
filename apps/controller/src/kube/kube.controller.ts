// UCP's Kubernetes-related endpoints on the controller: GET /kubernetesNamespaces and
// POST /api/authz/resolve-rbac-subjects.
import { Body, Controller, Get, HttpCode, Inject, Optional, Post, Req } from '@nestjs/common';
import { ApiError } from '@orca/api';
import { namespacesWithGrants, resolveRbacSubjects, type KubeService } from '@orca/kube';
import { Authorizer } from '@orca/rbac';
import type { Request } from 'express';
import { IdentityService } from '../identity/identity.service.js';
import { KUBE_SERVICE } from './tokens.js';

@Controller()
export class KubeController {
  constructor(
    private readonly identity: IdentityService,
    private readonly authorizer: Authorizer,
    @Optional() @Inject(KUBE_SERVICE) private readonly kube?: KubeService | null,
  ) {}

  @Get('kubernetesNamespaces')
  async namespaces(@Req() req: Request) {
    const principal = await this.identity.principal(req);
    if (!this.kube)
      throw new ApiError(503, 'KUBERNETES_UNAVAILABLE', 'no Kubernetes API server is configured');
    const subject = await this.authorizer.subjectFor(principal);
    return namespacesWithGrants(this.kube.upstream, this.authorizer, subject);
  }

  @Post('api/authz/resolve-rbac-subjects')
  @HttpCode(200)
  async resolveSubjects(@Req() req: Request, @Body() body: unknown) {
    const principal = await this.identity.principal(req);
    // Called by admission on behalf of administrators' RoleBindings: it names every account id.
    if (!principal.isAdmin)
      throw new ApiError(403, 'FORBIDDEN', 'only administrators can resolve RBAC subjects');
    return resolveRbacSubjects(this.identity.directory, body);
  }
}

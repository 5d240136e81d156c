// UCP's Kubernetes-related endpoints on the controller: GET /kubernetesNamespaces and
// POST /api/authz/resolve-rbac-subjects; and for managers' agents (mutual TLS), the files of their
// Kubernetes components: GET /api/orca/v1/nodes/<id>/kube.
import { Body, Controller, Get, HttpCode, Inject, Optional, Param, Post, Req } from '@nestjs/common';
import { ApiError } from '@orca/api';
import {
  componentSettings,
  isValidNodeId,
  kubeApiserverUrl,
  kubeEnabled,
  KubePki,
  managerControllerUrl,
  NodeService,
  type KubeNodeBundle,
} from '@orca/cluster';
import { MANAGER_ROLE, parseCertificate } from '@orca/pki';
import type { Store } from '@orca/store';
import { namespacesWithGrants, resolveRbacSubjects, type KubeService } from '@orca/kube';
import { Authorizer } from '@orca/rbac';
import type { Request } from 'express';
import { IdentityService } from '../identity/identity.service.js';
import { peerCertificatePem } from '../peer.js';
import { STORE } from '../tokens.js';
import { KUBE_SERVICE } from './tokens.js';

@Controller()
export class KubeController {
  constructor(
    private readonly identity: IdentityService,
    private readonly authorizer: Authorizer,
    private readonly nodes: NodeService,
    @Inject(STORE) private readonly store: Store,
    @Optional() @Inject(KUBE_SERVICE) private readonly kube?: KubeService | null,
    @Optional() @Inject(KubePki) private readonly pki?: KubePki | null,
  ) {}

  /**
   * A manager's Kubernetes material: the certificates and keys orca issued for its components
   * (private keys included, so only that manager's own certificate gets them) and the URLs they use.
   */
  @Get('api/orca/v1/nodes/:id/kube')
  async nodeKube(@Param('id') id: string, @Req() req: Request): Promise<KubeNodeBundle> {
    if (!isValidNodeId(id)) throw new ApiError(400, 'INVALID_REQUEST', 'malformed node id');
    const peer = peerCertificatePem(req);
    const node = await this.nodes.authenticateNode(id, peer);
    if (node.role !== MANAGER_ROLE || parseCertificate(peer!).subject.OU !== MANAGER_ROLE)
      throw new ApiError(403, 'FORBIDDEN', 'only managers run the Kubernetes control plane');
    const settings = await componentSettings(this.store);
    if (!kubeEnabled(settings) || !this.pki)
      throw new ApiError(404, 'KUBERNETES_DISABLED', 'Kubernetes is off in the component settings');
    return {
      material: await this.pki.nodeMaterial(node),
      apiserverUrl: kubeApiserverUrl(node, settings.kubernetes),
      controllerUrl: managerControllerUrl(node, settings),
    };
  }

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

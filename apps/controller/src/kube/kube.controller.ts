// UCP's Kubernetes-related endpoints on the controller: GET /kubernetesNamespaces and
// POST /api/authz/resolve-rbac-subjects; for managers' agents (mutual TLS), the files of their
// Kubernetes components: GET /api/orca/v1/nodes/<id>/kube; and the internal endpoints UCP's
// admission plugins call with a manager's node certificate (or an administrator's credentials):
// /api/authz/{isadmin,isfullcontrol,managerscheduling,volumeaccess} and DELETE /api/agent/<sa>.
import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  Inject,
  Optional,
  Param,
  Post,
  Query,
  Req,
} from '@nestjs/common';
import { ApiError } from '@orca/api';
import {
  CertificateAuthorityService,
  componentSettings,
  isValidNodeId,
  kubeApiserverUrl,
  kubeEnabled,
  KubePki,
  managerControllerUrl,
  managerWebhookUrl,
  NodeService,
  type KubeNodeBundle,
} from '@orca/cluster';
import { readIssuer } from '@orca/oidc';
import { MANAGER_ROLE, parseCertificate, verifyCertificate, WORKER_ROLE } from '@orca/pki';
import type { Store } from '@orca/store';
import { collectionOf } from '@orca/frontdoor';
import {
  KubeAdmission,
  KubeNodeSelector,
  namespacesWithGrants,
  parseVolumeAccessRequest,
  requiredParam,
  resolveRbacSubjects,
  UcpAdmissionQueries,
  type KubeService,
  type VolumeCollectionLookup,
} from '@orca/kube';
import { Authorizer } from '@orca/rbac';
import type { Request } from 'express';
import { requireAdmin } from '../admin-auth.js';
import { FrontDoorService } from '../frontdoor/frontdoor.service.js';
import { IdentityService } from '../identity/identity.service.js';
import { peerCertificatePem } from '../peer.js';
import { STORE } from '../tokens.js';
import { KUBE_SERVICE } from './tokens.js';

/** How long one engine may take to say whether it has a volume. */
const VOLUME_LOOKUP_TIMEOUT_MS = 5_000;

@Controller()
export class KubeController {
  private readonly queries: UcpAdmissionQueries;

  constructor(
    private readonly identity: IdentityService,
    private readonly authorizer: Authorizer,
    private readonly nodes: NodeService,
    private readonly cas: CertificateAuthorityService,
    frontDoor: FrontDoorService,
    @Inject(STORE) private readonly store: Store,
    @Optional() @Inject(KUBE_SERVICE) private readonly kube?: KubeService | null,
    @Optional() @Inject(KubePki) private readonly pki?: KubePki | null,
  ) {
    // The first ready engine that has the volume says which collection it is in.
    const volumeCollection: VolumeCollectionLookup = async (name) => {
      const { pool, cluster } = frontDoor.frontDoor;
      for (const node of await cluster.readyNodes().catch(() => [])) {
        const found = await pool
          .json<{ Labels?: unknown }>(
            node,
            'GET',
            `/volumes/${encodeURIComponent(name)}`,
            undefined,
            VOLUME_LOOKUP_TIMEOUT_MS,
          )
          .catch(() => undefined);
        if (found?.status === 200) return collectionOf(found.body?.Labels);
      }
      return undefined;
    };
    this.queries = new UcpAdmissionQueries(
      store,
      authorizer,
      new KubeAdmission(store, authorizer),
      new KubeNodeSelector(store),
      volumeCollection,
    );
  }

  /** UCP's admission plugins call with a manager's node certificate; administrators may too. */
  private async caller(req: Request): Promise<string> {
    try {
      return await requireAdmin(req, this.store, this.cas);
    } catch (error) {
      // A worker's node certificate is a known caller, only not one allowed here.
      if (error instanceof ApiError && error.status === 401 && (await this.isWorkerNode(req)))
        throw new ApiError(
          403,
          'FORBIDDEN',
          "only managers' node certificates and administrators may call this",
        );
      throw error;
    }
  }

  private async isWorkerNode(req: Request): Promise<boolean> {
    const peer = peerCertificatePem(req);
    if (!peer) return false;
    try {
      verifyCertificate(peer, await this.cas.clusterBundle());
      return parseCertificate(peer).subject.OU === WORKER_ROLE;
    } catch {
      return false;
    }
  }

  @Get('api/authz/isadmin')
  @Header('content-type', 'application/json')
  async isAdmin(@Req() req: Request, @Query('user') user: unknown): Promise<string> {
    await this.caller(req);
    return String(await this.queries.isAdmin(requiredParam(user, 'user')));
  }

  @Get('api/authz/isfullcontrol')
  @Header('content-type', 'application/json')
  async isFullControl(
    @Req() req: Request,
    @Query('user') user: unknown,
    @Query('namespace') namespace: unknown,
  ): Promise<string> {
    await this.caller(req);
    return String(
      await this.queries.isFullControl(requiredParam(user, 'user'), requiredParam(namespace, 'namespace')),
    );
  }

  @Get('api/authz/managerscheduling')
  @Header('content-type', 'application/json')
  async managerScheduling(@Req() req: Request, @Query('user') user: unknown): Promise<string> {
    await this.caller(req);
    return String(await this.queries.managerScheduling(requiredParam(user, 'user')));
  }

  @Post('api/authz/volumeaccess')
  @HttpCode(200)
  async volumeAccess(@Req() req: Request, @Query('user') user: unknown, @Body() body: unknown) {
    await this.caller(req);
    const volumes = parseVolumeAccessRequest(body);
    return { volumes: await this.queries.volumeAccess(requiredParam(user, 'user'), volumes) };
  }

  @Delete('api/agent/:id')
  @HttpCode(204)
  async deleteAgent(@Req() req: Request, @Param('id') id: string): Promise<void> {
    const who = await this.caller(req);
    // requireAdmin admits administrators and managers' nodes (which administer the cluster) only.
    await this.queries.deleteAgent({ id: who, name: who, isAdmin: true, teamIds: [], orgIds: [] }, id);
  }

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
      webhookUrl: managerWebhookUrl(node, settings),
      // One issuer for the cluster: each apiserver trusts tokens from every manager's provider.
      oidcIssuer: (await readIssuer(this.store))?.issuer,
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

// Administration of orca's OpenID Connect provider: registered clients, signing-key rotation and
// the cluster's issuer URL.
// orca's own API (UCP 3.0 had no OIDC provider); admins only.
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req, Res } from '@nestjs/common';
import { ApiError, noteAuditDecision } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import { CLIENT_ID, readIssuer, type ClientMetadata, type OidcService } from '@orca/oidc';
import type { Store } from '@orca/store';
import type { Request, Response } from 'express';
import { requireAdmin } from '../admin-auth.js';
import { OIDC, STORE } from '../tokens.js';

@Controller('api/orca/v1/oidc')
export class OidcController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    @Inject(OIDC) private readonly oidc: OidcService,
  ) {}

  private async admin(request: Request, response: Response, operation: string, resource?: string) {
    const subject = await requireAdmin(request, this.store, this.cas);
    noteAuditDecision(response.locals, { subject, operation, resource, decision: 'allow' });
    return subject;
  }

  @Get('clients')
  async list(@Req() request: Request, @Res({ passthrough: true }) response: Response) {
    await this.admin(request, response, 'OIDC Client List');
    return this.oidc.clients.list();
  }

  @Get('clients/:id')
  async get(
    @Param('id') id: string,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    await this.admin(request, response, 'OIDC Client View', id);
    const client = await this.oidc.clients.get(id);
    if (!client) throw new ApiError(404, 'CLIENT_NOT_FOUND', 'no such OIDC client');
    return client;
  }

  /** Registers or replaces a client; the body is OIDC client metadata (RFC 7591), checked by the provider. */
  @Put('clients/:id')
  async put(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    await this.admin(request, response, 'OIDC Client Update', id);
    if (!CLIENT_ID.test(id))
      throw new ApiError(400, 'INVALID_CLIENT_ID', 'client_id must be 1-100 of [A-Za-z0-9._-]');
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiError(400, 'INVALID_JSON', 'the body must be a JSON object of client metadata');
    const metadata = { ...(body as Record<string, unknown>), client_id: id } as ClientMetadata;
    await this.oidc.validateClient(metadata);
    await this.oidc.clients.put(metadata);
    return this.oidc.clients.get(id);
  }

  @Delete('clients/:id')
  @HttpCode(204)
  async remove(
    @Param('id') id: string,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    await this.admin(request, response, 'OIDC Client Delete', id);
    if (!(await this.oidc.clients.remove(id)))
      throw new ApiError(404, 'CLIENT_NOT_FOUND', 'no such OIDC client');
  }

  /** The cluster's issuer: what every manager's provider claims and every apiserver trusts. */
  @Get('issuer')
  async issuer(@Req() request: Request, @Res({ passthrough: true }) response: Response) {
    await this.admin(request, response, 'OIDC Issuer View');
    const stored = await readIssuer(this.store);
    return { issuer: stored?.issuer ?? this.oidc.issuer };
  }

  /**
   * Moves the issuer (e.g. to a load balancer in front of the managers): tokens of the old issuer
   * stop verifying; the apiservers follow within their agents' file check.
   */
  @Put('issuer')
  async setIssuer(
    @Body() body: unknown,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ) {
    await this.admin(request, response, 'OIDC Issuer Update');
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiError(
        400,
        'INVALID_JSON',
        'the body must be a JSON object {"issuer": "https://host/oidc"}',
      );
    return this.oidc.setIssuer((body as { issuer?: unknown }).issuer);
  }

  @Post('keys/rotate')
  async rotate(@Req() request: Request, @Res({ passthrough: true }) response: Response) {
    await this.admin(request, response, 'OIDC Key Rotate');
    return { kid: await this.oidc.rotateKeys() };
  }
}

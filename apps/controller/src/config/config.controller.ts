// GET and PUT /api/ucp/config-toml: UCP's configuration file, kept in the store (libs/ucp-config).
// Administrators only; a PUT is validated whole before anything is stored, and replaces the file
// (omitted keys return to their defaults), as UCP's did.
import { Controller, Get, HttpCode, Inject, Put, Req, Res } from '@nestjs/common';
import { ApiError } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import type { Store } from '@orca/store';
import {
  parseUcpConfigToml,
  readUcpConfig,
  readUcpConfigRevision,
  renderUcpConfigToml,
  writeUcpConfig,
} from '@orca/ucp-config';
import type { Request, Response } from 'express';
import { noteDecision } from '../audit/note.js';
import { currentPrincipal } from '../rbac/principal.js';
import { STORE } from '../tokens.js';

export const CONFIG_TOML_PATH = '/api/ucp/config-toml';

@Controller()
export class ConfigTomlController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
  ) {}

  private async admin(request: Request, operation: string): Promise<void> {
    const principal = await currentPrincipal(request, this.store, this.cas);
    const allowed = principal.isAdmin;
    noteDecision(request, {
      subject: principal.name,
      operation,
      resource: 'config-toml',
      decision: allowed ? 'allow' : 'deny',
      ...(allowed ? {} : { reason: 'only administrators can read or change the UCP configuration' }),
    });
    if (!allowed)
      throw new ApiError(403, 'FORBIDDEN', 'only administrators can read or change the UCP configuration');
  }

  @Get(CONFIG_TOML_PATH.slice(1))
  async get(@Req() request: Request, @Res() response: Response): Promise<void> {
    await this.admin(request, 'Config Read');
    const toml = renderUcpConfigToml(await readUcpConfig(this.store));
    response.status(200).type('application/toml').send(toml);
  }

  @Put(CONFIG_TOML_PATH.slice(1))
  @HttpCode(200)
  async put(@Req() request: Request): Promise<{ message: string }> {
    await this.admin(request, 'Config Update');
    const body: unknown = request.body;
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
    if (text === undefined || text.trim() === '')
      throw new ApiError(400, 'INVALID_CONFIG', 'the request body must be the TOML configuration file');
    // Validate before reading the revision: nothing is stored unless the whole file is good.
    const config = parseUcpConfigToml(text);
    const { modRevision } = await readUcpConfigRevision(this.store);
    await writeUcpConfig(this.store, config, modRevision);
    return { message: 'Configuration updated successfully' };
  }
}

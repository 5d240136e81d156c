// Node membership API: the CA bundle (no authentication), join with a token, renewal and heartbeats
// with the node's certificate (mutual TLS), desired components, and the admin's node list.
import {
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Inject,
  Param,
  Post,
  Put,
  Query,
  Req,
} from '@nestjs/common';
import { ApiError } from '@orca/api';
import {
  CertificateAuthorityService,
  componentSettings,
  isValidNodeId,
  keys,
  NodeService,
  parseJoinRequest,
  type ComponentSettings,
  type ComponentState,
  type DesiredRecord,
  type NodeStatusRecord,
} from '@orca/cluster';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { requireAdmin } from './admin-auth.js';
import { peerCertificatePem } from './peer.js';
import { STORE } from './tokens.js';

const MAX_WAIT_MS = 60_000;

function nodeId(raw: string): string {
  if (!isValidNodeId(raw)) throw new ApiError(400, 'INVALID_REQUEST', 'malformed node id');
  return raw;
}

function parseStatus(body: unknown): Omit<NodeStatusRecord, 'heartbeatAt'> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'INVALID_REQUEST', 'the request body must be a JSON object');
  }
  const record = body as Record<string, unknown>;
  const components = record.components ?? [];
  if (!Array.isArray(components) || components.length > 100) {
    throw new ApiError(400, 'INVALID_REQUEST', 'components must be an array');
  }
  const states = new Set(['running', 'missing', 'stopped', 'failed']);
  const parsed: ComponentState[] = components.map((c: unknown) => {
    const item = c as Record<string, unknown>;
    if (typeof item?.name !== 'string' || typeof item.state !== 'string' || !states.has(item.state)) {
      throw new ApiError(400, 'INVALID_REQUEST', 'each component needs a name and a state');
    }
    return {
      name: item.name.slice(0, 128),
      state: item.state as ComponentState['state'],
      specHash: typeof item.specHash === 'string' ? item.specHash.slice(0, 128) : undefined,
      id: typeof item.id === 'string' ? item.id.slice(0, 128) : undefined,
    };
  });
  const engine = record.engine as NodeStatusRecord['engine'];
  const lastReconcile = record.lastReconcile as NodeStatusRecord['lastReconcile'];
  return {
    components: parsed,
    engine:
      typeof engine === 'object' && engine !== null
        ? { ...engine, reachable: Boolean(engine.reachable) }
        : undefined,
    lastReconcile:
      typeof lastReconcile === 'object' && lastReconcile !== null
        ? {
            at: String(lastReconcile.at),
            converged: Boolean(lastReconcile.converged),
            report: lastReconcile.report?.toString().slice(0, 8192),
          }
        : undefined,
  };
}

@Controller()
export class NodesController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly nodes: NodeService,
  ) {}

  /** The exact bundle the join token's digest pins; unauthenticated, as swarmkit's GetRootCACertificate. */
  @Get(['ca', 'api/orca/v1/ca'])
  @Header('Content-Type', 'application/x-pem-file')
  async caBundle(): Promise<string> {
    return this.cas.clusterBundle();
  }

  @Post('api/orca/v1/join')
  @HttpCode(201)
  async join(@Body() body: unknown) {
    return this.nodes.join(parseJoinRequest(body));
  }

  @Post('api/orca/v1/nodes/:id/renew')
  @HttpCode(201)
  async renew(@Param('id') id: string, @Req() request: Request, @Body() body: unknown) {
    const csr = (body as { csr?: unknown } | undefined)?.csr;
    return this.nodes.renew(nodeId(id), peerCertificatePem(request), csr);
  }

  @Get('api/orca/v1/nodes/:id/certificate')
  async certificate(@Param('id') id: string, @Req() request: Request) {
    await this.nodes.authenticateNode(nodeId(id), peerCertificatePem(request));
    return this.nodes.certificateStatus(id);
  }

  @Post('api/orca/v1/nodes/:id/heartbeat')
  @HttpCode(204)
  async heartbeat(@Param('id') id: string, @Req() request: Request, @Body() body: unknown): Promise<void> {
    await this.nodes.authenticateNode(nodeId(id), peerCertificatePem(request));
    await this.nodes.heartbeat(id, parseStatus(body));
  }

  /**
   * The node's desired components. With `after=<revision>` the call waits (up to `timeout` seconds)
   * until the list changes past that revision, so agents learn of changes without polling hard.
   */
  @Get('api/orca/v1/nodes/:id/desired')
  async desired(
    @Param('id') id: string,
    @Req() request: Request,
    @Query('after') after?: string,
    @Query('timeout') timeout?: string,
  ): Promise<{ revision: number } & DesiredRecord> {
    await this.nodes.authenticateNode(nodeId(id), peerCertificatePem(request));
    const afterRevision = after === undefined ? 0 : Number(after);
    const waitMs = Math.min(MAX_WAIT_MS, timeout === undefined ? 30_000 : Number(timeout) * 1000);
    if (!Number.isInteger(afterRevision) || afterRevision < 0 || !Number.isFinite(waitMs) || waitMs < 0) {
      throw new ApiError(400, 'INVALID_REQUEST', 'after and timeout must be non-negative numbers');
    }
    const key = keys.nodeDesired(id);
    const read = async () => {
      const kv = await this.store.get(key);
      return kv
        ? { revision: kv.modRevision, ...(JSON.parse(kv.value) as DesiredRecord) }
        : { revision: 0, components: [] };
    };
    const current = await read();
    if (current.revision > afterRevision || waitMs === 0) return current;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void watchPromise.then((w) => w.close());
        read().then(resolve, reject);
      };
      const timer = setTimeout(finish, waitMs);
      const watchPromise = this.store.watch(key, afterRevision + 1, {
        onEvents: finish,
        onCompacted: finish,
        onError: finish,
      });
      watchPromise.catch(reject);
      request.on('close', finish);
    });
  }

  @Get('api/orca/v1/nodes')
  async list(@Req() request: Request) {
    await requireAdmin(request, this.store, this.cas);
    return this.nodes.list();
  }

  @Get('api/orca/v1/nodes/:id')
  async get(@Param('id') id: string, @Req() request: Request) {
    await requireAdmin(request, this.store, this.cas);
    const node = await this.nodes.get(nodeId(id));
    if (!node) throw new ApiError(404, 'NODE_NOT_FOUND', `node ${id} not found`);
    return node;
  }

  @Get('api/orca/v1/jointokens')
  async joinTokens(@Req() request: Request) {
    await requireAdmin(request, this.store, this.cas);
    const tokens = await this.cas.joinTokens();
    return { Worker: tokens.worker, Manager: tokens.manager };
  }

  @Post('api/orca/v1/jointokens/:role/rotate')
  async rotate(@Param('role') role: string, @Req() request: Request) {
    await requireAdmin(request, this.store, this.cas);
    if (role !== 'worker' && role !== 'manager')
      throw new ApiError(400, 'INVALID_REQUEST', 'role must be worker or manager');
    const tokens = await this.cas.rotateJoinToken(role);
    return { Worker: tokens.worker, Manager: tokens.manager };
  }

  @Get('api/orca/v1/settings/components')
  async getComponentSettings(@Req() request: Request): Promise<ComponentSettings> {
    await requireAdmin(request, this.store, this.cas);
    return componentSettings(this.store);
  }

  /** Changes images or extra flags of components; the leader re-plans every node and agents roll it out. */
  @Put('api/orca/v1/settings/components')
  async putComponentSettings(@Req() request: Request, @Body() body: unknown): Promise<ComponentSettings> {
    await requireAdmin(request, this.store, this.cas);
    const current = await componentSettings(this.store);
    const patch = body as Partial<ComponentSettings> | undefined;
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw new ApiError(400, 'INVALID_REQUEST', 'the request body must be a JSON object');
    }
    const images = { ...current.images, ...(patch.images ?? {}) };
    const extraArgs = { ...current.extraArgs, ...(patch.extraArgs ?? {}) };
    const validString = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length < 512;
    if (!Object.values(images).every(validString))
      throw new ApiError(400, 'INVALID_REQUEST', 'images must be strings');
    if (!Object.values(extraArgs).every((args) => Array.isArray(args) && args.every(validString))) {
      throw new ApiError(400, 'INVALID_REQUEST', 'extraArgs must map component names to string arrays');
    }
    const next: ComponentSettings = { ...current, images, extraArgs };
    await this.store.put(keys.componentSettings, JSON.stringify(next));
    return next;
  }
}

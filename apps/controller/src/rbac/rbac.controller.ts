// UCP's RBAC API (roles, collections, grants, default collections), thin over @orca/rbac. Paths,
// fields and status codes follow the UCP Swagger; only admins change anything.
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Req,
} from '@nestjs/common';
import type { Principal } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import {
  Authorizer,
  bad,
  checkId,
  childrenOf,
  createCollection,
  createRole,
  deleteCollection,
  deleteDefaultCollection,
  deleteGrant,
  deleteRole,
  ensurePrivateCollection,
  findCollectionByPath,
  getCollection,
  getDefaultCollection,
  getRole,
  grantCursor,
  listGrants,
  listRoles,
  notFound,
  page,
  parseBool,
  parseGrantType,
  parseLimit,
  putGrant,
  setDefaultCollection,
  toWire,
  updateCollection,
  type SubjectDirectory,
} from '@orca/rbac';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import { noteAuditSubject, noteDecision } from '../audit/note.js';
import { STORE } from '../tokens.js';
import { assertAdmin, currentPrincipal } from './principal.js';
import { SUBJECT_DIRECTORY } from './directory.js';

abstract class RbacBase {
  constructor(
    @Inject(STORE) protected readonly store: Store,
    protected readonly cas: CertificateAuthorityService,
    protected readonly authz: Authorizer,
  ) {}

  protected async caller(request: Request): Promise<Principal> {
    const principal = await currentPrincipal(request, this.store, this.cas);
    noteAuditSubject(request, principal.name);
    return principal;
  }

  /** Admins only; the decision is noted for the audit log with the operation and its object. */
  protected async admin(request: Request, operation: string, resource?: string): Promise<Principal> {
    const principal = await this.caller(request);
    noteDecision(request, {
      subject: principal.name,
      operation,
      ...(resource ? { resource } : {}),
      decision: principal.isAdmin ? 'allow' : 'deny',
      ...(principal.isAdmin
        ? {}
        : { reason: 'only administrators can manage roles, collections and grants' }),
    });
    assertAdmin(principal);
    return principal;
  }

  /** Accounts get their private collection the first time they look (UCP makes it with the user). */
  protected async ensurePrivate(p: Principal): Promise<void> {
    if (p.via !== 'node') await ensurePrivateCollection(this.store, p.name);
  }

  protected subject(p: Principal) {
    return this.authz.subjectFor({ id: p.id, name: p.name, isAdmin: p.isAdmin });
  }
}

@Controller()
export class RolesController extends RbacBase {
  constructor(@Inject(STORE) store: Store, cas: CertificateAuthorityService, authz: Authorizer) {
    super(store, cas, authz);
  }

  @Get('roles')
  async list(@Req() request: Request) {
    await this.caller(request);
    return listRoles(this.store);
  }

  // 201 {"id"}: an object, not the spec's array, because clients do `jq -r .id` (ucp-api.md §2.2).
  @Post('roles')
  @HttpCode(201)
  async create(@Req() request: Request, @Body() body: unknown) {
    await this.admin(request, 'Role Create');
    const role = await createRole(this.store, body);
    return { id: role.id };
  }

  @Get('roles/:role')
  async get(@Req() request: Request, @Param('role') id: string) {
    await this.caller(request);
    return getRole(this.store, id);
  }

  @Delete('roles/:role')
  @HttpCode(204)
  async remove(@Req() request: Request, @Param('role') id: string) {
    await this.admin(request, 'Role Delete', id);
    await deleteRole(this.store, id);
  }

  @Get('totalRole')
  async total(@Req() request: Request) {
    const subject = await this.subject(await this.caller(request));
    const operations = await this.authz.totalOperations(subject);
    return [{ id: 'totalRole', name: 'Total Role', system_role: false, operations }];
  }

  @Get('defaultCollectionRole')
  async defaultRole(@Req() request: Request) {
    const principal = await this.caller(request);
    const subject = await this.subject(principal);
    await this.ensurePrivate(principal);
    const collection = await getDefaultCollection(this.store, principal.id, principal.name);
    const operations = await this.authz.effectiveOperations(subject, collection.id);
    return { id: 'defaultCollectionRole', name: 'Default Collection Role', system_role: false, operations };
  }
}

@Controller()
export class CollectionsController extends RbacBase {
  constructor(
    @Inject(STORE) store: Store,
    cas: CertificateAuthorityService,
    authz: Authorizer,
    @Inject(SUBJECT_DIRECTORY) private readonly directory: SubjectDirectory,
  ) {
    super(store, cas, authz);
  }

  /** Default collections belong to users: an id (or name) that is no user is a 404. */
  private async knownUser(userId: string): Promise<void> {
    if (!this.directory.describe) return;
    if ((await this.directory.describe(userId))?.subject_type !== 'user')
      throw notFound(`user "${userId}" not found`);
  }

  private async visible(request: Request) {
    const principal = await this.caller(request);
    await this.ensurePrivate(principal);
    return this.authz.viewableCollections(await this.subject(principal));
  }

  private async visibleOne(request: Request, id: string) {
    const found = (await this.visible(request)).find((c) => c.id === id);
    if (!found) throw notFound(`collection "${id}" not found`);
    return found;
  }

  @Get('collections')
  async list(@Req() request: Request, @Query('start') start: unknown, @Query('limit') limit: unknown) {
    const n = parseLimit(limit);
    return page(await this.visible(request), start, n).map(toWire);
  }

  @Post('collections')
  @HttpCode(201)
  async create(@Req() request: Request, @Body() body: unknown) {
    await this.admin(request, 'Collection Create');
    const collection = await createCollection(this.store, body);
    return { id: collection.id };
  }

  @Get('collections/:id')
  async get(@Req() request: Request, @Param('id') id: string) {
    return toWire(await this.visibleOne(request, id));
  }

  @Get('collections/:id/children')
  async children(
    @Req() request: Request,
    @Param('id') id: string,
    @Query('start') start: unknown,
    @Query('limit') limit: unknown,
  ) {
    const n = parseLimit(limit);
    const visible = await this.visible(request);
    if (!visible.some((c) => c.id === id)) await getCollection(this.store, id);
    return page(childrenOf(visible, id), start, n).map(toWire);
  }

  @Delete('collections/:id')
  @HttpCode(204)
  async remove(@Req() request: Request, @Param('id') id: string) {
    await this.admin(request, 'Collection Delete', id);
    await deleteCollection(this.store, id);
  }

  @Patch('collections/:id')
  @HttpCode(200)
  async update(@Req() request: Request, @Param('id') id: string, @Body() body: unknown) {
    await this.admin(request, 'Collection Update', id);
    await updateCollection(this.store, id, body);
  }

  @Get('collectionByPath')
  async byPath(@Req() request: Request, @Query('path') path: unknown) {
    if (path === undefined) throw bad('path is required');
    const found = await findCollectionByPath(this.store, path);
    if (!found) throw notFound(`collection path "${String(path)}" not found`);
    return toWire(await this.visibleOne(request, found.id));
  }

  // A user may read and set their own default collection; admins anyone's.
  private async selfOrAdmin(request: Request, userId: string, operation?: string): Promise<Principal> {
    const principal = await this.caller(request);
    if (principal.id === userId || principal.name === userId) {
      if (operation)
        noteDecision(request, { subject: principal.name, operation, resource: userId, decision: 'allow' });
      return principal;
    }
    if (operation) return this.admin(request, operation, userId);
    assertAdmin(principal);
    return principal;
  }

  @Get('defaultCollection/:userID')
  async getDefault(@Req() request: Request, @Param('userID') userId: string) {
    const principal = await this.selfOrAdmin(request, checkId(userId, 'user id'));
    await this.knownUser(userId);
    const name = principal.id === userId ? principal.name : undefined;
    if (name) await this.ensurePrivate(principal);
    return toWire(await getDefaultCollection(this.store, userId, name));
  }

  @Put('defaultCollection/:userID')
  @HttpCode(201)
  async setDefault(@Req() request: Request, @Param('userID') userId: string, @Body() body: unknown) {
    await this.selfOrAdmin(request, checkId(userId, 'user id'), 'Default Collection Set');
    await this.knownUser(userId);
    await setDefaultCollection(this.store, userId, body);
  }

  @Delete('defaultCollection/:userID')
  @HttpCode(204)
  async deleteDefault(@Req() request: Request, @Param('userID') userId: string) {
    await this.selfOrAdmin(request, checkId(userId, 'user id'), 'Default Collection Delete');
    await this.knownUser(userId);
    await deleteDefaultCollection(this.store, userId);
  }
}

const SUBJECT_TYPES = new Set(['agent', 'all', 'anonymous', 'authenticated', 'org', 'team', 'user']);

@Controller('collectionGrants')
export class GrantsController extends RbacBase {
  constructor(
    @Inject(STORE) store: Store,
    cas: CertificateAuthorityService,
    authz: Authorizer,
    @Inject(SUBJECT_DIRECTORY) private readonly directory: SubjectDirectory,
  ) {
    super(store, cas, authz);
  }

  @Get()
  async list(@Req() request: Request, @Query() query: Record<string, unknown>) {
    const principal = await this.caller(request);
    assertAdmin(principal);
    const one = (name: string): string | undefined => {
      const v = query[name];
      if (v === undefined || v === '') return undefined;
      if (typeof v !== 'string') throw bad(`${name} must be a single value`);
      return v;
    };
    const subjectType = one('subjectType') ?? 'all';
    if (!SUBJECT_TYPES.has(subjectType)) throw bad(`unknown subjectType "${subjectType}"`);
    const limit = parseLimit(query.limit);
    const expandUser = parseBool(query.expandUser, 'expandUser');
    const showPaths = parseBool(query.showPaths, 'showPaths');
    const subjectID = one('subjectID');
    const objectID = one('objectID');
    const roleID = one('roleID');
    const start = one('start');

    let subjects: string[] | undefined = subjectID ? [subjectID] : undefined;
    if (subjectID && expandUser) {
      const groups = await this.directory.groupsOf(subjectID);
      subjects = [subjectID, ...groups.teamIds, ...groups.orgIds];
    }
    const describe = async (id: string) =>
      (await this.directory.describe?.(id)) ?? {
        subject_type: id === 'anonymous' || id === 'authenticated' ? id : 'user',
      };
    let grants = (await listGrants(this.store, subjects)).filter(
      (g) => (!objectID || g.objectID === objectID) && (!roleID || g.roleID === roleID),
    );
    const types = new Map<string, Awaited<ReturnType<typeof describe>>>();
    for (const id of new Set(grants.map((g) => g.subjectID))) types.set(id, await describe(id));
    if (subjectType !== 'all')
      grants = grants.filter((g) => types.get(g.subjectID)?.subject_type === subjectType);
    grants.sort((a, b) => (grantCursor(a) < grantCursor(b) ? -1 : grantCursor(a) > grantCursor(b) ? 1 : 0));
    const from = start ? grants.findIndex((g) => grantCursor(g) >= start) : 0;
    const pageItems = from < 0 ? [] : grants.slice(from, from + limit);
    const next = from < 0 ? undefined : grants[from + limit];
    const paths = new Map<string, string>();
    if (showPaths) {
      for (const c of await this.authz.viewableCollections({
        id: '',
        isAdmin: true,
        teamIds: [],
        orgIds: [],
      })) {
        paths.set(c.id, c.path);
      }
    }
    return {
      grants: pageItems.map((g) => ({
        subjectID: g.subjectID,
        objectID: g.objectID,
        roleID: g.roleID,
        ...(showPaths && paths.has(g.objectID) ? { objectPath: paths.get(g.objectID) } : {}),
      })),
      subjects: [...new Set(pageItems.map((g) => g.subjectID))].map((id) => ({ id, ...types.get(id) })),
      nextPageStart: next ? grantCursor(next) : '',
      resourceCount: grants.length,
    };
  }

  @Put(':subjectID/:objectID/:roleID')
  @HttpCode(201)
  async put(
    @Req() request: Request,
    @Param('subjectID') subjectID: string,
    @Param('objectID') objectID: string,
    @Param('roleID') roleID: string,
    @Query('type') type: unknown,
  ) {
    await this.admin(request, 'Grant Create', `${subjectID}/${objectID}/${roleID}`);
    await putGrant(this.store, subjectID, objectID, roleID, parseGrantType(type));
  }

  @Delete(':subjectID/:objectID/:roleID')
  @HttpCode(204)
  async remove(
    @Req() request: Request,
    @Param('subjectID') subjectID: string,
    @Param('objectID') objectID: string,
    @Param('roleID') roleID: string,
  ) {
    await this.admin(request, 'Grant Delete', `${subjectID}/${objectID}/${roleID}`);
    await deleteGrant(this.store, checkId(subjectID, 'subject id'), checkId(objectID, 'object id'), roleID);
  }
}

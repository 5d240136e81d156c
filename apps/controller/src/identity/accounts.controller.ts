// eNZi accounts API at /accounts/... and /enzi/v0/accounts/...: thin routes over libs/identity.
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query, Req } from '@nestjs/common';
import {
  bulkAccountOperations,
  orgAdminSyncConfig,
  setOrgAdminSyncConfig,
  setTeamSyncConfig,
  teamSyncConfig,
} from '@orca/identity';
import type { Request } from 'express';
import { IdentityService } from './identity.service.js';

const A = ['accounts', 'enzi/v0/accounts'];
const at = (suffix: string) => A.map((p) => `${p}/${suffix}`);

@Controller()
export class AccountsController {
  constructor(private readonly identity: IdentityService) {}

  private get dir() {
    return this.identity.directory;
  }

  @Get(A)
  async list(@Req() req: Request, @Query() query: Record<string, unknown>) {
    await this.identity.principal(req);
    return this.dir.list(query);
  }

  @Post(A)
  @HttpCode(201)
  async create(@Req() req: Request, @Body() body: unknown) {
    const name = (body as { name?: unknown } | undefined)?.name;
    await this.identity.admin(req, 'Account Create', typeof name === 'string' ? name : undefined);
    const account = await this.dir.create(body);
    await this.identity.provisionNewUser(account);
    return account;
  }

  /** forms.BulkOperations -> responses.BulkResults (200 even when some operations failed). */
  @Patch(A)
  async bulk(@Req() req: Request, @Body() body: unknown) {
    await this.identity.admin(req, 'Account Bulk Update');
    const { results, ended } = await bulkAccountOperations(this.dir, body);
    for (const name of ended) await this.identity.authenticator.sessions.endAllFor(name);
    return { results };
  }

  @Get(at(':account'))
  async get(@Req() req: Request, @Param('account') account: string) {
    await this.identity.principal(req);
    return this.dir.account(account);
  }

  @Patch(at(':account'))
  async update(@Req() req: Request, @Param('account') account: string, @Body() body: unknown) {
    await this.identity.admin(req, 'Account Update', account);
    const updated = await this.dir.update(account, body);
    // A deactivated user's sessions end at once (bundles are refused by the authenticator).
    if (!updated.isOrg && !updated.isActive)
      await this.identity.authenticator.sessions.endAllFor(updated.name);
    return updated;
  }

  @Delete(at(':account'))
  @HttpCode(204)
  async remove(@Req() req: Request, @Param('account') account: string): Promise<void> {
    await this.identity.admin(req, 'Account Delete', account);
    const record = await this.dir.record(account);
    await this.dir.remove(account);
    await this.identity.authenticator.sessions.endAllFor(record.name);
  }

  @Post(at(':user/changePassword'))
  @HttpCode(200)
  async changePassword(@Req() req: Request, @Param('user') user: string, @Body() body: unknown) {
    const principal = await this.identity.selfOrAdmin(req, user, 'Password Change');
    const self = (await this.dir.user(user)).id === principal.id;
    return this.dir.changePassword(user, body, principal.isAdmin, self);
  }

  @Get(at(':user/organizations'))
  async organizations(
    @Req() req: Request,
    @Param('user') user: string,
    @Query() query: Record<string, string>,
  ) {
    await this.identity.selfOrAdmin(req, user);
    return this.dir.orgsOf(user, query);
  }

  // ---- org members ----

  @Get(at(':org/members'))
  async members(@Req() req: Request, @Param('org') org: string, @Query() query: Record<string, unknown>) {
    await this.identity.principal(req);
    return this.dir.orgMembers(org, query);
  }

  @Get(at(':org/members/:member'))
  async member(@Req() req: Request, @Param('org') org: string, @Param('member') member: string) {
    await this.identity.principal(req);
    return this.dir.orgMember(org, member);
  }

  @Get(at(':org/members/:member/teams'))
  async memberTeams(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('member') member: string,
    @Query() query: Record<string, string>,
  ) {
    await this.identity.principal(req);
    return this.dir.memberTeams(org, member, query);
  }

  @Put(at(':org/members/:member'))
  async setMember(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('member') member: string,
    @Body() body: unknown,
  ) {
    await this.identity.admin(req, 'Org Member Set', `${org}/${member}`);
    return this.dir.setOrgMember(org, member, body);
  }

  @Delete(at(':org/members/:member'))
  @HttpCode(204)
  async removeMember(@Req() req: Request, @Param('org') org: string, @Param('member') member: string) {
    await this.identity.admin(req, 'Org Member Remove', `${org}/${member}`);
    await this.dir.removeOrgMember(org, member);
  }

  // ---- teams ----

  @Get(at(':org/teams'))
  async teams(@Req() req: Request, @Param('org') org: string, @Query() query: Record<string, string>) {
    await this.identity.principal(req);
    return this.dir.teams(org, query);
  }

  @Post(at(':org/teams'))
  @HttpCode(201)
  async createTeam(@Req() req: Request, @Param('org') org: string, @Body() body: unknown) {
    await this.identity.orgAdmin(req, org, 'Team Create');
    return this.dir.createTeam(org, body);
  }

  @Get(at(':org/teams/:team'))
  async team(@Req() req: Request, @Param('org') org: string, @Param('team') team: string) {
    await this.identity.principal(req);
    return this.dir.team(org, team);
  }

  @Patch(at(':org/teams/:team'))
  async updateTeam(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Body() body: unknown,
  ) {
    await this.identity.orgAdmin(req, org, 'Team Update', `${org}/${team}`);
    return this.dir.updateTeam(org, team, body);
  }

  @Delete(at(':org/teams/:team'))
  @HttpCode(204)
  async removeTeam(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
  ): Promise<void> {
    await this.identity.orgAdmin(req, org, 'Team Delete', `${org}/${team}`);
    await this.dir.removeTeam(org, team);
  }

  @Get(at(':org/teams/:team/members'))
  async teamMembers(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Query() query: Record<string, unknown>,
  ) {
    await this.identity.principal(req);
    return this.dir.teamMembers(org, team, query);
  }

  @Get(at(':org/teams/:team/members/:member'))
  async teamMember(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Param('member') member: string,
  ) {
    await this.identity.principal(req);
    return this.dir.teamMember(org, team, member);
  }

  @Put(at(':org/teams/:team/members/:member'))
  async setTeamMember(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Param('member') member: string,
    @Body() body: unknown,
  ) {
    await this.identity.orgAdmin(req, org, 'Team Member Set', `${org}/${team}/${member}`);
    return this.dir.setTeamMember(org, team, member, body);
  }

  @Delete(at(':org/teams/:team/members/:member'))
  @HttpCode(204)
  async removeTeamMember(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Param('member') member: string,
  ): Promise<void> {
    await this.identity.orgAdmin(req, org, 'Team Member Remove', `${org}/${team}/${member}`);
    await this.dir.removeTeamMember(org, team, member);
  }

  // ---- LDAP sync options (kept, not acted on: orca has no LDAP) ----

  @Get(at(':org/adminMemberSyncConfig'))
  async adminSyncConfig(@Req() req: Request, @Param('org') org: string) {
    await this.identity.orgAdmin(req, org);
    return orgAdminSyncConfig(this.identity.store, this.dir, org);
  }

  @Put(at(':org/adminMemberSyncConfig'))
  async setAdminSyncConfig(@Req() req: Request, @Param('org') org: string, @Body() body: unknown) {
    await this.identity.admin(req, 'Org Sync Config Set', org);
    return setOrgAdminSyncConfig(this.identity.store, this.dir, org, body);
  }

  @Get(at(':org/teams/:team/memberSyncConfig'))
  async teamSyncConfig(@Req() req: Request, @Param('org') org: string, @Param('team') team: string) {
    await this.identity.orgAdmin(req, org);
    return teamSyncConfig(this.identity.store, this.dir, org, team);
  }

  @Put(at(':org/teams/:team/memberSyncConfig'))
  async setTeamSyncConfig(
    @Req() req: Request,
    @Param('org') org: string,
    @Param('team') team: string,
    @Body() body: unknown,
  ) {
    await this.identity.orgAdmin(req, org, 'Team Sync Config Set', `${org}/${team}`);
    return setTeamSyncConfig(this.identity.store, this.dir, org, team, body);
  }

  // ---- public keys ----

  @Get(at(':user/publicKeys'))
  async publicKeys(@Req() req: Request, @Param('user') user: string, @Query() query: Record<string, string>) {
    await this.identity.selfOrAdmin(req, user);
    return this.dir.publicKeys(user, query);
  }

  @Post(at(':user/publicKeys'))
  @HttpCode(201)
  async addPublicKey(@Req() req: Request, @Param('user') user: string, @Body() body: unknown) {
    await this.identity.selfOrAdmin(req, user, 'Public Key Create');
    return this.dir.addPublicKey(user, body);
  }

  @Patch(at(':user/publicKeys/:key'))
  async updatePublicKey(
    @Req() req: Request,
    @Param('user') user: string,
    @Param('key') key: string,
    @Body() body: unknown,
  ) {
    await this.identity.selfOrAdmin(req, user, 'Public Key Update');
    return this.dir.updatePublicKey(user, key, body);
  }

  @Delete(at(':user/publicKeys/:key'))
  @HttpCode(204)
  async removePublicKey(
    @Req() req: Request,
    @Param('user') user: string,
    @Param('key') key: string,
  ): Promise<void> {
    await this.identity.selfOrAdmin(req, user, 'Public Key Delete');
    await this.dir.removePublicKey(user, key);
  }
}

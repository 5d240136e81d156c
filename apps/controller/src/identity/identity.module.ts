// eNZi accounts, login sessions, client-certificate authentication and client bundles.
import { Module } from '@nestjs/common';
import { AccountsController } from './accounts.controller.js';
import { AuthController } from './auth.controller.js';
import { IdentityService } from './identity.service.js';

@Module({
  controllers: [AuthController, AccountsController],
  providers: [IdentityService],
  exports: [IdentityService],
})
export class IdentityModule {}

// The Docker Engine API front door (libs/frontdoor). Its middleware and the 'upgrade' handler for
// hijacked attach/exec are installed on the HTTP server by controller.ts (installFrontDoor).
import { Module } from '@nestjs/common';
import { RbacModule } from '../rbac/rbac.module.js';
import { FrontDoorService } from './frontdoor.service.js';

@Module({
  imports: [RbacModule],
  providers: [FrontDoorService],
  exports: [FrontDoorService],
})
export class FrontDoorModule {}

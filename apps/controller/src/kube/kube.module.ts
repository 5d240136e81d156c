// Kubernetes wiring: UCP's Kubernetes endpoints. The front door and webhooks themselves are plain
// Node handlers from libs/kube, started by controller.ts (see setup.ts).
import { Module } from '@nestjs/common';
import { FrontDoorModule } from '../frontdoor/frontdoor.module.js';
import { IdentityModule } from '../identity/identity.module.js';
import { RbacModule } from '../rbac/rbac.module.js';
import { KubeController } from './kube.controller.js';

@Module({
  imports: [IdentityModule, RbacModule, FrontDoorModule],
  controllers: [KubeController],
})
export class KubeModule {}

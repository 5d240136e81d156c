import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { CertificateAuthorityService, NodeService } from '@orca/cluster';
import type { Store } from '@orca/store';
import { IdentityModule } from './identity/identity.module.js';
import { NodesController } from './nodes.controller.js';
import { RbacModule } from './rbac/rbac.module.js';
import { SystemController } from './system.controller.js';
import { STORE } from './tokens.js';

/**
 * Feature modules of the controller (identity, RBAC, ...). Each is a Nest module whose providers
 * may inject STORE, CertificateAuthorityService and NodeService (exported globally below).
 */
export const FEATURE_MODULES: Type[] = [RbacModule, IdentityModule];

@Module({})
export class ControllerModule {
  static register(deps: {
    store: Store;
    cas: CertificateAuthorityService;
    nodes: NodeService;
  }): DynamicModule {
    return {
      module: ControllerModule,
      global: true,
      imports: [...FEATURE_MODULES],
      controllers: [SystemController, NodesController],
      providers: [
        { provide: STORE, useValue: deps.store },
        { provide: CertificateAuthorityService, useValue: deps.cas },
        { provide: NodeService, useValue: deps.nodes },
      ],
      exports: [STORE, CertificateAuthorityService, NodeService],
    };
  }
}

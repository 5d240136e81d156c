import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { CertificateAuthorityService, KubePki, NodeService } from '@orca/cluster';
import type { KubeService } from '@orca/kube';
import type { OidcService } from '@orca/oidc';
import { Authorizer } from '@orca/rbac';
import type { ControllerConfig } from '@orca/config';
import type { Store } from '@orca/store';
import { AuditModule } from './audit/audit.module.js';
import { ConfigTomlModule } from './config/config.module.js';
import { FrontDoorModule } from './frontdoor/frontdoor.module.js';
import { IdentityModule } from './identity/identity.module.js';
import { KubeModule } from './kube/kube.module.js';
import { KUBE_SERVICE } from './kube/tokens.js';
import { NodesController } from './nodes.controller.js';
import { OidcController } from './oidc/oidc.controller.js';
import { RbacModule } from './rbac/rbac.module.js';
import { SystemController } from './system.controller.js';
import { CONTROLLER_CONFIG, OIDC, STORE } from './tokens.js';

/**
 * Feature modules of the controller (identity, RBAC, ...). Each is a Nest module whose providers
 * may inject STORE, CertificateAuthorityService and NodeService (exported globally below).
 */
export const FEATURE_MODULES: Type[] = [
  RbacModule,
  IdentityModule,
  ConfigTomlModule,
  AuditModule,
  FrontDoorModule,
  KubeModule,
];

@Module({})
export class ControllerModule {
  static register(deps: {
    config: ControllerConfig;
    store: Store;
    cas: CertificateAuthorityService;
    nodes: NodeService;
    oidc: OidcService;
    /** Builds the Kubernetes service with RbacModule's Authorizer (absent: no Kubernetes). */
    kube?: (authorizer: Authorizer) => Promise<KubeService>;
    kubePki?: KubePki;
  }): DynamicModule {
    return {
      module: ControllerModule,
      global: true,
      imports: [...FEATURE_MODULES],
      controllers: [SystemController, NodesController, OidcController],
      providers: [
        { provide: CONTROLLER_CONFIG, useValue: deps.config },
        { provide: STORE, useValue: deps.store },
        { provide: CertificateAuthorityService, useValue: deps.cas },
        { provide: NodeService, useValue: deps.nodes },
        { provide: OIDC, useValue: deps.oidc },
        {
          provide: KUBE_SERVICE,
          inject: [Authorizer],
          useFactory: async (authorizer: Authorizer) => (deps.kube ? deps.kube(authorizer) : null),
        },
        { provide: KubePki, useValue: deps.kubePki ?? null },
      ],
      exports: [
        CONTROLLER_CONFIG,
        STORE,
        CertificateAuthorityService,
        NodeService,
        OIDC,
        KUBE_SERVICE,
        KubePki,
      ],
    };
  }
}

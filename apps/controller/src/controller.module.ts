import { Module, type DynamicModule } from '@nestjs/common';
import { CertificateAuthorityService, NodeService } from '@orca/cluster';
import type { Store } from '@orca/store';
import { NodesController } from './nodes.controller.js';
import { SystemController } from './system.controller.js';
import { STORE } from './tokens.js';

@Module({})
export class ControllerModule {
  static register(deps: {
    store: Store;
    cas: CertificateAuthorityService;
    nodes: NodeService;
  }): DynamicModule {
    return {
      module: ControllerModule,
      controllers: [SystemController, NodesController],
      providers: [
        { provide: STORE, useValue: deps.store },
        { provide: CertificateAuthorityService, useValue: deps.cas },
        { provide: NodeService, useValue: deps.nodes },
      ],
    };
  }
}

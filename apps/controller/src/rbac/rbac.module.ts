// RBAC wiring: the Authorizer (the one decision point) and the UCP roles/collections/grants API.
import { Logger, Module, type OnModuleDestroy } from '@nestjs/common';
import { Directory } from '@orca/identity';
import { Authorizer, type SubjectDirectory } from '@orca/rbac';
import type { Store } from '@orca/store';
import { STORE } from '../tokens.js';
import { SUBJECT_DIRECTORY } from './directory.js';
import { CollectionsController, GrantsController, RolesController } from './rbac.controller.js';

@Module({
  controllers: [RolesController, CollectionsController, GrantsController],
  providers: [
    // Teams and orgs come from eNZi's directory, so grants to them reach their members.
    { provide: SUBJECT_DIRECTORY, inject: [STORE], useFactory: (store: Store) => new Directory(store) },
    {
      provide: Authorizer,
      inject: [STORE, SUBJECT_DIRECTORY],
      useFactory: (store: Store, directory: SubjectDirectory) =>
        new Authorizer(store, directory, new Logger('rbac')),
    },
  ],
  exports: [Authorizer, SUBJECT_DIRECTORY],
})
export class RbacModule implements OnModuleDestroy {
  constructor(private readonly authorizer: Authorizer) {}

  /** The Authorizer's store watch ends with the controller. */
  async onModuleDestroy(): Promise<void> {
    await this.authorizer.close();
  }
}

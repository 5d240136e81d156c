// Wiring of libs/frontdoor into the controller: the one Authenticator (libs/identity), the one
// Authorizer (RbacModule), the node list, and the controller's own manager certificate from the
// cluster CA, which ucp-proxy on every node admits.
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { ApiError, type Principal } from '@orca/api';
import { CertificateAuthorityService, NodeService, PROXY_PORT } from '@orca/cluster';
import type { ControllerConfig } from '@orca/config';
import { FrontDoor, type EngineCredentials } from '@orca/frontdoor';
import { Authenticator, watchedAccounts, type WatchedAccounts } from '@orca/identity';
import { createCsr, generateKeyPair, parseCertificate, publicKeyFingerprint } from '@orca/pki';
import { Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';
import type { Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { peerCertificatePem } from '../peer.js';
import { CONTROLLER_CONFIG, STORE } from '../tokens.js';

@Injectable()
export class FrontDoorService implements OnModuleDestroy {
  readonly frontDoor: FrontDoor;
  private readonly identity: WatchedAccounts;
  private renewal?: NodeJS.Timeout;

  constructor(
    @Inject(STORE) store: Store,
    private readonly cas: CertificateAuthorityService,
    nodes: NodeService,
    authorizer: Authorizer,
    @Inject(CONTROLLER_CONFIG) config: ControllerConfig,
  ) {
    const logger = new Logger('frontdoor');
    // Key registrations, accounts and memberships from the process's watched copy (shared with the
    // Kubernetes side): no store reads per request.
    this.identity = watchedAccounts(store, { warn: (m) => logger.warn(m) });
    const authenticator = new Authenticator(
      store,
      cas,
      { warn: (m) => logger.warn(m) },
      undefined,
      this.identity,
    );
    // A bundle certificate is verified (chain, parse) once per TLS connection, by the Authenticator;
    // later requests on the connection only re-check that its key is still registered to an
    // active account, so revocation still takes effect on the next request.
    const verified = new WeakMap<object, { name: string; keyId: string }>();
    const authenticate = async (request: IncomingMessage): Promise<Principal> => {
      const authorization = request.headers.authorization;
      const known = authorization ? undefined : verified.get(request.socket);
      if (known) {
        const account = await this.identity.ownerOfKey(known.name, known.keyId);
        if (!account)
          throw new ApiError(
            401,
            'UNAUTHORIZED',
            'client certificate is not registered to an active account',
          );
        return { id: account.id, name: account.name, isAdmin: account.isAdmin, via: 'certificate' };
      }
      const peer = peerCertificatePem(request as Request);
      const principal = await authenticator.authenticate({ authorization, peerCertificatePem: peer });
      if (principal.via === 'certificate' && peer) {
        verified.set(request.socket, {
          name: principal.name,
          keyId: publicKeyFingerprint(parseCertificate(peer).publicKeySpkiPem),
        });
      }
      return principal;
    };
    this.frontDoor = new FrontDoor({
      store,
      authorizer,
      authenticate,
      groupsOf: (accountId) => this.identity.groupsOf(accountId),
      listNodes: () => nodes.list(),
      credentials: () => this.issueCredentials(),
      proxyPort: PROXY_PORT,
      localEngineSocket: config.localEngineSocket,
      log: { warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
    });
  }

  /** A swarm-manager certificate for this controller, renewed at half its validity. */
  private async issueCredentials(): Promise<EngineCredentials> {
    const keys = await generateKeyPair();
    const cluster = await this.cas.cluster();
    const issued = await (
      await this.cas.clusterAuthority()
    ).issueNodeCertificate({
      csrPem: await createCsr(keys),
      nodeId: `ucp-controller-${hostname()}`,
      role: 'swarm-manager',
      clusterId: cluster.clusterId,
      validityMs: cluster.nodeCertValidityMs,
    });
    clearTimeout(this.renewal);
    const halfLife = Math.min(cluster.nodeCertValidityMs / 2, 2 ** 31 - 1);
    this.renewal = setTimeout(() => this.frontDoor.pool.resetCredentials(), halfLife);
    this.renewal.unref();
    return { caPem: await this.cas.clusterBundle(), certPem: issued.certPem, keyPem: keys.privateKeyPem };
  }

  async onModuleDestroy(): Promise<void> {
    clearTimeout(this.renewal);
    this.frontDoor.close();
    await this.identity.close();
  }
}

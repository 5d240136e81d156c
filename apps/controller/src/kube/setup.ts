// Builds the controller's KubeService from its settings: the front door shares the controller's
// serving certificate, and only certificates from the cluster CA may call the webhooks.
import type { CertificateAuthorityService } from '@orca/cluster';
import type { KubeConfig } from '@orca/config';
import { Authenticator, Directory } from '@orca/identity';
import { KubeService, type IdTokenVerifier } from '@orca/kube';
import { verifyCertificate } from '@orca/pki';
import { Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';

export async function createKubeService(deps: {
  config: KubeConfig;
  host: string;
  controllerUrl: string;
  store: Store;
  cas: CertificateAuthorityService;
  oidc: IdTokenVerifier;
  tls: { key: string; cert: string; ca: string[] };
  log: { log(message: string): void; warn(message: string): void };
  isLeader: () => boolean;
}): Promise<KubeService> {
  const { config, store, cas } = deps;
  const clusterBundle = await cas.clusterBundle();
  return new KubeService({
    ...config,
    host: deps.host,
    store,
    authenticator: new Authenticator(store, cas, deps.log),
    authorizer: new Authorizer(store, new Directory(store)),
    oidc: deps.oidc,
    controllerUrl: deps.controllerUrl,
    controllerCaPem: clusterBundle,
    tls: deps.tls,
    trustedWebhookCaller: async (pem) => {
      try {
        verifyCertificate(pem, await cas.clusterBundle());
        return true;
      } catch {
        return false;
      }
    },
    log: deps.log,
    isLeader: deps.isLeader,
  });
}

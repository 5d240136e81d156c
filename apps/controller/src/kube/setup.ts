// Builds the controller's KubeService from its settings: the front door shares the controller's
// serving certificate, and only certificates from the cluster CA may call the webhooks. It decides
// with RbacModule's Authorizer (one watch on the grants per controller) and answers identity
// questions from the process's watched accounts (shared with the Docker front door).
import type { CertificateAuthorityService } from '@orca/cluster';
import type { KubeConfig } from '@orca/config';
import { Authenticator, watchedAccounts } from '@orca/identity';
import { KubeService, type IdTokenVerifier } from '@orca/kube';
import { verifyCertificate } from '@orca/pki';
import { X509Certificate } from 'node:crypto';
import type { Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';

export async function createKubeService(deps: {
  config: KubeConfig;
  host: string;
  controllerUrl: string;
  store: Store;
  cas: CertificateAuthorityService;
  /** RbacModule's: closed with the Nest application, not here. */
  authorizer: Authorizer;
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
    // Key registrations from the watched copy: a bundle request to the front door reads no store.
    authenticator: new Authenticator(store, cas, deps.log, undefined, watchedAccounts(store, deps.log)),
    authorizer: deps.authorizer,
    oidc: deps.oidc,
    controllerUrl: deps.controllerUrl,
    controllerCaPem: clusterBundle,
    tls: deps.tls,
    trustedWebhookCaller: trustedCallerCache(async (pem) => {
      try {
        verifyCertificate(pem, await cas.clusterBundle());
        return true;
      } catch {
        return false;
      }
    }, cas),
    log: deps.log,
    isLeader: deps.isLeader,
  });
}

const VERIFIED_CALLER_TTL_MS = 60_000;
const VERIFIED_CALLERS_MAX = 1_000;

/**
 * The apiserver calls the webhooks hundreds of times a second with the same client certificate;
 * parsing and checking its chain costs milliseconds each time. A certificate that verified against
 * the current cluster bundle is remembered for a minute (never past its notAfter); a changed
 * bundle (CA rotation) or a failed check is never cached, so every check still applies.
 */
function trustedCallerCache(
  verify: (pem: string) => Promise<boolean>,
  cas: CertificateAuthorityService,
): (pem: string) => Promise<boolean> {
  const verified = new Map<string, { bundle: string; until: number }>();
  return async (pem) => {
    const bundle = await cas.clusterBundle();
    const now = Date.now();
    const hit = verified.get(pem);
    if (hit && hit.bundle === bundle && now < hit.until) return true;
    if (!(await verify(pem))) return false;
    const notAfter = Date.parse(new X509Certificate(pem).validTo);
    if (verified.size >= VERIFIED_CALLERS_MAX) verified.clear();
    verified.set(pem, { bundle, until: Math.min(now + VERIFIED_CALLER_TTL_MS, notAfter) });
    return true;
  };
}

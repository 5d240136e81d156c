// Everything orca does for Kubernetes, put together: the front door listener, the webhooks'
// reviewers, and a level-triggered loop that keeps orca's ValidatingWebhookConfiguration
// registered with the apiserver (created when missing, repaired when it drifts).
import { Directory, watchedAccounts, type Authenticator } from '@orca/identity';
import type { Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';
import type { ServerOptions } from 'node:https';
import { KubeAdmission } from './admission.js';
import { KubeAccessReviewer } from './authorization.js';
import { KubeFrontDoor } from './front-door.js';
import { KubeAuthenticator, type IdTokenVerifier } from './identity.js';
import { syncRbac } from './rbac-sync.js';
import { KubeUpstream, type KubeUpstreamSettings } from './upstream.js';
import { ADMISSION_WEBHOOK_PATH, webhookHandler } from './webhooks.js';

export const ADMISSION_CONFIGURATION_NAME = 'orca-ucp-authorization';

export interface KubeServiceOptions extends KubeUpstreamSettings {
  port: number;
  host: string;
  authorization: 'webhook' | 'rbac';
  store: Store;
  authenticator: Authenticator;
  authorizer: Authorizer;
  oidc: IdTokenVerifier;
  /** The controller's URL (webhooks are served there) and the CA bundle that verifies it. */
  controllerUrl: string;
  controllerCaPem: string;
  /** Serving certificate for the front door and the CAs whose client certificates it asks for. */
  tls: Pick<ServerOptions, 'key' | 'cert' | 'ca'>;
  trustedWebhookCaller(certificatePem: string): Promise<boolean>;
  log: { log(message: string): void; warn(message: string): void };
  /** Only the leader writes to the apiserver (registration, RoleBindings); default: always. */
  isLeader?: () => boolean;
  /** How often the level-triggered loop (registration, RBAC sync) runs; default 3 s. */
  reconcilePeriodMs?: number;
}

/** The ValidatingWebhookConfiguration that sends workloads to orca's admission webhook. */
export function admissionRegistration(controllerUrl: string, caPem: string): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: ADMISSION_CONFIGURATION_NAME },
    webhooks: [
      {
        name: 'ucpauthorization.orca.docker.com',
        clientConfig: {
          url: `${controllerUrl}${ADMISSION_WEBHOOK_PATH}`,
          caBundle: Buffer.from(caPem).toString('base64'),
        },
        rules: [
          {
            operations: ['CREATE', 'UPDATE'],
            apiGroups: ['', 'apps', 'batch'],
            apiVersions: ['*'],
            resources: [
              'pods',
              'deployments',
              'replicasets',
              'statefulsets',
              'daemonsets',
              'jobs',
              'cronjobs',
            ],
            scope: 'Namespaced',
          },
        ],
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
      },
    ],
  };
}

interface Registered {
  metadata?: { resourceVersion?: string };
  webhooks?: { name?: string; clientConfig?: unknown; rules?: unknown; failurePolicy?: string }[];
}

export class KubeService {
  readonly upstream: KubeUpstream;
  readonly frontDoor: KubeFrontDoor;
  readonly reviewer: KubeAccessReviewer;
  readonly admission: KubeAdmission;
  readonly webhooks: ReturnType<typeof webhookHandler>;
  private timer?: NodeJS.Timeout;
  private lastProblem = '';
  private stopped = false;

  constructor(private readonly options: KubeServiceOptions) {
    this.upstream = new KubeUpstream(options);
    this.frontDoor = new KubeFrontDoor({
      upstream: this.upstream,
      authenticator: new KubeAuthenticator(
        options.authenticator,
        options.oidc,
        undefined,
        // Groups and ID-token accounts from the process's watched copy (no store reads per request).
        watchedAccounts(options.store, options.log),
      ),
      tls: options.tls,
      // orca's OpenID Connect provider is mounted at /oidc on the controller (the apiserver's --oidc-issuer-url).
      orcaIssuer: `${options.controllerUrl}/oidc`,
      log: options.log,
    });
    this.reviewer = new KubeAccessReviewer(options.store, options.authorizer, options.authorization);
    this.admission = new KubeAdmission(options.store, options.authorizer);
    this.webhooks = webhookHandler({
      trustedCaller: options.trustedWebhookCaller,
      authorization: this.reviewer,
      admission: this.admission,
      log: options.log,
    });
  }

  /** The front door's port (what client bundles point kubectl at). */
  get port(): number {
    return this.options.port;
  }

  async start(): Promise<void> {
    await this.frontDoor.listen(this.options.port, this.options.host);
    const tick = async () => {
      if (this.options.isLeader?.() ?? true) {
        const registered = await this.ensureAdmissionRegistration().catch(() => false);
        if (registered && this.options.authorization === 'rbac') await this.syncRbacOnce();
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.options.reconcilePeriodMs ?? 3_000);
    };
    void tick();
  }

  /** One pass of the registration loop; true when the configuration is as it should be. */
  async ensureAdmissionRegistration(): Promise<boolean> {
    const wanted = admissionRegistration(this.options.controllerUrl, this.options.controllerCaPem);
    const path = `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${ADMISSION_CONFIGURATION_NAME}`;
    const problem = (message: string): false => {
      if (message !== this.lastProblem)
        this.options.log.warn(`kube admission webhook registration: ${message}`);
      this.lastProblem = message;
      return false;
    };
    let current;
    try {
      current = await this.upstream.request('GET', path);
    } catch (error) {
      return problem((error as Error).message);
    }
    if (current.status === 404) {
      const created = await this.upstream.request(
        'POST',
        '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
        wanted,
      );
      if (created.status !== 201) return problem(`create answered ${created.status}`);
      this.options.log.log('registered the UCP admission webhook with the apiserver');
      this.lastProblem = '';
      return true;
    }
    if (current.status !== 200) return problem(`read answered ${current.status}`);
    const existing = JSON.parse(current.body) as Registered;
    const want = (wanted.webhooks as Registered['webhooks'])![0];
    const have = existing.webhooks?.length === 1 ? existing.webhooks[0] : undefined;
    const same =
      have &&
      have.name === want.name &&
      JSON.stringify(have.clientConfig) === JSON.stringify(want.clientConfig) &&
      JSON.stringify(have.rules) === JSON.stringify(want.rules) &&
      have.failurePolicy === want.failurePolicy;
    if (same) return true;
    const replaced = await this.upstream.request('PUT', path, {
      ...wanted,
      metadata: { name: ADMISSION_CONFIGURATION_NAME, resourceVersion: existing.metadata?.resourceVersion },
    });
    if (replaced.status !== 200) return problem(`repair answered ${replaced.status}`);
    this.options.log.log('repaired the UCP admission webhook registration');
    this.lastProblem = '';
    return true;
  }

  /** One RBAC reconcile pass (UCP 3.1 mode); problems are logged once and retried next pass. */
  private async syncRbacOnce(): Promise<void> {
    try {
      const result = await syncRbac(this.upstream, this.options.store, new Directory(this.options.store));
      if (result.created + result.updated + result.deleted > 0)
        this.options.log.log(
          `kube RBAC sync: ${result.created} created, ${result.updated} updated, ${result.deleted} deleted`,
        );
    } catch (error) {
      const message = `kube RBAC sync: ${(error as Error).message}`;
      if (message !== this.lastProblem) this.options.log.warn(message);
      this.lastProblem = message;
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.frontDoor.close();
    this.upstream.close();
  }
}

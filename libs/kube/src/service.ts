// Everything orca does for Kubernetes, put together: the front door listener, the webhooks'
// reviewers, and a level-triggered loop that keeps orca's ValidatingWebhookConfiguration and
// MutatingWebhookConfiguration registered with the apiserver (created when missing, repaired when
// they drift).
import { Directory, watchedAccounts, type Authenticator } from '@orca/identity';
import type { Authorizer } from '@orca/rbac';
import type { Store } from '@orca/store';
import type { ServerOptions } from 'node:https';
import { KubeNodeSelector } from './admission-node-selector.js';
import { KubeAdmission } from './admission.js';
import { KubeAccessReviewer } from './authorization.js';
import { KubeFrontDoor } from './front-door.js';
import { KubeAuthenticator, type IdTokenVerifier } from './identity.js';
import { syncRbac } from './rbac-sync.js';
import { KubeUpstream, type KubeUpstreamSettings } from './upstream.js';
import { ADMISSION_WEBHOOK_PATH, MUTATING_ADMISSION_WEBHOOK_PATH, webhookHandler } from './webhooks.js';
import { WebhookWorker } from './webhook-worker.js';

export const ADMISSION_CONFIGURATION_NAME = 'orca-ucp-authorization';
export const NODE_SELECTOR_CONFIGURATION_NAME = 'orca-ucp-node-selector';

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
  /**
   * The port the webhooks are also answered on by a worker thread (0: any free one), which the
   * admission registrations then name; absent: only on the controller's port.
   */
  webhookPort?: number;
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

/**
 * The MutatingWebhookConfiguration that sends workloads to orca's UCPNodeSelector webhook: pods and
 * Jobs when created, the other workload controllers' pod templates when created or updated.
 * kube-system is left out here too, so Kubernetes' own pods never wait for orca.
 */
export function nodeSelectorRegistration(controllerUrl: string, caPem: string): Record<string, unknown> {
  const rule = (operations: string[], apiGroups: string[], resources: string[]) => ({
    operations,
    apiGroups,
    apiVersions: ['*'],
    resources,
    scope: 'Namespaced',
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: NODE_SELECTOR_CONFIGURATION_NAME },
    webhooks: [
      {
        name: 'ucpnodeselector.orca.docker.com',
        clientConfig: {
          url: `${controllerUrl}${MUTATING_ADMISSION_WEBHOOK_PATH}`,
          caBundle: Buffer.from(caPem).toString('base64'),
        },
        rules: [
          rule(['CREATE'], [''], ['pods', 'pods/binding']),
          rule(['CREATE'], ['batch'], ['jobs']),
          rule(['CREATE', 'UPDATE'], [''], ['replicationcontrollers']),
          rule(['CREATE', 'UPDATE'], ['apps'], ['deployments', 'replicasets', 'statefulsets', 'daemonsets']),
          rule(['CREATE', 'UPDATE'], ['batch'], ['cronjobs']),
        ],
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] },
          ],
        },
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
      },
    ],
  };
}

interface RegisteredWebhook {
  name?: string;
  clientConfig?: unknown;
  rules?: unknown;
  failurePolicy?: string;
  namespaceSelector?: unknown;
}

interface Registered {
  metadata?: { resourceVersion?: string };
  webhooks?: RegisteredWebhook[];
}

/** Whether the registered webhook is the wanted one (in what orca sets; the apiserver adds defaults). */
function sameWebhook(have: RegisteredWebhook | undefined, want: RegisteredWebhook): boolean {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return (
    !!have &&
    have.name === want.name &&
    same(have.clientConfig, want.clientConfig) &&
    same(have.rules, want.rules) &&
    have.failurePolicy === want.failurePolicy &&
    (want.namespaceSelector === undefined || same(have.namespaceSelector, want.namespaceSelector))
  );
}

export class KubeService {
  readonly upstream: KubeUpstream;
  readonly frontDoor: KubeFrontDoor;
  readonly reviewer: KubeAccessReviewer;
  readonly admission: KubeAdmission;
  readonly nodeSelector: KubeNodeSelector;
  readonly webhooks: ReturnType<typeof webhookHandler>;
  private timer?: NodeJS.Timeout;
  private lastProblem = '';
  private stopped = false;
  private webhookWorker?: WebhookWorker;

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
      // The cluster's OIDC issuer (one for every manager; an admin may change it): its ID tokens are orca's to check.
      orcaIssuer: () => options.oidc.issuer ?? `${options.controllerUrl}/oidc`,
      log: options.log,
    });
    this.reviewer = new KubeAccessReviewer(options.store, options.authorizer, options.authorization);
    this.admission = new KubeAdmission(options.store, options.authorizer);
    this.nodeSelector = new KubeNodeSelector(options.store);
    this.webhooks = webhookHandler({
      trustedCaller: options.trustedWebhookCaller,
      authorization: this.reviewer,
      admission: this.admission,
      mutation: this.nodeSelector,
      log: options.log,
    });
  }

  /** The front door's port (what client bundles point kubectl at). */
  get port(): number {
    return this.options.port;
  }

  async start(): Promise<void> {
    await this.frontDoor.listen(this.options.port, this.options.host);
    if (this.options.webhookPort !== undefined) {
      const { key, cert, ca } = this.options.tls;
      this.webhookWorker = await WebhookWorker.start({
        store: this.options.store,
        host: this.options.host,
        port: this.options.webhookPort,
        tls: {
          key: String(key),
          cert: String(cert),
          ca: [ca ?? []].flat().map(String),
        },
        authorization: this.options.authorization,
        trustedCaller: (pem) => this.options.trustedWebhookCaller(pem),
        log: this.options.log,
      });
    }
    const tick = async () => {
      if (this.options.isLeader?.() ?? true) {
        const registered = await this.ensureAdmissionRegistration().catch(() => false);
        if (registered && this.options.authorization === 'rbac') await this.syncRbacOnce();
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.options.reconcilePeriodMs ?? 3_000);
    };
    void tick();
  }

  /** Where the apiserver is to call the webhooks: the worker's port when it runs, else the controller's. */
  get webhookUrl(): string {
    return this.webhookWorker?.url ?? this.options.controllerUrl;
  }

  /** One pass of the registration loop; true when both configurations are as they should be. */
  async ensureAdmissionRegistration(): Promise<boolean> {
    const { controllerCaPem } = this.options;
    const controllerUrl = this.webhookUrl;
    const validating = await this.ensureWebhookConfiguration(
      'validatingwebhookconfigurations',
      admissionRegistration(controllerUrl, controllerCaPem),
      'the UCP admission webhook',
    );
    const mutating = await this.ensureWebhookConfiguration(
      'mutatingwebhookconfigurations',
      nodeSelectorRegistration(controllerUrl, controllerCaPem),
      'the UCP node selector webhook',
    );
    return validating && mutating;
  }

  /** Creates the webhook configuration when missing, replaces it when it drifted. */
  private async ensureWebhookConfiguration(
    resource: 'validatingwebhookconfigurations' | 'mutatingwebhookconfigurations',
    wanted: Record<string, unknown>,
    what: string,
  ): Promise<boolean> {
    const name = (wanted.metadata as { name: string }).name;
    const collection = `/apis/admissionregistration.k8s.io/v1/${resource}`;
    const path = `${collection}/${name}`;
    const problem = (message: string): false => {
      message = `kube registration of ${what}: ${message}`;
      if (message !== this.lastProblem) this.options.log.warn(message);
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
      const created = await this.upstream.request('POST', collection, wanted);
      if (created.status !== 201) return problem(`create answered ${created.status}`);
      this.options.log.log(`registered ${what} with the apiserver`);
      this.lastProblem = '';
      return true;
    }
    if (current.status !== 200) return problem(`read answered ${current.status}`);
    const existing = JSON.parse(current.body) as Registered;
    const want = (wanted.webhooks as RegisteredWebhook[])[0];
    if (existing.webhooks?.length === 1 && sameWebhook(existing.webhooks[0], want)) return true;
    const replaced = await this.upstream.request('PUT', path, {
      ...wanted,
      metadata: { name, resourceVersion: existing.metadata?.resourceVersion },
    });
    if (replaced.status !== 200) return problem(`repair answered ${replaced.status}`);
    this.options.log.log(`repaired the registration of ${what}`);
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
    await this.webhookWorker?.close();
    this.upstream.close();
  }
}

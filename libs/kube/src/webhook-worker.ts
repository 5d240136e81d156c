// The apiserver's webhooks (authorization, validating and mutating admission) on their own port,
// answered by a worker thread. The apiserver calls them on the path of nearly every request and
// waits for each answer, so their latency tail should not include the controller's own work
// (reconcile loops, list and watch traffic, garbage collection of its larger heap): the worker
// has its own event loop and heap, and keeps its own watched copies of accounts and grants over a
// read-only view of the controller's store (PortStore), which also passes on every write the
// controller makes, so a changed grant applies to the next review as on the controller's port.
// The controller's port keeps serving the same paths (apiservers configured before still work).
import { httpsUrl } from '@orca/cluster';
import { serveStoreOverPort, type Store } from '@orca/store';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

export interface WebhookWorkerOptions {
  store: Store;
  host: string;
  /** 0: any free port (tests). */
  port: number;
  /** The serving certificate (the controller's: the webhook registrations carry its CA bundle). */
  tls: { key: string; cert: string; ca: string[] };
  authorization: 'webhook' | 'rbac';
  /** Whether a client certificate (PEM) may call the webhooks: asked on the controller's thread. */
  trustedCaller(certificatePem: string): Promise<boolean>;
  log?: { warn(message: string): void };
}

/** What the worker is started with (structured-cloned; the port is transferred). */
export interface WebhookWorkerData {
  storePort: MessagePort;
  host: string;
  port: number;
  tls: WebhookWorkerOptions['tls'];
  authorization: WebhookWorkerOptions['authorization'];
}

/** Worker → controller thread. */
export type WorkerMessage =
  | { type: 'listening'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'trusted?'; id: number; certificatePem: string }
  | { type: 'log'; message: string };

/** Controller thread → worker. */
export type WorkerReply = { type: 'trusted'; id: number; trusted: boolean } | { type: 'close' };

/**
 * The worker's script and the module hooks it needs. The controller runs from dist/ with
 * scripts/register.mjs resolving `@orca/*`; tests run these sources under jest, and then the worker
 * runs the build of the same file (npm test builds before testing).
 */
function workerEntry(): { script: URL; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const compiled = here.endsWith('.js');
  const marker = `${compiled ? '/dist' : ''}/libs/kube/src/`;
  const root = here.slice(0, here.lastIndexOf(marker));
  const script = join(root, 'dist', 'libs', 'kube', 'src', 'webhook-worker-main.js');
  if (!existsSync(script))
    throw new Error(`the webhook worker's script ${script} is not built (npm run build)`);
  const hooks = join(root, 'scripts', 'register.mjs');
  return {
    script: pathToFileURL(compiled ? join(dirname(here), 'webhook-worker-main.js') : script),
    execArgv: ['--import', pathToFileURL(hooks).href],
  };
}

export class WebhookWorker {
  private stopServingStore?: () => Promise<void>;
  private exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    readonly port: number,
    readonly host: string,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the worker; resolves once it listens (rejects when it cannot). */
  static async start(options: WebhookWorkerOptions): Promise<WebhookWorker> {
    const { script, execArgv } = workerEntry();
    const channel = new MessageChannel();
    const stopServingStore = serveStoreOverPort(options.store, channel.port1);
    const data: WebhookWorkerData = {
      storePort: channel.port2,
      host: options.host,
      port: options.port,
      tls: options.tls,
      authorization: options.authorization,
    };
    const worker = new Worker(script, { workerData: data, transferList: [channel.port2], execArgv });
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'trusted?') {
        options.trustedCaller(message.certificatePem).then(
          (trusted) => worker.postMessage({ type: 'trusted', id: message.id, trusted } satisfies WorkerReply),
          () => worker.postMessage({ type: 'trusted', id: message.id, trusted: false } satisfies WorkerReply),
        );
      } else if (message.type === 'log') {
        options.log?.warn(`kube webhooks: ${message.message}`);
      }
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        worker.on('message', (message: WorkerMessage) => {
          if (message.type === 'listening') resolve(message.port);
          else if (message.type === 'failed') reject(new Error(message.message));
        });
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the webhook worker exited with code ${code}`)));
      });
      const started = new WebhookWorker(worker, port, options.host);
      started.stopServingStore = stopServingStore;
      worker.on('error', (error) => options.log?.warn(`kube webhooks: the worker failed: ${error.message}`));
      return started;
    } catch (error) {
      await worker.terminate();
      await stopServingStore();
      throw new Error(
        `the Kubernetes webhooks cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`,
      );
    }
  }

  /** `https://host:port`, the base of the webhook URLs the apiserver is given. */
  get url(): string {
    return httpsUrl(this.host, this.port);
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: 'close' } satisfies WorkerReply);
    const timeout = setTimeout(() => void this.worker.terminate(), 5_000);
    await this.exited;
    clearTimeout(timeout);
    await this.stopServingStore?.();
  }
}

// The webhook worker thread (started by webhook-worker.ts): the same webhook handler as the
// controller's port, on its own HTTPS server and event loop, deciding from its own watched copies
// of accounts and grants kept over a read-only view of the controller's store. The only questions
// it sends back to the controller's thread are about callers' certificates (the CA lives there).
import { watchedAccounts } from '@orca/identity';
import { Authorizer } from '@orca/rbac';
import { PortStore } from '@orca/store';
import { createServer } from 'node:https';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { KubeAdmission } from './admission.js';
import { KubeNodeSelector } from './admission-node-selector.js';
import { KubeAccessReviewer } from './authorization.js';
import { sendStatus } from './status.js';
import { webhookHandler } from './webhooks.js';
import type { WebhookWorkerData, WorkerMessage, WorkerReply } from './webhook-worker.js';

const data = workerData as WebhookWorkerData;
const parent = parentPort as MessagePort;
const post = (message: WorkerMessage) => parent.postMessage(message);
const log = { warn: (message: string) => post({ type: 'log', message }) };

const store = new PortStore(data.storePort);
const accounts = watchedAccounts(store, log);
const authorizer = new Authorizer(store, accounts, log);

// Caller checks answered by the controller's thread, matched by id.
let nextQuestion = 1;
const questions = new Map<number, (trusted: boolean) => void>();
parent.on('message', (reply: WorkerReply) => {
  if (reply.type === 'trusted') {
    questions.get(reply.id)?.(reply.trusted);
    questions.delete(reply.id);
  } else if (reply.type === 'close') {
    server.closeAllConnections();
    server.close(() => void Promise.all([authorizer.close(), store.close()]).finally(() => process.exit(0)));
  }
});
const trustedCaller = (certificatePem: string) =>
  new Promise<boolean>((resolve) => {
    const id = nextQuestion++;
    questions.set(id, resolve);
    post({ type: 'trusted?', id, certificatePem });
  });

const handle = webhookHandler({
  trustedCaller,
  authorization: new KubeAccessReviewer(store, authorizer, data.authorization),
  admission: new KubeAdmission(store, authorizer),
  mutation: new KubeNodeSelector(store),
  log,
});
const server = createServer(
  { ...data.tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
  (req, res) =>
    handle(req, res, () => {
      req.resume();
      sendStatus(res, 404, 'only the webhook paths are served here');
    }),
);
// As the apiserver's client keeps connections open between reviews.
server.keepAliveTimeout = 90_000;
server.headersTimeout = 30_000;
server.on('clientError', (_error, socket) => socket.destroy());

// Warm the copies first: the first review should not wait for a listing.
void accounts.byName('').catch(() => undefined);
server.once('error', (error) => post({ type: 'failed', message: error.message }));
server.listen(data.port, data.host, () => {
  const address = server.address();
  post({ type: 'listening', port: typeof address === 'object' && address ? address.port : data.port });
});

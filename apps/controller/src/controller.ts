// Starts ucp-controller: store, CAs, admin, the leader-only loops, and the HTTPS server whose
// certificate comes from the cluster CA. Everything it knows is in the store, so any number of
// controllers can serve the same cluster.
import 'reflect-metadata';
import { Logger, type INestApplication, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { CertificateAuthorityService, KubePki, ManagerLoops, NodeService } from '@orca/cluster';
import { ConfigError, type ControllerConfig } from '@orca/config';
import { Authenticator, ensureAdmin } from '@orca/identity';
import type { KubeService } from '@orca/kube';
import type { Authorizer } from '@orca/rbac';
import { OidcService } from '@orca/oidc';
import { generateKeyPair } from '@orca/pki';
import { openStore, type Store } from '@orca/store';
import { json, type NextFunction, type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ApiErrorFilter, errorResponse } from './api-error.filter.js';
import { auditMiddleware } from './audit/audit.middleware.js';
import { CONFIG_TOML_PATH, configTomlBody } from './config/body.js';
import { ControllerModule } from './controller.module.js';
import { installFrontDoor, serveBeforeExpress } from './frontdoor/install.js';
import { auditKubeFrontDoor } from './kube/audit.js';
import { FakeNodeLoop, managedKubeConfig, writeKubeClientFiles } from './kube/managed.js';
import { createKubeService } from './kube/setup.js';

export interface RunningController {
  url: string;
  store: Store;
  cas: CertificateAuthorityService;
  nodes: NodeService;
  loops: ManagerLoops;
  oidc: OidcService;
  /** The Kubernetes front door and webhooks (only with ORCA_KUBE_APISERVER). */
  kube?: KubeService;
  /** Set on the first start when no ORCA_ADMIN_PASSWORD was given: print it once. */
  generatedAdminPassword?: string;
  close(): Promise<void>;
}

/** The key-encryption key: given directly, read from a file, or (local embedded runs only) generated once. */
export function resolveKek(config: ControllerConfig): string {
  if (config.kek) return config.kek;
  if (config.kekFile) {
    try {
      return readFileSync(config.kekFile, 'utf8').trim();
    } catch (error) {
      throw new ConfigError('ORCA_KEK_FILE', `cannot read ${config.kekFile}: ${(error as Error).message}`);
    }
  }
  if (config.store.kind !== 'embedded') {
    throw new ConfigError(
      'ORCA_KEK',
      'a key-encryption key (ORCA_KEK or ORCA_KEK_FILE) is required with etcd',
    );
  }
  const path = join(config.dataDir, 'kek');
  if (!existsSync(path)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  return readFileSync(path, 'utf8').trim();
}

export async function startController(
  config: ControllerConfig,
  options: { store?: Store; logger?: Logger } = {},
): Promise<RunningController> {
  const logger = options.logger ?? new Logger('ucp-controller');
  const kek = resolveKek(config);
  const store =
    options.store ??
    (await openStore(
      config.store.kind === 'embedded'
        ? { kind: 'embedded', dir: config.store.dir }
        : {
            kind: 'etcd',
            endpoints: config.store.endpoints,
            prefix: config.store.prefix,
            tls: config.store.tls && {
              ca: readFileSync(config.store.tls.caFile, 'utf8'),
              cert: readFileSync(config.store.tls.certFile, 'utf8'),
              key: readFileSync(config.store.tls.keyFile, 'utf8'),
            },
          },
    ));
  const cas = new CertificateAuthorityService(store, kek);
  const { created, cluster } = await cas.bootstrap(config.nodeCertValidityMs);
  if (created) logger.log(`created cluster ${cluster.clusterId}: cluster root CA and client root CA`);
  const admin = await ensureAdmin(store, config.adminPassword);
  const nodes = new NodeService(store, cas, { nodeDownAfterMs: config.nodeDownAfterMs });
  const loops = new ManagerLoops(store, cas, `${hostname()}:${config.host}:${config.port}`, {
    log: (m) => logger.log(m),
    error: (m) => logger.error(m),
  });
  loops.start();

  // The serving certificate: from the cluster CA, so agents verify managers with the pinned bundle.
  const serverKey = await generateKeyPair();
  const server = await (
    await cas.clusterAuthority()
  ).issueServerCertificate({
    publicKeyPem: serverKey.publicKeyPem,
    commonName: 'ucp-controller',
    hosts: [...new Set([config.host, '127.0.0.1', 'localhost', hostname()])],
    validityMs: config.nodeCertValidityMs,
  });
  const clientCas = [await cas.clusterBundle(), (await cas.clientAuthority()).bundlePem];
  const url = `https://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  const oidc = await OidcService.start({
    // orca has no external-URL setting: the first manager's URL becomes the cluster's issuer.
    defaultIssuer: `${url}/oidc`,
    store,
    kek,
    authenticator: new Authenticator(store, cas, { warn: (m) => logger.warn(m) }),
    log: { log: (m) => logger.log(m), warn: (m) => logger.warn(m) },
  });

  // Kubernetes: the apiserver named by ORCA_KUBE_APISERVER, else the one the reconciler runs here.
  const kubePki = new KubePki(store, cas, kek);
  const kubeConfig = config.kube ?? (await managedKubeConfig(config, store, kubePki));
  // Built while Nest starts, so that it decides with RbacModule's Authorizer.
  let kube: KubeService | undefined;
  const buildKube =
    kubeConfig &&
    (async (authorizer: Authorizer) =>
      (kube = await createKubeService({
        config: kubeConfig,
        host: config.host,
        controllerUrl: url,
        store,
        cas,
        authorizer,
        oidc,
        tls: { key: serverKey.privateKeyPem, cert: server.certPem, ca: clientCas },
        log: { log: (m) => logger.log(m), warn: (m) => logger.warn(m) },
        isLeader: () => loops.isLeader(),
      })));
  let fakeNodes: FakeNodeLoop | undefined;

  let app: INestApplication | undefined;
  // Stops what was started, in reverse order: on close, and when the start fails half-way.
  const stop = async () => {
    fakeNodes?.stop();
    await kube?.close();
    await app?.close();
    await oidc.close();
    await loops.stop();
    if (!options.store) await store.close();
  };
  try {
    app = await NestFactory.create(
      ControllerModule.register({ config, store, cas, nodes, oidc, kube: buildKube, kubePki }),
      new ExpressAdapter(),
      {
        // Client certificates are asked for but checked per route: joins and /_ping come without one.
        httpsOptions: {
          key: serverKey.privateKeyPem,
          cert: server.certPem,
          ca: clientCas,
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
        } as NonNullable<NestApplicationOptions['httpsOptions']>,
        logger: ['error', 'warn'],
        bodyParser: false,
      },
    );
    if (kube && !config.kube)
      fakeNodes = new FakeNodeLoop(
        store,
        kube,
        () => loops.isLeader(),
        { warn: (m) => logger.warn(m) },
        undefined,
        () => writeKubeClientFiles(config.dataDir, kubePki),
      );
    app.useGlobalFilters(new ApiErrorFilter());
    // The 6443 front door's state-changing requests are audited like the UCP API's.
    if (kube) auditKubeFrontDoor(kube, store);
    // First, so every state-changing request gets an audit entry, also those refused below.
    app.use(auditMiddleware(store));
    // The OpenID Connect provider parses its own bodies (forms), so it comes before any parser.
    app.use('/oidc', oidc.handle);
    // The Docker Engine API: before any body parser, so bodies and streams reach the engines as sent.
    installFrontDoor(app);
    // The apiserver's webhook reviews change nothing (and come at request rate): answered first,
    // before the Docker front door, Express and Nest see the request, so not audited.
    if (kube) serveBeforeExpress(app.getHttpServer() as Server, kube.webhooks);
    app.use(CONFIG_TOML_PATH, configTomlBody());
    // UCP parses JSON bodies whatever the Content-Type says (clients send `curl -d`), up to 1 MiB.
    app.use(json({ limit: '1mb', type: () => true }));
    // Parser errors happen before Nest's router: answer them in UCP's error shape too.
    app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) return next(error);
      const { status, body } = errorResponse(error);
      res.status(status).json(body);
    });
    await app.listen(config.port, config.host);
    await kube?.start();
    fakeNodes?.start();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    store,
    cas,
    nodes,
    loops,
    generatedAdminPassword: admin.generatedPassword,
    oidc,
    kube,
    close: stop,
  };
}

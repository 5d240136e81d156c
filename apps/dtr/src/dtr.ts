// Starts a DTR replica: the registry (/v2/), its token service (/auth/token) and /api/v0 over
// HTTPS with a certificate from orca's cluster CA, on the same store as the controller. The logic
// lives in libs/registry; this file only wires it to a server.
import { CertificateAuthorityService } from '@orca/cluster';
import { ConfigError } from '@orca/config';
import { Authenticator } from '@orca/identity';
import { generateKeyPair } from '@orca/pki';
import { createDtrHandler, type DtrHandler } from '@orca/registry';
import type { Store } from '@orca/store';
import { createServer, type Server } from 'node:https';
import { hostname } from 'node:os';

export const DEFAULT_DTR_PORT = 9443;

export interface DtrConfig {
  /** Address DTR binds and advertises (the token realm and service use it). */
  host: string;
  port: number;
  /** Blobs live under <dataDir>/registry. */
  dataDir: string;
  /** host[:port] clients reach DTR at, when not this replica's own address (replicas behind one
   *  load balancer): the token realm and service name. Every replica must use the same. */
  externalHost?: string;
  /** Registry token lifetime in seconds (default 300). */
  tokenTtlSeconds?: number;
  /** First webhook retry delay in ms (doubles per attempt; default 1000). */
  webhookBackoffBaseMs?: number;
  /** Benchmarks only, never from the environment: /v2/ without token auth. */
  registryAuthDisabled?: boolean;
}

/** DTR settings from the environment: ORCA_DTR_PORT (default 9443), ORCA_DTR_HOST (default the
 *  controller's host) and ORCA_DTR_EXTERNAL_HOST (default host:port). */
export function loadDtrConfig(
  env: Record<string, string | undefined>,
  defaults: { host: string; dataDir: string },
): DtrConfig {
  const rawPort = env.ORCA_DTR_PORT;
  let port = DEFAULT_DTR_PORT;
  if (rawPort !== undefined && rawPort !== '') {
    if (!/^\d+$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535)
      throw new ConfigError('ORCA_DTR_PORT', `"${rawPort}" is not a port number`);
    port = Number(rawPort);
  }
  const host = env.ORCA_DTR_HOST || defaults.host;
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw new ConfigError('ORCA_DTR_HOST', `"${host}" is not a host name or address`);
  const externalHost = env.ORCA_DTR_EXTERNAL_HOST || undefined;
  if (externalHost !== undefined && !/^[A-Za-z0-9.-]+(?::\d{1,5})?$/.test(externalHost))
    throw new ConfigError('ORCA_DTR_EXTERNAL_HOST', `"${externalHost}" is not host or host:port`);
  return { host, port, dataDir: defaults.dataDir, externalHost };
}

export interface RunningDtr {
  /** This replica's own address. */
  url: string;
  /** host:port: what `docker login` and image names use (the external host when one is set). */
  registryHost: string;
  /** The CA bundle clients trust for DTR's certificate (orca's cluster root CA). */
  caPem: string;
  handler: DtrHandler;
  close(): Promise<void>;
}

const SERVING_CERT_VALIDITY_MS = 90 * 24 * 3600 * 1000;

export async function startDtr(
  config: DtrConfig,
  options: {
    store: Store;
    kek: string;
    cas?: CertificateAuthorityService;
    log?: { error(message: string): void };
  },
): Promise<RunningDtr> {
  const cas = options.cas ?? new CertificateAuthorityService(options.store, options.kek);
  const hostPart = config.host.includes(':') ? `[${config.host}]` : config.host;
  const registryHost = config.externalHost ?? (config.port === 443 ? hostPart : `${hostPart}:${config.port}`);
  const handler = await createDtrHandler({
    store: options.store,
    authenticator: new Authenticator(options.store, cas),
    kek: options.kek,
    dataDir: config.dataDir,
    dtrHost: registryHost,
    tokenTtlSeconds: config.tokenTtlSeconds,
    webhookBackoffBaseMs: config.webhookBackoffBaseMs,
    registryAuthDisabled: config.registryAuthDisabled,
    log: options.log ?? { error: (m) => console.error(m) },
  });
  const key = await generateKeyPair();
  const issued = await (
    await cas.clusterAuthority()
  ).issueServerCertificate({
    publicKeyPem: key.publicKeyPem,
    commonName: 'dtr',
    hosts: [...new Set([config.host, '127.0.0.1', 'localhost', hostname()])],
    validityMs: SERVING_CERT_VALIDITY_MS,
  });
  const server: Server = createServer(
    { key: key.privateKeyPem, cert: issued.certPem, minVersion: 'TLSv1.2' },
    handler,
  );
  // Long uploads stream for as long as the client sends; idle keep-alive sockets still close.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    url: `https://${hostPart}:${config.port}`,
    registryHost,
    caPem: await cas.clusterBundle(),
    handler,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await handler.jobRunner.stop();
      await handler.automation.stop();
    },
  };
}

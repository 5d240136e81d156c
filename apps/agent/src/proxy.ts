// ucp-proxy: mutual-TLS access to this node's engine. Only certificates from the cluster CA with
// the manager role get through; each accepted connection is piped byte for byte to the engine
// socket, so streams, hijacked attach/exec and upgrades pass unchanged.
import { certificateDerToPem, parseCertificate } from '@orca/pki';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { join } from 'node:path';

export interface ProxyOptions {
  host: string;
  port: number;
  engineSocket: string;
  certsDir: string;
  /** Close connections idle this long (0: never; engine streams such as logs -f may idle for hours). */
  idleTimeoutMs?: number;
  log?: (line: string) => void;
}

export function peerRole(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate(false);
  if (!cert?.raw) return undefined;
  return parseCertificate(certificateDerToPem(cert.raw)).subject.OU;
}

export async function startProxy(options: ProxyOptions): Promise<{ server: Server; close(): Promise<void> }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const server = createServer({
    key: readFileSync(join(options.certsDir, 'key.pem')),
    cert: readFileSync(join(options.certsDir, 'cert.pem')),
    ca: readFileSync(join(options.certsDir, 'ca.pem')),
    requestCert: true,
    // The TLS layer already refuses certificates that do not chain to the cluster CA.
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // A client that half-closes (stdin EOF on `docker exec -i`) must still get the rest of the
    // output: the end is forwarded to the engine and the other direction stays open.
    allowHalfOpen: true,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    let role: string | undefined;
    try {
      role = peerRole(socket);
    } catch {
      role = undefined;
    }
    if (role !== 'swarm-manager') {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' +
          '{"errors":[{"code":"FORBIDDEN","message":"only managers may reach this engine"}]}',
      );
      return;
    }
    const engine = connect({ path: options.engineSocket, allowHalfOpen: true });
    // Small request/response exchanges must not wait on Nagle's algorithm.
    socket.setNoDelay(true);
    if (options.idleTimeoutMs) socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
    socket.pipe(engine);
    // The engine writes an answer in pieces (headers, chunks, the last chunk): what arrives within
    // one turn of the event loop leaves in one TLS record and write, at the end of that turn.
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    engine.on('data', (chunk: Buffer) => {
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      if (!socket.write(chunk)) engine.pause();
    });
    socket.on('drain', () => engine.resume());
    engine.on('end', () => socket.end());
    const close = () => {
      socket.destroy();
      engine.destroy();
    };
    engine.on('error', (error) => {
      log(`ucp-proxy: engine connection failed: ${error.message}`);
      close();
    });
    socket.on('error', close);
    socket.on('close', () => engine.destroy());
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  log(`ucp-proxy: listening on ${options.host}:${options.port}, forwarding to ${options.engineSocket}`);
  return {
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// Puts the front door in front of UCP's routes. Docker API requests are answered straight from the
// HTTPS server's 'request' event, before Express and Nest see them (their routing costs as much as
// the front door's own work on a list call); bodies and streams reach the engines untouched. The
// audit log still gets every state-changing one: the front door records it itself, as the audit
// middleware would. Hijacked attach and exec come on the server's 'upgrade' event.
import { Logger, type INestApplication } from '@nestjs/common';
import type { Store } from '@orca/store';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AuditLog, auditEntry, isStateChanging } from '../audit/audit.middleware.js';
import { STORE } from '../tokens.js';
import { FrontDoorService } from './frontdoor.service.js';

type EarlyHandler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * Puts `handler` in front of the server's other 'request' listeners (the Express application, and
 * whatever was put in front of it before): what it does not answer goes on to them.
 */
export function serveBeforeExpress(server: Server, handler: EarlyHandler): void {
  const others = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) =>
    handler(req, res, () => {
      for (const listener of others) listener.call(server, req, res);
    }),
  );
}

type Locals = { locals?: Record<string, unknown> };

/**
 * Serves the Docker API from the server's 'request' event through `handle` (the front door's: true
 * when it took the request), and hands each state-changing request it served, once finished, to
 * `record` for the audit log, with the decision the front door noted.
 */
export function answerDockerApiFirst(
  server: Server,
  handle: (req: IncomingMessage, res: ServerResponse & Locals, next: () => void) => boolean,
  record: (
    req: IncomingMessage,
    originalUrl: string,
    status: number,
    locals: Record<string, unknown>,
    started: number,
  ) => void,
): void {
  serveBeforeExpress(server, (req, res: ServerResponse & Locals, next) => {
    const originalUrl = req.url ?? '/';
    const method = req.method ?? 'GET';
    const started = Date.now();
    // Where the decision is noted for the audit entry (Express would have made it).
    const locals: Record<string, unknown> = {};
    res.locals = locals;
    const served = handle(req, res, () => {
      // Not served here (not the Docker API, or /_ping, /version, /info): Express takes it as is.
      delete res.locals;
      next();
    });
    if (!served || !isStateChanging(method, originalUrl.split('?')[0] ?? '')) return;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      // 0: no complete HTTP response (the client went away).
      const status = res.headersSent || res.writableFinished ? res.statusCode : 0;
      record(req, originalUrl, status, locals, started);
    };
    res.once('finish', finish);
    res.once('close', finish);
  });
}

export function installFrontDoor(app: INestApplication): void {
  const { frontDoor } = app.get(FrontDoorService, { strict: false });
  const logger = new Logger('audit');
  const audit = new AuditLog(
    app.get<Store>(STORE, { strict: false }),
    (json) => process.stdout.write(`${json}\n`),
    (m) => logger.warn(m),
  );
  const record = (
    req: IncomingMessage,
    originalUrl: string,
    status: number,
    locals: Record<string, unknown>,
    started: number,
  ) => void audit.record(auditEntry(req, originalUrl, status, locals, started));
  // Hijacked attach/exec never pass the audit middleware: they get their entry here.
  frontDoor.onHijack = ({ req, status, locals, started }) =>
    record(req, req.url ?? '/', status, locals, started);
  const server = app.getHttpServer() as Server;
  answerDockerApiFirst(server, frontDoor.handle, record);
  server.on('upgrade', (request, socket, head: Buffer) =>
    frontDoor.upgrade(request, socket, head, server.listenerCount('upgrade') > 1),
  );
}

// Puts the front door in front of UCP's routes: Express middleware before the JSON body parser (so
// request bodies stream to the engines untouched), and the server's 'upgrade' event, which is where
// Node delivers hijacked attach and exec requests (Express never sees them).
import { Logger, type INestApplication } from '@nestjs/common';
import type { Store } from '@orca/store';
import type { Server } from 'node:http';
import { AuditLog, auditEntry } from '../audit/audit.middleware.js';
import { STORE } from '../tokens.js';
import { FrontDoorService } from './frontdoor.service.js';

export function installFrontDoor(app: INestApplication): void {
  const { frontDoor } = app.get(FrontDoorService, { strict: false });
  // Hijacked attach/exec never pass the audit middleware: they get their entry here.
  const logger = new Logger('audit');
  const audit = new AuditLog(
    app.get<Store>(STORE, { strict: false }),
    (json) => process.stdout.write(`${json}\n`),
    (m) => logger.warn(m),
  );
  frontDoor.onHijack = ({ req, status, locals, started }) =>
    void audit.record(auditEntry(req, req.url ?? '/', status, locals, started));
  app.use(frontDoor.handle);
  const server = app.getHttpServer() as Server;
  server.on('upgrade', (request, socket, head: Buffer) =>
    frontDoor.upgrade(request, socket, head, server.listenerCount('upgrade') > 1),
  );
}

// Puts the front door in front of UCP's routes: Express middleware before the JSON body parser (so
// request bodies stream to the engines untouched), and the server's 'upgrade' event, which is where
// Node delivers hijacked attach and exec requests (Express never sees them).
import type { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import { FrontDoorService } from './frontdoor.service.js';

export function installFrontDoor(app: INestApplication): void {
  const { frontDoor } = app.get(FrontDoorService, { strict: false });
  app.use(frontDoor.handle);
  const server = app.getHttpServer() as Server;
  server.on('upgrade', (request, socket, head: Buffer) =>
    frontDoor.upgrade(request, socket, head, server.listenerCount('upgrade') > 1),
  );
}

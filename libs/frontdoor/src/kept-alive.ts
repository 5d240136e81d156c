// GETs to one engine over kept-alive connections (mutual TLS to a node's ucp-proxy, or the local
// engine's unix socket), without Node's HTTP client: the front door's list and inspect calls are
// most of its upstream traffic, and the client's per-request machinery (request object, agent
// bookkeeping, listeners, timers) cost as much controller CPU as the rest of the call. One write per
// request; the answer (Content-Length or chunked) is read whole. Anything else (bodies, streams,
// hijacks) keeps to Node's client.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** How to open one connection to the engine: mutual TLS to host:port, or a unix socket path. */
export type EngineDial = (ConnectionOptions & { host: string; port: number }) | { socketPath: string };

export interface PlainAnswer {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/** A kept-alive connection the server had closed before our request got any answer. */
class StaleConnectionError extends Error {}

const MAX_HEAD = 64 * 1024;
const NO_BODY = new Set([204, 304]);

export class KeptAliveConnections {
  private readonly idle: Socket[] = [];
  private closed = false;

  constructor(
    private readonly dial: EngineDial,
    private readonly maxIdle = 64,
    private readonly maxBody = 64 * 1024 * 1024,
  ) {}

  /** GET `path`; rejects with the socket's error, or a timeout error after `timeoutMs`. */
  async get(path: string, timeoutMs: number): Promise<PlainAnswer> {
    if (/[\s]/.test(path)) throw new Error('invalid request path');
    const request = `GET ${path} HTTP/1.1\r\nHost: docker\r\n\r\n`;
    const reused = this.idle.pop();
    if (reused) {
      try {
        return await this.exchange(reused, request, timeoutMs, true);
      } catch (error) {
        // The server closed the idle connection as we sent on it: a GET can go again, once.
        if (!(error instanceof StaleConnectionError)) throw error;
      }
    }
    return this.exchange(await this.open(timeoutMs), request, timeoutMs, false);
  }

  close(): void {
    this.closed = true;
    for (const socket of this.idle.splice(0)) socket.destroy();
  }

  private open(timeoutMs: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const dial = this.dial;
      const socket = 'socketPath' in dial ? netConnect(dial.socketPath) : tlsConnect(dial);
      const ready = 'socketPath' in dial ? 'connect' : 'secureConnect';
      const failed = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        socket.destroy();
        failed(new Error(`no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', failed);
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.off('error', failed);
        socket.setNoDelay(true);
        // While idle in the pool: a closed or failing connection leaves it.
        socket.on('error', () => socket.destroy());
        socket.on('close', () => {
          const at = this.idle.indexOf(socket);
          if (at >= 0) this.idle.splice(at, 1);
        });
        resolve(socket);
      });
    });
  }

  private exchange(
    socket: Socket,
    request: string,
    timeoutMs: number,
    reused: boolean,
  ): Promise<PlainAnswer> {
    return new Promise((resolve, reject) => {
      let buffered: Buffer = Buffer.alloc(0);
      let received = false;
      let head:
        { status: number; headers: Record<string, string>; chunked: boolean; length?: number } | undefined;
      const body: Buffer[] = [];
      let bodySize = 0;
      let settled = false;

      const cleanup = () => {
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
      };
      const fail = (error: Error) => {
        if (settled) return;
        cleanup();
        socket.destroy();
        reject(error);
      };
      const finish = (reusable: boolean) => {
        if (settled || !head) return;
        cleanup();
        if (reusable && buffered.length === 0 && !this.closed && this.idle.length < this.maxIdle) {
          this.idle.push(socket);
        } else {
          socket.destroy();
        }
        resolve({ status: head.status, headers: head.headers, body: Buffer.concat(body, bodySize) });
      };
      const take = (chunk: Buffer) => {
        bodySize += chunk.length;
        if (bodySize > this.maxBody) throw new Error('response too large');
        body.push(chunk);
      };

      /** Parses what has arrived; true when the answer is complete. */
      const step = (): void => {
        while (!head) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buffered.length > MAX_HEAD) throw new Error('response head too large');
            return;
          }
          const lines = buffered.subarray(0, end).toString('latin1').split('\r\n');
          buffered = buffered.subarray(end + 4);
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
          if (!status) throw new Error('malformed response status line');
          const headers: Record<string, string> = {};
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(':');
            if (colon <= 0) continue;
            const name = line.slice(0, colon).trim().toLowerCase();
            const value = line.slice(colon + 1).trim();
            headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
          }
          const code = Number(status[1]);
          if (code >= 100 && code < 200) continue; // 100 Continue and the like: the answer follows
          const chunked = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '');
          const length =
            headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
          if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0))
            throw new Error('malformed Content-Length');
          head = { status: code, headers, chunked, length: NO_BODY.has(code) ? 0 : length };
          if (chunked && NO_BODY.has(code)) head.chunked = false;
        }
        const keepAlive = !/\bclose\b/i.test(head.headers.connection ?? '');
        if (head.chunked) {
          for (;;) {
            const lineEnd = buffered.indexOf('\r\n');
            if (lineEnd < 0) return;
            const size = parseInt(buffered.subarray(0, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
            if (!Number.isSafeInteger(size) || size < 0) throw new Error('malformed chunk size');
            if (size === 0) {
              // The last chunk, then trailers (none from engines) up to an empty line.
              const trailerEnd = buffered.indexOf('\r\n\r\n', lineEnd);
              if (
                buffered.length >= lineEnd + 4 &&
                buffered[lineEnd + 2] === 13 &&
                buffered[lineEnd + 3] === 10
              ) {
                buffered = buffered.subarray(lineEnd + 4);
              } else if (trailerEnd >= 0) {
                buffered = buffered.subarray(trailerEnd + 4);
              } else {
                return;
              }
              return finish(keepAlive);
            }
            if (buffered.length < lineEnd + 2 + size + 2) return;
            take(buffered.subarray(lineEnd + 2, lineEnd + 2 + size));
            buffered = buffered.subarray(lineEnd + 2 + size + 2);
          }
        }
        if (head.length === undefined) {
          // Delimited by the end of the connection.
          if (buffered.length > 0) take(buffered);
          buffered = Buffer.alloc(0);
          return;
        }
        if (buffered.length > 0) {
          const wanted = head.length - bodySize;
          take(buffered.length > wanted ? buffered.subarray(0, wanted) : buffered);
          buffered = buffered.length > wanted ? buffered.subarray(wanted) : Buffer.alloc(0);
        }
        if (bodySize === head.length) finish(keepAlive);
      };

      const onData = (chunk: Buffer) => {
        received = true;
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        try {
          step();
        } catch (error) {
          fail(error as Error);
        }
      };
      const onClose = () => {
        if (head && !head.chunked && head.length === undefined) return finish(false);
        fail(
          reused && !received
            ? new StaleConnectionError('connection closed before an answer')
            : new Error('connection closed before the answer was complete'),
        );
      };
      const onError = (error: Error) =>
        fail(reused && !received ? new StaleConnectionError(error.message) : error);
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);

      socket.on('data', onData);
      socket.on('close', onClose);
      socket.on('error', onError);
      if (socket.destroyed) return onClose();
      socket.write(request);
    });
  }
}

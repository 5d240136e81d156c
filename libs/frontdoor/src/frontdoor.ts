// The Docker Engine API front door of ucp-controller (ucp-api.md §4.1): authenticate the caller,
// map the call to a UCP operation, ask libs/rbac's decision function, then route it to the
// engine that holds the resource (swarm objects: a manager; containers, images, volumes: their
// node) through that node's ucp-proxy. Lists are filtered, creates labelled, streams piped.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Caller, checkFilters, type Call, type FrontDoorOptions, type Response } from './call.js';
import { Containers } from './containers.js';
import { EngineUnreachableError, type ClusterNode, type ClusterView, type EnginePool } from './engines.js';
import { DockerApiError, badRequest, notFound, notImplemented } from './errors.js';
import { Gateway } from './gateway.js';
import { Images } from './images.js';
import { Networks } from './networks.js';
import { NodeLocal } from './node-local.js';
import { collectionOf, isObject } from './policy.js';
import { classify, type ClassifiedRequest } from './routes.js';
import { SwarmObjects } from './swarm.js';
import { lowestApiVersion } from './version.js';

export type { FrontDoorOptions } from './call.js';

type Next = (error?: unknown) => void;

export class FrontDoor {
  private readonly gw: Gateway;
  private readonly containers: Containers;
  private readonly swarm: SwarmObjects;
  private readonly networks: Networks;
  private readonly nodeLocal: NodeLocal;
  private readonly images: Images;
  private apiVersion?: { at: number; value: Promise<string | undefined> };

  constructor(private readonly options: FrontDoorOptions) {
    this.gw = new Gateway(options);
    this.containers = new Containers(this.gw);
    this.swarm = new SwarmObjects(this.gw);
    this.networks = new Networks(this.gw, this.containers);
    this.nodeLocal = new NodeLocal(this.gw);
    this.images = new Images(this.gw);
  }

  get pool(): EnginePool {
    return this.gw.pool;
  }

  get cluster(): ClusterView {
    return this.gw.cluster;
  }

  close(): void {
    this.pool.close();
  }

  /** The API version every engine speaks (the lowest), cached for 30 s; undefined when none answers. */
  engineApiVersion(): Promise<string | undefined> {
    if (this.apiVersion && Date.now() - this.apiVersion.at < 30_000) return this.apiVersion.value;
    const value = (async () => {
      const nodes = await this.cluster.readyNodes().catch(() => []);
      const versions = await Promise.all(
        nodes.map((n) =>
          this.pool
            .json<{ ApiVersion?: string }>(n, 'GET', '/version', undefined, 2000)
            .then((r) => r.body?.ApiVersion)
            .catch(() => undefined),
        ),
      );
      return lowestApiVersion(versions.filter((v): v is string => typeof v === 'string'));
    })();
    this.apiVersion = { at: Date.now(), value };
    void value.then((v) => {
      if (v === undefined && this.apiVersion?.value === value) this.apiVersion = undefined;
    });
    return value;
  }

  /** Each Ready node's engine /info (undefined where the engine did not answer). */
  async engineInfos(): Promise<{ node: ClusterNode; info?: Record<string, unknown> }[]> {
    const nodes = await this.cluster.readyNodes();
    return Promise.all(
      nodes.map(async (node) => {
        const answer = await this.pool
          .json<Record<string, unknown>>(node, 'GET', '/info', undefined, 5000)
          .catch(() => undefined);
        return { node, info: answer?.status === 200 && isObject(answer.body) ? answer.body : undefined };
      }),
    );
  }

  /**
   * Middleware shape: Docker API paths are served here (true), the rest goes on to UCP's routes
   * through `next` (false). `res.locals` receives the decision noted for the audit log.
   */
  readonly handle = (req: IncomingMessage, res: Response, next: Next): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    const classified = classify(req.method ?? 'GET', rawPath);
    if (!classified) {
      next();
      return false;
    }
    if (classified.route.kind === 'system') {
      // /_ping, /version and /info are UCP's own (SystemController); the prefix only picks a version.
      // Builder-Version 1: the classic builder (BuildKit's /session and /grpc are not served).
      if (classified.route.name === '_ping') res.setHeader('Builder-Version', '1');
      req.url = `/${classified.route.name}${search}`;
      next();
      return false;
    }
    void this.serve(req, res, classified, search).catch((error: unknown) => this.fail(res, error));
    return true;
  };

  private async caller(req: IncomingMessage): Promise<Caller> {
    const principal = await this.options.authenticate(req);
    const account = { id: principal.id, name: principal.name, isAdmin: principal.isAdmin };
    // decide() answers administrators before looking at groups: no need to load theirs.
    const subject = principal.isAdmin
      ? { ...account, teamIds: [], orgIds: [] }
      : this.options.groupsOf
        ? { ...account, ...(await this.options.groupsOf(account.id)) }
        : await this.options.authorizer.subjectFor(account);
    return new Caller(principal, subject, this.options.authorizer);
  }

  private fail(res: Response, error: unknown): void {
    let status: number;
    let message: string;
    if (error instanceof DockerApiError) {
      status = error.status;
      message = error.message;
    } else if (error instanceof EngineUnreachableError) {
      status = 502;
      message = error.message;
    } else if (typeof (error as { status?: unknown }).status === 'number') {
      // ApiError from identity/rbac (401 from the Authenticator, 400/404 from collections...).
      status = (error as { status: number }).status;
      message = (error as Error).message;
      if ((error as Error).name === 'StoreUnavailableError') status = 503;
    } else if ((error as Error)?.name === 'StoreUnavailableError') {
      status = 503;
      message = 'the store is unavailable, try again';
    } else {
      status = 500;
      message = 'internal error';
      this.options.log?.error(`front door: ${(error as Error)?.stack ?? String(error)}`);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ message }));
  }

  private async serve(
    req: IncomingMessage,
    res: Response,
    classified: ClassifiedRequest,
    search: string,
  ): Promise<void> {
    const { route } = classified;
    if (route.kind === 'notfound') throw notFound('page not found');
    if (route.kind === 'unsupported') throw notImplemented(route.message);
    checkFilters(search);
    const caller = await this.caller(req);
    // Made when a handler first asks (streams and forwards): most calls are answered whole.
    let abort: AbortController | undefined;
    const call: Call = {
      req,
      res,
      caller,
      prefix: classified.version ? `/v${classified.version}` : '',
      path: classified.path,
      search,
      get signal() {
        if (!abort) {
          const controller = (abort = new AbortController());
          if (res.destroyed && !res.writableFinished) controller.abort();
          else
            res.on('close', () => {
              if (!res.writableFinished) controller.abort();
            });
        }
        return abort.signal;
      },
    };
    switch (route.kind) {
      case 'containers-list':
        return this.containers.listContainers(call);
      case 'container-create':
        return this.containers.createContainer(call);
      case 'container':
        return this.containers.containerCall(call, route);
      case 'exec':
        return this.containers.execCall(call, route);
      case 'swarm-list':
        if (route.type === 'Network') return this.networks.list(call);
        return this.swarm.swarmList(call, route.type, route.operation);
      case 'swarm-create':
        if (route.type === 'Network') return this.networks.create(call);
        return this.swarm.swarmCreate(call, route.type, route.operation);
      case 'swarm-object':
        if (route.type === 'Network') return this.networks.object(call, route);
        return this.swarm.swarmObject(call, route);
      case 'swarm':
      case 'distribution':
        await this.gw.require(call, route.operation, '/');
        return this.gw.forward(call, await this.gw.manager(), req.method ?? 'GET');
      case 'images-list':
        return this.nodeLocal.listImages(call);
      case 'image-pull':
        return this.images.pull(call);
      case 'image-build':
        return this.images.build(call);
      case 'image-load':
        return this.images.load(call);
      case 'image-save':
        return this.images.save(call);
      case 'image':
        return this.nodeLocal.imageCall(call, route);
      case 'volumes-list':
        return this.nodeLocal.listVolumes(call);
      case 'volume-create':
        return this.nodeLocal.createVolume(call);
      case 'volume':
        return this.nodeLocal.volumeCall(call, route);
      case 'events':
        return this.nodeLocal.events(call);
      case 'registry-auth':
        return this.nodeLocal.registryLogin(call);
    }
  }

  // ---- hijacked attach and exec (the HTTP server's 'upgrade' event) ----

  /**
   * Called once per hijacked attach/exec request with its outcome (101 when the stream was handed to
   * the engine) and the decision the request noted: the audit log never sees these (no Express).
   */
  onHijack?: (event: {
    req: IncomingMessage;
    status: number;
    locals: Record<string, unknown>;
    started: number;
  }) => void;

  /** The HTTP server's 'upgrade' listener; `othersListening` when other listeners share the event. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, othersListening = false): void => {
    const started = Date.now();
    const locals: Record<string, unknown> = {};
    const report = (status: number) => this.onHijack?.({ req, status, locals, started });
    const refuse = (status: number, message: string) => {
      report(status);
      const body = JSON.stringify({ message });
      const reason =
        {
          400: 'Bad Request',
          401: 'Unauthorized',
          403: 'Forbidden',
          404: 'Not Found',
          409: 'Conflict',
          502: 'Bad Gateway',
          503: 'Service Unavailable',
        }[status] ?? 'Error';
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const classified = classify(req.method ?? 'GET', q < 0 ? url : url.slice(0, q));
    const route = classified?.route;
    const hijackable =
      (route?.kind === 'container' && (route.action === 'attach' || route.action === 'attach/ws')) ||
      (route?.kind === 'exec' && route.action === 'start');
    if (!classified) {
      // Not the Docker API: another 'upgrade' listener may want it; refuse only when none does.
      if (!othersListening) refuse(400, 'connection upgrade is not supported here');
      return;
    }
    if (!route || !hijackable) {
      refuse(400, 'connection upgrade is only supported on attach and exec start');
      return;
    }
    socket.on('error', () => socket.destroy());
    void this.hijack(req, socket, head, classified, q < 0 ? '' : url.slice(q), locals)
      .then(() => report(101))
      .catch((error: unknown) => {
        if (error instanceof DockerApiError) refuse(error.status, error.message);
        else if (error instanceof EngineUnreachableError) refuse(502, error.message);
        else if (typeof (error as { status?: unknown }).status === 'number')
          refuse((error as { status: number }).status, (error as Error).message);
        else {
          this.options.log?.error(`front door upgrade: ${(error as Error)?.stack ?? String(error)}`);
          refuse(502, 'internal error');
        }
      });
  };

  private async hijack(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    classified: ClassifiedRequest,
    search: string,
    locals: Record<string, unknown>,
  ): Promise<void> {
    const caller = await this.caller(req);
    const prefix = classified.version ? `/v${classified.version}` : '';
    const route = classified.route;
    const call = { caller, res: { locals } as Response };
    let node: ClusterNode;
    let path: string;
    if (route.kind === 'container') {
      const {
        node: holder,
        info,
        labels,
      } = await this.containers.resolveContainer(caller, route.ref, route.node);
      await this.gw.require(call, route.operation, collectionOf(labels));
      node = holder;
      path = `${prefix}/containers/${String(info.Id)}/${route.action}${search}`;
    } else if (route.kind === 'exec') {
      const resolved = await this.containers.resolveExec(caller, route.id);
      await this.gw.require(call, route.operation, collectionOf(resolved.containerLabels));
      node = resolved.node;
      path = `${prefix}${classified.path}${search}`;
    } else {
      throw badRequest('connection upgrade is only supported on attach and exec start');
    }
    const upstream = await this.pool.connect(node);
    const lines = [`${req.method ?? 'POST'} ${path} HTTP/1.1`, 'Host: docker'];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i];
      if (/^(host|authorization)$/i.test(name)) continue;
      lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    // The CLI half-closes its side as soon as stdin is done (at once without -i): the half-close
    // goes on to the engine (stdin EOF reaches the process; ucp-proxy keeps the other direction
    // open) and the client is ended when the engine is done.
    (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
    upstream.pipe(socket);
    socket.pipe(upstream);
    const close = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on('error', close);
    socket.on('error', close);
    upstream.on('close', () => socket.end());
    socket.on('close', () => upstream.destroy());
  }
}

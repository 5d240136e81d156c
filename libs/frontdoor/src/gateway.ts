// What every handler of the front door shares: the engines (pool, cluster view), the decision with
// its audit note, forwarding and piping to an engine, fan-out reads, and where creates land
// (collection and node).
import { auditDecisionOf, noteAuditDecision } from '@orca/api';
import {
  ensurePrivateCollection,
  findCollectionByPath,
  getDefaultCollection,
  type Collection,
} from '@orca/rbac';
import type { IncomingMessage } from 'node:http';
import {
  RESPONSE_HOP_BY_HOP,
  denial,
  hasBody,
  type Call,
  type FrontDoorOptions,
  type Response,
} from './call.js';
import { ClusterView, EnginePool, forwardableHeaders, type ClusterNode } from './engines.js';
import { DockerApiError, badRequest, forbidden } from './errors.js';
import { isObject, requestedCollection, type Labels } from './policy.js';
import { describeConstraints, satisfies, spread, type Constraint } from './schedule.js';

export class Gateway {
  readonly pool: EnginePool;
  readonly cluster: ClusterView;

  constructor(readonly options: FrontDoorOptions) {
    this.pool = new EnginePool(options.credentials, options.proxyPort, options.localEngineSocket);
    this.cluster = new ClusterView(options.listNodes, this.pool);
  }

  /** Decides one operation on one collection; notes it for the audit log; 403 when denied. */
  async require(
    call: Pick<Call, 'caller' | 'res'>,
    operation: string,
    collectionPath: string,
  ): Promise<void> {
    const decision = await call.caller.decide(operation, collectionPath);
    const locals = call.res.locals ?? {};
    const previous = auditDecisionOf(locals);
    // A request that needs several operations is recorded by its first denial, else its first operation.
    if (!previous || previous.decision === 'allow') {
      noteAuditDecision(locals, {
        subject: call.caller.principal.name,
        operation: previous && decision.allowed ? previous.operation : operation,
        resource: previous && decision.allowed ? previous.resource : collectionPath,
        decision: decision.allowed ? 'allow' : 'deny',
        reason: decision.allowed ? undefined : denial(operation, collectionPath),
      });
    }
    if (!decision.allowed) throw forbidden(denial(operation, collectionPath));
  }

  noteList(call: Call, operation: string): void {
    noteAuditDecision(call.res.locals ?? {}, {
      subject: call.caller.principal.name,
      operation,
      resource: "list filtered to the caller's collections",
      decision: 'allow',
    });
  }

  async manager(): Promise<ClusterNode> {
    const manager = await this.cluster.manager();
    if (!manager) throw new DockerApiError(503, 'no swarm manager is available');
    return manager;
  }

  /** Sends the call (or a replacement body) to one engine and pipes the answer back unbuffered. */
  async forward(
    call: Call,
    node: ClusterNode,
    method: string,
    path = `${call.prefix}${call.path}${call.search}`,
    body?: Buffer,
  ): Promise<void> {
    const headers = forwardableHeaders(call.req.headers);
    if (body) {
      headers['content-length'] = body.length;
      headers['content-type'] = 'application/json';
    }
    const upstream = await this.pool.send(
      node,
      method,
      path,
      headers,
      body ?? (hasBody(call.req) ? call.req : undefined),
      call.signal,
    );
    this.pipeBack(upstream, call.res);
  }

  /**
   * Pipes the engine's answer back as it comes (logs -f, events, wait are streams), but in as few
   * TLS writes as it can: what arrives within one turn of the event loop (the headers, the chunks
   * the engine wrote together, the end) leaves in one write at the end of that turn. A stream that
   * has nothing to say yet still gets its headers then.
   */
  private pipeBack(upstream: IncomingMessage, res: Response): void {
    res.statusCode = upstream.statusCode ?? 502;
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !RESPONSE_HOP_BY_HOP.has(name)) res.setHeader(name, value);
    }
    const socket = res.socket;
    socket?.setNoDelay(true);
    let corked = false;
    const flush = () => {
      corked = false;
      if (!res.headersSent && !res.destroyed) res.flushHeaders();
      socket?.uncork();
    };
    const cork = () => {
      if (corked || !socket) return;
      corked = true;
      socket.cork();
      setImmediate(flush);
    };
    cork();
    upstream.on('data', (chunk: Buffer) => {
      cork();
      if (!res.write(chunk)) upstream.pause();
    });
    res.on('drain', () => upstream.resume());
    upstream.on('end', () => {
      cork();
      res.end();
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
  }

  /**
   * A GET answered whole by the engine, passed back as it came (no parse, no re-serialization) in
   * one write: for lists the caller may see entirely.
   */
  async relayGet(call: Call, node: ClusterNode): Promise<void> {
    const answer = await this.pool.get(node, `${call.prefix}${call.path}${call.search}`);
    const { res } = call;
    if (res.destroyed) return;
    res.statusCode = answer.status;
    for (const [name, value] of Object.entries(answer.headers)) {
      if (!RESPONSE_HOP_BY_HOP.has(name) && name !== 'content-length') res.setHeader(name, value);
    }
    res.setHeader('Content-Length', answer.body.length);
    res.end(answer.body);
  }

  respondJson(res: Response, status: number, body: unknown): void {
    this.respondJsonText(res, status, JSON.stringify(body));
  }

  respondJsonText(res: Response, status: number, text: string): void {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  }

  /** GETs the same path from several nodes; engine errors other than 404 stop the call. */
  async fanOut<T>(nodes: ClusterNode[], path: string): Promise<{ node: ClusterNode; body: T }[]> {
    const answers = await Promise.all(
      nodes.map(async (node) => {
        try {
          return { node, answer: await this.pool.json<T>(node, 'GET', path) };
        } catch (error) {
          this.options.log?.warn(`front door: ${(error as Error).message}`);
          return undefined;
        }
      }),
    );
    const results: { node: ClusterNode; body: T }[] = [];
    for (const item of answers) {
      if (!item) continue;
      const { status, body } = item.answer;
      if (status >= 400) {
        const message =
          isObject(body) && typeof body.message === 'string' ? body.message : `engine answered ${status}`;
        // A client error is the caller's; a failing engine is a bad gateway, named.
        throw status < 500
          ? new DockerApiError(status, message)
          : new DockerApiError(502, `node ${item.node.name}: ${message}`);
      }
      if (status === 200) results.push({ node: item.node, body: body as T });
    }
    return results;
  }

  // ---- collections and scheduling ----

  /**
   * The collection a create lands in: the one its access label names (which must exist and allow
   * the operation), else the caller's default collection.
   */
  async targetCollection(call: Call, labels: Labels, operation: string): Promise<Collection> {
    const requested = requestedCollection(labels);
    let collection: Collection | undefined;
    if (requested) {
      collection = await findCollectionByPath(this.options.store, requested);
      if (!collection) throw badRequest(`collection ${requested} does not exist`);
    } else {
      const { principal } = call.caller;
      await ensurePrivateCollection(this.options.store, principal.name);
      collection = await getDefaultCollection(this.options.store, principal.id, principal.name);
    }
    await this.require(call, operation, collection.path);
    return collection;
  }

  /** Ready nodes meeting the constraints on which the caller has Node Schedule. */
  private async schedulableNodes(call: Call, constraints: readonly Constraint[]): Promise<ClusterNode[]> {
    const ready = (await this.cluster.readyNodes()).filter(
      (n) => n.availability === undefined || n.availability === 'active',
    );
    const fit = ready.filter((n) => constraints.every((c) => satisfies(n, c)));
    if (ready.length === 0) throw new DockerApiError(503, 'no node is available');
    if (fit.length === 0) {
      throw badRequest(
        `unable to find a node that satisfies the following conditions ${describeConstraints(constraints)}`,
      );
    }
    const allowed: ClusterNode[] = [];
    for (const node of fit)
      if ((await call.caller.decide('Node Schedule', node.collection)).allowed) allowed.push(node);
    if (allowed.length === 0) {
      const collections = [...new Set(fit.map((n) => n.collection))].join(', ');
      await this.require(call, 'Node Schedule', collections);
    }
    return allowed;
  }

  async spreadOnto(call: Call, constraints: readonly Constraint[]): Promise<ClusterNode> {
    const nodes = await this.schedulableNodes(call, constraints);
    const counts = new Map<string, number>();
    await Promise.all(
      nodes.map(async (n) => {
        const answer = await this.pool
          .json<unknown[]>(n, 'GET', '/containers/json?all=1')
          .catch(() => undefined);
        counts.set(n.id, Array.isArray(answer?.body) ? answer.body.length : Number.MAX_SAFE_INTEGER);
      }),
    );
    return spread(nodes, [], (n) => counts.get(n.id) ?? Number.MAX_SAFE_INTEGER) as ClusterNode;
  }
}

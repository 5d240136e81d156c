// The engines behind the front door: every node's engine through its ucp-proxy (mutual TLS with
// the controller's own manager certificate from the cluster CA), except the engine of the
// controller's own node when its socket is given (ORCA_LOCAL_ENGINE): that one is reached on the
// socket, as ucp-proxy itself reaches it, without a second TLS leg and process per request. And the
// cluster's node list joined with the swarm's, cached for a moment so a burst of requests costs one
// lookup.
import type { NodeView } from '@orca/cluster';
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { KeptAliveConnections } from './kept-alive.js';
import type { SchedulableNode } from './schedule.js';
import { isObject } from './policy.js';

export interface EngineCredentials {
  /** The cluster CA bundle: ucp-proxy's certificate chains to it. */
  caPem: string;
  /** A cluster-CA certificate with OU=swarm-manager, which ucp-proxy admits. */
  certPem: string;
  keyPem: string;
}

export interface ClusterNode extends SchedulableNode {
  address: string;
  ready: boolean;
  /** A swarm manager (services, secrets... go to one of these). */
  swarmManager: boolean;
  /** The node's collection: its access label, else /System for managers and /Shared for workers. */
  collection: string;
  availability?: string;
}

export interface EngineResponse<T = unknown> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
}

export class EngineUnreachableError extends Error {
  constructor(
    readonly node: string,
    cause: Error,
  ) {
    super(`cannot reach the engine of node ${node}: ${cause.message}`);
    this.name = 'EngineUnreachableError';
  }
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'authorization',
  'x-registry-auth-ucp',
]);

/** Request headers worth passing to an engine: end-to-end ones, never our credentials. */
export function forwardableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** A node as the pool addresses it: its ucp-proxy's address, and its engine's swarm node id. */
export type EngineNode = Pick<ClusterNode, 'address' | 'name'> & { engineNodeId?: string };

/** How long the local engine's identity (its swarm node id) is trusted before it is asked again. */
const LOCAL_IDENTITY_MS = 30_000;

/**
 * HTTPS to each node's ucp-proxy: GETs over the node's kept-alive connections, everything else with
 * one keep-alive agent per node. The local engine, when given, over its unix socket: it is used only
 * for the node whose swarm node id that engine reports itself, so a wrong socket path sends nothing
 * astray (its node just keeps going through ucp-proxy).
 */
export class EnginePool {
  private readonly agents = new Map<string, Agent>();
  private readonly gets = new Map<string, KeptAliveConnections>();
  private credentialsPromise?: Promise<EngineCredentials>;
  private credentialsKnown?: EngineCredentials;
  private readonly local?: {
    socketPath: string;
    gets: KeptAliveConnections;
    agent: HttpAgent;
    /** The swarm node id the engine on the socket reports, and when it was asked. */
    nodeId?: string;
    checkedAt: number;
    checking?: Promise<void>;
  };

  constructor(
    private readonly credentials: () => Promise<EngineCredentials>,
    readonly proxyPort: number,
    /** The unix socket of the engine on the controller's own node (UCP mounts it as /var/run/docker.sock). */
    localEngineSocket?: string,
  ) {
    if (localEngineSocket) {
      this.local = {
        socketPath: localEngineSocket,
        gets: new KeptAliveConnections({ socketPath: localEngineSocket }),
        agent: new HttpAgent({ keepAlive: true, maxFreeSockets: 64 }),
        checkedAt: -Infinity,
      };
    }
  }

  /** The local engine's swarm node id (cached; asked again in the background once stale). */
  private localNodeId(): string | undefined | Promise<string | undefined> {
    const local = this.local;
    if (!local) return undefined;
    if (Date.now() - local.checkedAt > LOCAL_IDENTITY_MS && !local.checking) {
      local.checking = local.gets
        .get('/info', 5000)
        .then(
          (answer) => {
            const info =
              answer.status === 200 ? (JSON.parse(answer.body.toString('utf8')) as unknown) : undefined;
            const swarm = isObject(info) && isObject(info.Swarm) ? info.Swarm : {};
            local.nodeId = typeof swarm.NodeID === 'string' && swarm.NodeID ? swarm.NodeID : undefined;
          },
          () => {
            // Not reachable (yet): its node goes through ucp-proxy meanwhile.
            local.nodeId = undefined;
          },
        )
        .finally(() => {
          local.checkedAt = Date.now();
          local.checking = undefined;
        });
      // The first time, wait for the answer; later, use what is known while it is asked again.
      if (local.nodeId === undefined && local.checkedAt === -Infinity)
        return local.checking.then(() => local.nodeId);
    }
    return local.nodeId;
  }

  /** Whether the node's engine is the local one (on the socket). */
  private isLocal(node: EngineNode): boolean | Promise<boolean> {
    if (!this.local || !node.engineNodeId) return false;
    const id = this.localNodeId();
    if (id instanceof Promise) return id.then((known) => known === node.engineNodeId);
    return id === node.engineNodeId;
  }

  private async tls(): Promise<EngineCredentials> {
    if (this.credentialsKnown) return this.credentialsKnown;
    const pending = (this.credentialsPromise ??= this.credentials().catch((error: unknown) => {
      this.credentialsPromise = undefined;
      throw error;
    }));
    const credentials = await pending;
    if (this.credentialsPromise === pending) this.credentialsKnown = credentials;
    return credentials;
  }

  private async getsTo(address: string): Promise<KeptAliveConnections> {
    const existing = this.gets.get(address);
    if (existing) return existing;
    const tls = await this.tls();
    const raced = this.gets.get(address);
    if (raced) return raced;
    const connections = new KeptAliveConnections({
      host: address,
      port: this.proxyPort,
      ca: tls.caPem,
      cert: tls.certPem,
      key: tls.keyPem,
      // The chain is checked against the cluster CA; node certificates name node ids, not addresses.
      checkServerIdentity: () => undefined,
    });
    this.gets.set(address, connections);
    return connections;
  }

  /** A GET answered whole (lists, inspects): over the node's kept-alive connections. */
  async get(node: EngineNode, path: string, timeoutMs = 30_000) {
    const local = this.isLocal(node);
    const connections =
      (local === true || (local !== false && (await local))) && this.local
        ? this.local.gets
        : (this.gets.get(node.address) ?? (await this.getsTo(node.address)));
    try {
      return await connections.get(path, timeoutMs);
    } catch (error) {
      throw new EngineUnreachableError(node.name, error as Error);
    }
  }

  private async agentFor(address: string): Promise<Agent> {
    const existing = this.agents.get(address);
    if (existing) return existing;
    const tls = await this.tls();
    const agent = new Agent({
      keepAlive: true,
      maxFreeSockets: 64,
      ca: tls.caPem,
      cert: tls.certPem,
      key: tls.keyPem,
      // The chain is checked against the cluster CA; node certificates name node ids, not addresses.
      checkServerIdentity: () => undefined,
    });
    this.agents.set(address, agent);
    return agent;
  }

  /** Sends a request to a node's engine; resolves with the response (body not read yet). */
  async send(
    node: EngineNode,
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body?: Buffer | Readable,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const local = (await this.isLocal(node)) ? this.local : undefined;
    const agent = local ? undefined : (this.agents.get(node.address) ?? (await this.agentFor(node.address)));
    return new Promise((resolve, reject) => {
      const target = { method, path, headers: { ...headers, host: 'docker' }, signal };
      const req = local
        ? httpRequest({ ...target, socketPath: local.socketPath, agent: local.agent }, resolve)
        : httpsRequest({ ...target, host: node.address, port: this.proxyPort, agent }, resolve);
      req.on('error', (error) => reject(new EngineUnreachableError(node.name, error)));
      req.setNoDelay(true);
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }

  /** A JSON call: the parsed body (undefined when empty or not JSON). */
  async json<T = unknown>(
    node: EngineNode,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 30_000,
  ): Promise<EngineResponse<T>> {
    let text: Buffer;
    let status: number;
    let responseHeaders: IncomingHttpHeaders;
    if (method === 'GET' && body === undefined) {
      ({ status, headers: responseHeaders, body: text } = await this.get(node, path, timeoutMs));
    } else {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: OutgoingHttpHeaders = payload
        ? { 'content-type': 'application/json', 'content-length': payload.length }
        : {};
      // A request/response call (never a stream): an engine that does not answer in time is down.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      try {
        const response = await this.send(node, method, path, headers, payload, abort.signal);
        text = await readAll(response);
        status = response.statusCode ?? 502;
        responseHeaders = response.headers;
      } catch (error) {
        if (abort.signal.aborted)
          throw new EngineUnreachableError(node.name, new Error(`no answer within ${timeoutMs} ms`));
        throw error;
      } finally {
        clearTimeout(timer);
      }
    }
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text.toString('utf8')) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status, headers: responseHeaders, body: parsed as T };
  }

  /** A raw connection to a node's engine (ucp-proxy or the local socket), for hijacked streams. */
  async connect(node: EngineNode): Promise<Socket> {
    if (this.local && (await this.isLocal(node))) {
      const socketPath = this.local.socketPath;
      return new Promise((resolve, reject) => {
        // stdin EOF is a half-close: the output still has to come back afterwards.
        const socket = netConnect({ path: socketPath, allowHalfOpen: true }, () => resolve(socket));
        socket.once('error', (error) => reject(new EngineUnreachableError(node.name, error)));
      });
    }
    const tls = await this.tls();
    return new Promise((resolve, reject) => {
      const socket = connect(
        {
          host: node.address,
          port: this.proxyPort,
          ca: tls.caPem,
          cert: tls.certPem,
          key: tls.keyPem,
          checkServerIdentity: () => undefined,
        },
        () => resolve(socket),
      );
      // stdin EOF is a half-close: the output still has to come back afterwards.
      (socket as TLSSocket & { allowHalfOpen: boolean }).allowHalfOpen = true;
      socket.once('error', (error) => reject(new EngineUnreachableError(node.name, error)));
    });
  }

  /** Forgets the credentials (renewed on next use) and the connections made with them. */
  resetCredentials(): void {
    this.credentialsPromise = undefined;
    this.credentialsKnown = undefined;
    this.closeRemote();
  }

  close(): void {
    this.local?.gets.close();
    this.local?.agent.destroy();
    this.closeRemote();
  }

  /** The connections to ucp-proxies (made with the controller's certificate). */
  private closeRemote(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
    for (const connections of this.gets.values()) connections.close();
    this.gets.clear();
  }
}

export function readAll(stream: Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stream.destroy();
        reject(new Error('response too large'));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

interface SwarmNode {
  ID: string;
  Spec?: { Labels?: Record<string, string>; Availability?: string; Role?: string };
  Description?: { Hostname?: string };
  ManagerStatus?: unknown;
}

/** The cluster's nodes as the front door schedules and routes over them. */
export class ClusterView {
  private cached?: { at: number; nodes: Promise<ClusterNode[]> };

  constructor(
    private readonly listNodes: () => Promise<NodeView[]>,
    private readonly pool: EnginePool,
    private readonly ttlMs = 2000,
  ) {}

  nodes(): Promise<ClusterNode[]> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.nodes;
    const nodes = this.load();
    this.cached = { at: Date.now(), nodes };
    nodes.catch(() => {
      if (this.cached?.nodes === nodes) this.cached = undefined;
    });
    return nodes;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  private async load(): Promise<ClusterNode[]> {
    const orcaNodes = await this.listNodes();
    const managers = orcaNodes.filter((n) => n.role === 'swarm-manager' && n.status === 'Ready');
    let swarmNodes: SwarmNode[] = [];
    for (const manager of managers) {
      try {
        const answer = await this.pool.json<SwarmNode[]>(
          { address: manager.address, name: manager.hostname, engineNodeId: manager.engineNodeId },
          'GET',
          '/nodes',
          undefined,
          5000,
        );
        if (answer.status === 200 && Array.isArray(answer.body)) {
          swarmNodes = answer.body;
          break;
        }
      } catch {
        // try the next manager
      }
    }
    const bySwarmId = new Map(swarmNodes.map((s) => [s.ID, s]));
    const hostnames = new Map<string, number>();
    for (const n of orcaNodes) {
      const host = bySwarmId.get(n.engineNodeId ?? '')?.Description?.Hostname ?? n.hostname;
      hostnames.set(host, (hostnames.get(host) ?? 0) + 1);
    }
    return orcaNodes
      .map((n): ClusterNode => {
        const swarm = bySwarmId.get(n.engineNodeId ?? '');
        const hostname = swarm?.Description?.Hostname ?? n.hostname;
        const labels = isObject(swarm?.Spec?.Labels) ? (swarm?.Spec?.Labels as Record<string, string>) : {};
        const swarmManager = swarm
          ? swarm.ManagerStatus !== undefined && swarm.ManagerStatus !== null
          : n.role === 'swarm-manager';
        const access = labels['com.docker.ucp.access.label'];
        return {
          id: n.id,
          // Classic Swarm named nodes by hostname; engines sharing one host get their address too.
          name: (hostnames.get(hostname) ?? 0) > 1 ? `${hostname}-${n.address}` : hostname,
          hostname,
          engineNodeId: n.engineNodeId,
          role: n.role === 'swarm-manager' ? 'manager' : 'worker',
          labels,
          address: n.address,
          ready: n.status === 'Ready',
          swarmManager,
          collection:
            typeof access === 'string' && access.startsWith('/')
              ? access
              : n.role === 'swarm-manager'
                ? '/System'
                : '/Shared',
          availability: swarm?.Spec?.Availability,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Nodes whose engine can be asked (Ready). */
  async readyNodes(): Promise<ClusterNode[]> {
    return (await this.nodes()).filter((n) => n.ready);
  }

  /** A Ready swarm manager for swarm-wide calls. */
  async manager(): Promise<ClusterNode | undefined> {
    const ready = await this.readyNodes();
    return ready.find((n) => n.swarmManager && n.role === 'manager') ?? ready.find((n) => n.swarmManager);
  }

  async byName(name: string): Promise<ClusterNode | undefined> {
    const nodes = await this.nodes();
    return nodes.find((n) => n.name === name) ?? nodes.find((n) => n.id === name || n.engineNodeId === name);
  }
}

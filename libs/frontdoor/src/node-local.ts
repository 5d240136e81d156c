// Images, volumes and events: node-local resources, read from every node and merged; and
// `docker login`, which an engine checks with the registry.
import { noteAuditDecision } from '@orca/api';
import { readJsonObject, type Call } from './call.js';
import type { ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import { collectionOf, isObject, labelsField, withCollectionLabels } from './policy.js';
import type { Route } from './routes.js';
import type { Constraint } from './schedule.js';

export class NodeLocal {
  constructor(private readonly gw: Gateway) {}

  // ---- images (no access label: decided on "/") ----

  async listImages(call: Call): Promise<void> {
    await this.gw.require(call, 'Image View', '/');
    const lists = await this.gw.fanOut<Record<string, unknown>[]>(
      await this.gw.cluster.readyNodes(),
      `${call.prefix}/images/json${call.search}`,
    );
    // The union of all nodes' images (UCP's /images/json).
    const byId = new Map<string, Record<string, unknown>>();
    for (const { body } of lists) {
      for (const image of Array.isArray(body) ? body : []) {
        const seen = byId.get(String(image.Id));
        if (!seen) byId.set(String(image.Id), { ...image });
        else {
          const tags = new Set([
            ...((seen.RepoTags as string[]) ?? []),
            ...((image.RepoTags as string[]) ?? []),
          ]);
          seen.RepoTags = [...tags];
        }
      }
    }
    this.gw.respondJson(call.res, 200, [...byId.values()]);
  }

  async imageCall(call: Call, route: Extract<Route, { kind: 'image' }>): Promise<void> {
    await this.gw.require(call, route.operation, '/');
    if (route.action === 'search') return this.gw.forward(call, await this.gw.manager(), 'GET');
    const rawName = call.path.slice('/images/'.length, route.action ? -(route.action.length + 1) : undefined);
    const nodes = await this.gw.cluster.readyNodes();
    const holders = (
      await Promise.all(
        nodes.map(async (node) => {
          const answer = await this.gw.pool
            .json(node, 'GET', `/images/${rawName}/json`)
            .catch(() => undefined);
          return answer?.status === 200 ? node : undefined;
        }),
      )
    ).filter((n): n is ClusterNode => n !== undefined);
    if (holders.length === 0) throw notFound(`No such image: ${route.name}`);
    if (call.req.method !== 'DELETE') return this.gw.forward(call, holders[0], call.req.method ?? 'GET');
    // Removing an image removes it from every node that has it.
    const results = await Promise.all(
      holders.map((node) =>
        this.gw.pool.json<unknown[]>(node, 'DELETE', `${call.prefix}${call.path}${call.search}`),
      ),
    );
    const failed = results.find((r) => r.status !== 200);
    if (failed) return this.gw.respondJson(call.res, failed.status, failed.body ?? {});
    this.gw.respondJson(
      call.res,
      200,
      results.flatMap((r) => (Array.isArray(r.body) ? r.body : [])),
    );
  }

  // ---- volumes (node-local: "<node>/<name>") ----

  async listVolumes(call: Call): Promise<void> {
    const lists = await this.gw.fanOut<{ Volumes?: Record<string, unknown>[]; Warnings?: string[] }>(
      await this.gw.cluster.readyNodes(),
      `${call.prefix}/volumes${call.search}`,
    );
    const mayView = await call.caller.allows('Volume View');
    const volumes: Record<string, unknown>[] = [];
    const warnings: string[] = [];
    for (const { node, body } of lists) {
      for (const volume of body?.Volumes ?? []) {
        if (!mayView(collectionOf(volume.Labels))) continue;
        volumes.push({ ...volume, Name: `${node.name}/${String(volume.Name)}` });
      }
      warnings.push(...(body?.Warnings ?? []));
    }
    this.gw.noteList(call, 'Volume View');
    this.gw.respondJson(call.res, 200, { Volumes: volumes, Warnings: warnings.length > 0 ? warnings : null });
  }

  async createVolume(call: Call): Promise<void> {
    const body = await readJsonObject(call.req);
    if (body.Name !== undefined && typeof body.Name !== 'string') throw badRequest('Name must be a string');
    const constraints: Constraint[] = [];
    const name = (body.Name as string | undefined) ?? '';
    if (name.includes('/')) {
      const [node, plain, ...more] = name.split('/');
      if (!node || !plain || more.length > 0) throw badRequest(`invalid volume name "${name}"`);
      constraints.push({ key: 'node', equal: true, value: node });
      body.Name = plain;
    }
    const collection = await this.gw.targetCollection(
      call,
      labelsField(body.Labels, 'Labels'),
      'Volume Create',
    );
    body.Labels = withCollectionLabels(
      labelsField(body.Labels, 'Labels'),
      collection,
      call.caller.principal.name,
    );
    const node = await this.gw.spreadOnto(call, constraints);
    await this.gw.forward(call, node, 'POST', undefined, Buffer.from(JSON.stringify(body)));
  }

  async volumeCall(call: Call, route: Extract<Route, { kind: 'volume' }>): Promise<void> {
    const nodes =
      route.node !== undefined
        ? [await this.gw.cluster.byName(route.node)].filter((n): n is ClusterNode => n !== undefined)
        : await this.gw.cluster.readyNodes();
    const found = (
      await Promise.all(
        nodes.map(async (node) => {
          const answer = await this.gw.pool
            .json<Record<string, unknown>>(node, 'GET', `/volumes/${encodeURIComponent(route.name)}`)
            .catch(() => undefined);
          return answer?.status === 200 && isObject(answer.body) ? { node, volume: answer.body } : undefined;
        }),
      )
    ).filter((f): f is { node: ClusterNode; volume: Record<string, unknown> } => f !== undefined);
    if (found.length === 0) throw notFound(`get ${route.name}: no such volume`);
    if (found.length > 1)
      throw new DockerApiError(409, `volume ${route.name} exists on several nodes: name it as <node>/<name>`);
    const [{ node, volume }] = found;
    await this.gw.require(call, route.operation, collectionOf(volume.Labels));
    await this.gw.forward(
      call,
      node,
      call.req.method ?? 'GET',
      `${call.prefix}/volumes/${encodeURIComponent(route.name)}${call.search}`,
    );
  }

  // ---- docker login: POST /auth ----

  /**
   * The engine API's "Check auth configuration": classic Swarm sent it to a random engine, which
   * asks the registry. Nothing changes, so any authenticated caller may; the body (the password)
   * goes to the engine only, never to a log or the audit entry.
   */
  async registryLogin(call: Call): Promise<void> {
    const body = await readJsonObject(call.req);
    for (const field of ['username', 'password', 'serveraddress', 'identitytoken']) {
      if (body[field] !== undefined && typeof body[field] !== 'string')
        throw badRequest(`${field} must be a string`);
    }
    noteAuditDecision(call.res.locals ?? {}, {
      subject: call.caller.principal.name,
      operation: 'Registry Login',
      resource: typeof body.serveraddress === 'string' ? body.serveraddress.slice(0, 256) : undefined,
      decision: 'allow',
    });
    const nodes = await this.gw.cluster.readyNodes();
    if (nodes.length === 0) throw new DockerApiError(503, 'no node is available');
    const node = nodes[Math.floor(Math.random() * nodes.length)];
    const answer = await this.gw.pool.json<{ message?: unknown }>(
      node,
      'POST',
      `${call.prefix}${call.path}${call.search}`,
      body,
    );
    let status = answer.status;
    if (status >= 500) {
      // Engines answer a login the registry refused with 500 ("... failed with status: 401
      // Unauthorized"): those are the caller's credentials; anything else is the registry's fault.
      const message = typeof answer.body?.message === 'string' ? answer.body.message : '';
      status = /\b401\b|unauthorized/i.test(message) ? 401 : 502;
    }
    this.gw.respondJson(call.res, status, answer.body ?? {});
  }

  // ---- events: every node's stream, merged line by line ----

  async events(call: Call): Promise<void> {
    const nodes = await this.gw.cluster.readyNodes();
    const manager = await this.gw.cluster.manager();
    const { res, caller } = call;
    this.gw.noteList(call, 'Container View');
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    const TYPES: Record<string, string> = {
      container: 'Container',
      image: 'Image',
      network: 'Network',
      volume: 'Volume',
      service: 'Service',
      node: 'Node',
      secret: 'Secret',
      config: 'Config',
    };
    const visible = async (event: Record<string, unknown>): Promise<boolean> => {
      if (caller.isAdmin) return true;
      const type = TYPES[String(event.Type)];
      const actor = isObject(event.Actor) ? event.Actor : {};
      if (!type) return false;
      const path = type === 'Image' ? '/' : collectionOf(actor.Attributes);
      return (await caller.decide(`${type} View`, path)).allowed;
    };
    let open = nodes.length;
    const done = () => {
      if (--open <= 0 && !res.writableEnded) res.end();
    };
    if (open === 0) res.end();
    for (const node of nodes) {
      const upstream = await this.gw.pool
        .send(node, 'GET', `${call.prefix}/events${call.search}`, {}, undefined, call.signal)
        .catch(() => undefined);
      if (!upstream) {
        done();
        continue;
      }
      let buffered = '';
      let chain = Promise.resolve();
      upstream.setEncoding('utf8');
      upstream.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        chain = chain.then(async () => {
          for (const line of lines) {
            if (!line.trim()) continue;
            let event: Record<string, unknown>;
            try {
              event = JSON.parse(line) as Record<string, unknown>;
            } catch {
              continue;
            }
            // Swarm-scoped events come from every manager: take them from one.
            if (event.scope === 'swarm' && node.id !== manager?.id) continue;
            if (await visible(event)) res.write(`${line}\n`);
          }
        });
      });
      upstream.on('end', () => void chain.then(done));
      upstream.on('error', () => void chain.then(done));
      res.on('close', () => upstream.destroy());
    }
  }
}

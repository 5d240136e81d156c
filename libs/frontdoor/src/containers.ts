// Containers and execs: found on whichever node holds them ("<node>/<name>" or an id/name asked of
// every node), listed across nodes with node-prefixed names, created on a node chosen by spread.
import { type Caller, type Call, readJsonObject } from './call.js';
import type { ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import {
  OWNER_LABEL,
  collectionOf,
  containerHostOperations,
  isObject,
  labelsField,
  namedVolumes,
  withCollectionLabels,
} from './policy.js';
import type { Route } from './routes.js';
import { extractConstraints } from './schedule.js';

export class Containers {
  /** exec id -> node name, learnt when an exec is created (probed on a miss). */
  private readonly execNodes = new Map<string, string>();

  constructor(private readonly gw: Gateway) {}

  private async canSeeContainer(caller: Caller, labels: unknown): Promise<boolean> {
    const path = collectionOf(labels);
    if (!(await caller.decide('Container View', path)).allowed) return false;
    return !(await this.hiddenByOwner(caller, labels));
  }

  /** Another user's container in a collection where the caller has Full Control. */
  private async hiddenByOwner(caller: Caller, labels: unknown): Promise<boolean> {
    if (caller.isAdmin) return false;
    const owner = isObject(labels) ? labels[OWNER_LABEL] : undefined;
    if (typeof owner !== 'string' || owner === caller.principal.name) return false;
    return caller.hasFullControl(collectionOf(labels));
  }

  async listContainers(call: Call): Promise<void> {
    const nodes = await this.gw.cluster.readyNodes();
    const lists = await this.gw.fanOut<Record<string, unknown>[]>(
      nodes,
      `${call.prefix}/containers/json${call.search}`,
    );
    const merged: Record<string, unknown>[] = [];
    for (const { node, body } of lists) {
      if (!Array.isArray(body)) continue;
      for (const container of body) {
        // decide() allows administrators everything: no need to ask per container.
        if (!call.caller.isAdmin && !(await this.canSeeContainer(call.caller, container.Labels))) continue;
        const names = Array.isArray(container.Names) ? (container.Names as string[]) : [];
        // The parsed answer is ours: named in place rather than copied.
        container.Names = names.map((n) => `/${node.name}${n.startsWith('/') ? n : `/${n}`}`);
        merged.push(container);
      }
    }
    merged.sort((a, b) => Number(b.Created ?? 0) - Number(a.Created ?? 0));
    const limit = Number(new URLSearchParams(call.search).get('limit') ?? '0');
    this.gw.noteList(call, 'Container View');
    this.gw.respondJson(call.res, 200, limit > 0 ? merged.slice(0, limit) : merged);
  }

  /** Every container (on the given node, or any Ready node) that `ref` names, as the engines answer. */
  private async lookupContainers(
    ref: string,
    nodeName?: string,
  ): Promise<{ node: ClusterNode; info: Record<string, unknown> }[]> {
    let nodes: ClusterNode[];
    if (nodeName !== undefined) {
      const node = await this.gw.cluster.byName(nodeName);
      if (!node) return [];
      nodes = [node];
    } else {
      nodes = await this.gw.cluster.readyNodes();
    }
    const found = await Promise.all(
      nodes.map(async (node) => {
        const answer = await this.gw.pool
          .json<Record<string, unknown>>(node, 'GET', `/containers/${encodeURIComponent(ref)}/json`)
          .catch(() => undefined);
        return answer?.status === 200 && isObject(answer.body) ? { node, info: answer.body } : undefined;
      }),
    );
    return found.filter((f): f is { node: ClusterNode; info: Record<string, unknown> } => f !== undefined);
  }

  async resolveContainer(
    caller: Caller,
    ref: string,
    nodeName?: string,
  ): Promise<{ node: ClusterNode; info: Record<string, unknown>; labels: unknown }> {
    const shown = nodeName !== undefined ? `${nodeName}/${ref}` : ref;
    let found = await this.lookupContainers(ref, nodeName);
    if (found.length > 1) {
      const exact = found.filter((f) => f.info.Id === ref || f.info.Name === `/${ref}`);
      if (exact.length === 1) found = exact;
      else
        throw new DockerApiError(409, `more than one container matches "${ref}": name it as <node>/<name>`);
    }
    const hit = found[0];
    const labels = isObject(hit?.info.Config) ? hit.info.Config.Labels : undefined;
    if (!hit || (await this.hiddenByOwner(caller, labels))) {
      throw notFound(`No such container: ${shown}`);
    }
    return { ...hit, labels };
  }

  async createContainer(call: Call): Promise<void> {
    const body = await readJsonObject(call.req);
    const query = new URLSearchParams(call.search);
    let name = query.get('name') ?? undefined;
    const labels = labelsField(body.Labels, 'Labels');
    const { constraints, env } = extractConstraints(body.Env, labels);
    // Classic Swarm: `--name node/name` creates on that node.
    if (name?.includes('/')) {
      const [node, plain, ...more] = name.replace(/^\//, '').split('/');
      if (!node || !plain || more.length > 0) throw badRequest(`invalid container name "${name}"`);
      constraints.push({ key: 'node', equal: true, value: node });
      name = plain;
      query.set('name', plain);
    }
    const collection = await this.gw.targetCollection(call, labels, 'Container Create');
    for (const op of containerHostOperations(body.HostConfig))
      await this.gw.require(call, op, collection.path);
    body.Labels = withCollectionLabels(labels, collection, call.caller.principal.name);
    if (env !== undefined) body.Env = env;
    if (name) {
      // Container names are unique across the cluster, as classic Swarm kept them.
      const taken = (await this.lookupContainers(name)).find((f) => f.info.Name === `/${name}`);
      if (taken) {
        throw new DockerApiError(
          409,
          `Conflict. The container name "/${name}" is already in use by container "${String(taken.info.Id)}" on node ${taken.node.name}. You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
    }
    const node = await this.gw.spreadOnto(call, constraints);
    // Mounting an existing volume needs Volume Mount on its collection (new ones are the caller's).
    for (const volume of namedVolumes(body.HostConfig)) {
      const found = await this.gw.pool.json<{ Labels?: unknown }>(
        node,
        'GET',
        `/volumes/${encodeURIComponent(volume)}`,
      );
      if (found.status === 200) await this.gw.require(call, 'Volume Mount', collectionOf(found.body?.Labels));
    }
    const search = query.toString();
    await this.gw.forward(
      call,
      node,
      'POST',
      `${call.prefix}/containers/create${search ? `?${search}` : ''}`,
      Buffer.from(JSON.stringify(body)),
    );
  }

  async containerCall(call: Call, route: Extract<Route, { kind: 'container' }>): Promise<void> {
    const { node, info, labels } = await this.resolveContainer(call.caller, route.ref, route.node);
    const path = collectionOf(labels);
    await this.gw.require(call, route.operation, path);
    const id = String(info.Id);
    const target = `${call.prefix}/containers/${id}${route.action ? `/${route.action}` : ''}${call.search}`;
    if (route.action === 'exec') {
      const body = await readJsonObject(call.req);
      if (body.Privileged === true) await this.gw.require(call, 'Container Privileged', path);
      const answer = await this.gw.pool.json<{ Id?: string }>(node, 'POST', target, body);
      if (answer.status === 201 && typeof answer.body?.Id === 'string')
        this.rememberExec(answer.body.Id, node);
      this.gw.respondJson(call.res, answer.status, answer.body ?? {});
      return;
    }
    await this.gw.forward(call, node, call.req.method ?? 'GET', target);
  }

  private rememberExec(id: string, node: ClusterNode): void {
    this.execNodes.set(id, node.name);
    // Execs are short-lived: keep the newest few thousand.
    if (this.execNodes.size > 5000) this.execNodes.delete(this.execNodes.keys().next().value as string);
  }

  async resolveExec(caller: Caller, id: string): Promise<{ node: ClusterNode; containerLabels: unknown }> {
    const remembered = this.execNodes.get(id);
    const candidates = remembered
      ? [await this.gw.cluster.byName(remembered)].filter((n): n is ClusterNode => n !== undefined)
      : await this.gw.cluster.readyNodes();
    const found = (
      await Promise.all(
        candidates.map(async (node) => {
          const answer = await this.gw.pool
            .json<{ ContainerID?: string }>(node, 'GET', `/exec/${encodeURIComponent(id)}/json`)
            .catch(() => undefined);
          return answer?.status === 200 && typeof answer.body?.ContainerID === 'string'
            ? { node, containerId: answer.body.ContainerID }
            : undefined;
        }),
      )
    ).find((f) => f !== undefined);
    if (!found) throw notFound(`No such exec instance: ${id}`);
    const container = await this.gw.pool.json<{ Config?: { Labels?: unknown } }>(
      found.node,
      'GET',
      `/containers/${found.containerId}/json`,
    );
    const labels = container.body?.Config?.Labels;
    if (await this.hiddenByOwner(caller, labels)) throw notFound(`No such exec instance: ${id}`);
    return { node: found.node, containerLabels: labels };
  }

  async execCall(call: Call, route: Extract<Route, { kind: 'exec' }>): Promise<void> {
    const { node, containerLabels } = await this.resolveExec(call.caller, route.id);
    await this.gw.require(call, route.operation, collectionOf(containerLabels));
    await this.gw.forward(
      call,
      node,
      call.req.method ?? 'GET',
      `${call.prefix}/exec/${encodeURIComponent(route.id)}/${route.action}${call.search}`,
    );
  }
}

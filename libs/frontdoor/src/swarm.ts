// Swarm objects (services, tasks, nodes, secrets, configs, networks): on a swarm manager, except
// network connect/disconnect, which go to the engine holding the container (as classic Swarm);
// their collection is their access label (nodes: /System or /Shared by role).
import { findCollectionByPath, type Collection } from '@orca/rbac';
import { readJsonObject, type Call } from './call.js';
import type { Containers } from './containers.js';
import type { ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import {
  OWNER_LABEL,
  collectionOf,
  isObject,
  labelsField,
  requestedCollection,
  serviceHostOperations,
  withCollectionLabels,
} from './policy.js';
import type { Route, SwarmType } from './routes.js';

const SWARM_SEGMENT: Record<SwarmType, string> = {
  Service: 'services',
  Task: 'tasks',
  Node: 'nodes',
  Secret: 'secrets',
  Config: 'configs',
  Network: 'networks',
};

export class SwarmObjects {
  constructor(
    private readonly gw: Gateway,
    private readonly containers: Containers,
  ) {}

  /** The collection of a swarm object as the engine shows it. */
  private swarmCollection(
    type: SwarmType,
    item: Record<string, unknown>,
    services?: Map<string, string>,
  ): string {
    const spec = isObject(item.Spec) ? item.Spec : {};
    switch (type) {
      case 'Network':
        return collectionOf(item.Labels);
      case 'Node': {
        const labels = isObject(spec.Labels) ? spec.Labels : {};
        if (typeof labels['com.docker.ucp.access.label'] === 'string') return collectionOf(labels);
        return spec.Role === 'manager' ? '/System' : '/Shared';
      }
      case 'Task': {
        const fromService = services?.get(String(item.ServiceID));
        if (fromService) return fromService;
        const containerSpec = isObject(spec.ContainerSpec) ? spec.ContainerSpec : {};
        return collectionOf(containerSpec.Labels);
      }
      default:
        return collectionOf(spec.Labels);
    }
  }

  private async serviceCollections(manager: ClusterNode): Promise<Map<string, string>> {
    const answer = await this.gw.pool.json<Record<string, unknown>[]>(manager, 'GET', '/services');
    const map = new Map<string, string>();
    for (const service of Array.isArray(answer.body) ? answer.body : []) {
      map.set(String(service.ID), this.swarmCollection('Service', service));
    }
    return map;
  }

  async swarmList(call: Call, type: SwarmType, operation: string): Promise<void> {
    const manager = await this.gw.manager();
    this.gw.noteList(call, operation);
    // Admins see everything: the engine's answer goes through untouched.
    if (call.caller.isAdmin) return this.gw.relayGet(call, manager);
    const [list] = await this.gw.fanOut<Record<string, unknown>[]>(
      [manager],
      `${call.prefix}${call.path}${call.search}`,
    );
    if (!list) throw new DockerApiError(502, `the swarm manager did not answer ${call.path}`);
    const services = type === 'Task' ? await this.serviceCollections(manager) : undefined;
    const visible: Record<string, unknown>[] = [];
    for (const item of Array.isArray(list.body) ? list.body : []) {
      if ((await call.caller.decide(operation, this.swarmCollection(type, item, services))).allowed)
        visible.push(item);
    }
    this.gw.respondJson(call.res, 200, visible);
  }

  /** Labels a swarm create or update body; for services the task containers get them too. */
  private labelBody(
    type: SwarmType,
    body: Record<string, unknown>,
    collection: Collection,
    owner: string,
  ): void {
    body.Labels = withCollectionLabels(labelsField(body.Labels, 'Labels'), collection, owner);
    if (type !== 'Service') return;
    const template = isObject(body.TaskTemplate) ? body.TaskTemplate : (body.TaskTemplate = {});
    const containerSpec = isObject(template.ContainerSpec)
      ? template.ContainerSpec
      : (template.ContainerSpec = {});
    containerSpec.Labels = withCollectionLabels(
      labelsField(containerSpec.Labels, 'TaskTemplate.ContainerSpec.Labels'),
      collection,
      owner,
    );
  }

  /** Services of users who may not schedule on managers stay off them (UCP's node isolation). */
  private async placeService(call: Call, body: Record<string, unknown>): Promise<void> {
    if (call.caller.isAdmin) return;
    if ((await call.caller.decide('Node Schedule', '/System')).allowed) return;
    await this.gw.require(call, 'Node Schedule', '/Shared');
    const template = body.TaskTemplate as Record<string, unknown>;
    const placement = isObject(template.Placement) ? template.Placement : (template.Placement = {});
    const constraints = Array.isArray(placement.Constraints) ? (placement.Constraints as unknown[]) : [];
    if (!constraints.includes('node.role==worker'))
      placement.Constraints = [...constraints, 'node.role==worker'];
  }

  /** A service may use only the secrets and configs the caller may use (Secret Use, Config Use). */
  private async requireReferences(
    call: Call,
    manager: ClusterNode,
    body: Record<string, unknown>,
  ): Promise<void> {
    if (call.caller.isAdmin) return;
    const template = isObject(body.TaskTemplate) ? body.TaskTemplate : {};
    const spec = isObject(template.ContainerSpec) ? template.ContainerSpec : {};
    for (const [field, type] of [
      ['Secrets', 'Secret'],
      ['Configs', 'Config'],
    ] as const) {
      const refs = spec[field];
      if (refs === undefined || refs === null) continue;
      if (!Array.isArray(refs)) throw badRequest(`TaskTemplate.ContainerSpec.${field} must be an array`);
      for (const ref of refs) {
        const id = isObject(ref) ? (ref[`${type}ID`] ?? ref[`${type}Name`]) : undefined;
        if (typeof id !== 'string' || id === '') throw badRequest(`each of ${field} needs a ${type}ID`);
        const found = await this.gw.pool.json<Record<string, unknown>>(
          manager,
          'GET',
          `/${SWARM_SEGMENT[type]}/${encodeURIComponent(id)}`,
        );
        if (found.status !== 200 || !isObject(found.body))
          throw notFound(`${type.toLowerCase()} ${id} not found`);
        await this.gw.require(call, `${type} Use`, this.swarmCollection(type, found.body));
      }
    }
  }

  async swarmCreate(call: Call, type: Exclude<SwarmType, 'Task' | 'Node'>, operation: string): Promise<void> {
    const body = await readJsonObject(call.req);
    const collection = await this.gw.targetCollection(call, labelsField(body.Labels, 'Labels'), operation);
    if (type === 'Service') {
      for (const op of serviceHostOperations(body.TaskTemplate))
        await this.gw.require(call, op, collection.path);
    }
    this.labelBody(type, body, collection, call.caller.principal.name);
    if (type === 'Service') {
      await this.placeService(call, body);
      await this.requireReferences(call, await this.gw.manager(), body);
    }
    await this.gw.forward(
      call,
      await this.gw.manager(),
      'POST',
      undefined,
      Buffer.from(JSON.stringify(body)),
    );
  }

  async swarmObject(call: Call, route: Extract<Route, { kind: 'swarm-object' }>): Promise<void> {
    if (route.type === 'Network' && (route.action === 'connect' || route.action === 'disconnect'))
      return this.networkAttachment(call, route);
    const manager = await this.gw.manager();
    const segment = SWARM_SEGMENT[route.type];
    const inspected = await this.gw.pool.json<Record<string, unknown>>(
      manager,
      'GET',
      `/${segment}/${encodeURIComponent(route.id)}`,
    );
    if (inspected.status !== 200 || !isObject(inspected.body)) {
      const message =
        isObject(inspected.body) && typeof inspected.body.message === 'string'
          ? inspected.body.message
          : `${route.type.toLowerCase()} ${route.id} not found`;
      throw new DockerApiError(inspected.status === 200 ? 502 : inspected.status, message);
    }
    let services: Map<string, string> | undefined;
    if (route.type === 'Task') {
      const serviceId = String(inspected.body.ServiceID ?? '');
      const service = await this.gw.pool.json<Record<string, unknown>>(
        manager,
        'GET',
        `/services/${serviceId}`,
      );
      services = new Map(
        isObject(service.body) ? [[serviceId, this.swarmCollection('Service', service.body)]] : [],
      );
    }
    const current = this.swarmCollection(route.type, inspected.body, services);
    await this.gw.require(call, route.operation, current);
    // The path the engine gets is the one authorized: rebuilt from the decoded id.
    const target = `${call.prefix}/${segment}/${encodeURIComponent(route.id)}${route.action ? `/${route.action}` : ''}${call.search}`;
    if (route.action !== 'update' || route.type === 'Node') {
      return this.gw.forward(call, manager, call.req.method ?? 'GET', target);
    }
    // Updates may move the object to another collection: the caller must be allowed there too.
    const body = await readJsonObject(call.req);
    const requested = requestedCollection(labelsField(body.Labels, 'Labels')) ?? current;
    const collection = await findCollectionByPath(this.gw.options.store, requested);
    if (!collection) throw badRequest(`collection ${requested} does not exist`);
    if (requested !== current) await this.gw.require(call, route.operation, requested);
    if (route.type === 'Service') {
      for (const op of serviceHostOperations(body.TaskTemplate)) await this.gw.require(call, op, requested);
    }
    const spec = isObject(inspected.body.Spec) ? inspected.body.Spec : {};
    const owner =
      isObject(spec.Labels) && typeof spec.Labels[OWNER_LABEL] === 'string'
        ? (spec.Labels[OWNER_LABEL] as string)
        : call.caller.principal.name;
    this.labelBody(route.type, body, collection, owner);
    if (route.type === 'Service') {
      await this.placeService(call, body);
      await this.requireReferences(call, manager, body);
    }
    await this.gw.forward(call, manager, 'POST', target, Buffer.from(JSON.stringify(body)));
  }

  /** A network as one engine shows it (undefined when that engine does not know it). */
  private async inspectNetwork(node: ClusterNode, ref: string): Promise<Record<string, unknown> | undefined> {
    const answer = await this.gw.pool.json<Record<string, unknown>>(
      node,
      'GET',
      `/networks/${encodeURIComponent(ref)}`,
    );
    if (answer.status === 200 && isObject(answer.body)) return answer.body;
    if (answer.status === 404) return undefined;
    const message =
      isObject(answer.body) && typeof answer.body.message === 'string' ? answer.body.message : '';
    throw new DockerApiError(answer.status < 500 ? answer.status : 502, `node ${node.name}: ${message}`);
  }

  /**
   * docker network connect/disconnect: the engine of the node holding the container does it, as
   * classic Swarm routed them (a local bridge exists only there; for a swarm overlay that engine
   * asks a manager for the attachment itself). Needs Network Connect/Disconnect on the network's
   * collection and Container Update on the container's (its endpoints change).
   */
  private async networkAttachment(
    call: Call,
    route: Extract<Route, { kind: 'swarm-object' }>,
  ): Promise<void> {
    const body = await readJsonObject(call.req);
    const ref = body.Container;
    if (typeof ref !== 'string' || ref === '') throw badRequest('Container is required');
    if (body.Force !== undefined && typeof body.Force !== 'boolean')
      throw badRequest('Force must be a boolean');
    // "<node>/<name>", as docker ps names containers here.
    const parts = ref.replace(/^\//, '').split('/');
    if (parts.length > 2 || parts.some((p) => p === '')) throw badRequest(`invalid container name "${ref}"`);
    const name = parts[parts.length - 1];
    const nodeName = parts.length === 2 ? parts[0] : undefined;
    let holder: Awaited<ReturnType<Containers['resolveContainer']>> | undefined;
    try {
      holder = await this.containers.resolveContainer(call.caller, name, nodeName);
    } catch (error) {
      // A forced disconnect of a container that is gone cleans a swarm network's endpoint: a manager.
      const gone = error instanceof DockerApiError && error.status === 404;
      if (!gone || route.action !== 'disconnect' || body.Force !== true) throw error;
    }
    const manager = await this.gw.manager();
    const node = holder?.node ?? manager;
    let network = await this.inspectNetwork(node, route.id);
    // A swarm network is known to a worker's engine only once something there is attached to it.
    if (!network && node.id !== manager.id) {
      const onManager = await this.inspectNetwork(manager, route.id);
      if (onManager?.Scope === 'swarm') network = onManager;
    }
    if (!network) throw notFound(`network ${route.id} not found on node ${node.name}`);
    await this.gw.require(call, route.operation, collectionOf(network.Labels));
    if (holder) {
      await this.gw.require(call, 'Container Update', collectionOf(holder.labels));
      body.Container = String(holder.info.Id);
    }
    const target = `${call.prefix}/networks/${encodeURIComponent(String(network.Id))}/${route.action}${call.search}`;
    await this.gw.forward(call, node, 'POST', target, Buffer.from(JSON.stringify(body)));
  }
}

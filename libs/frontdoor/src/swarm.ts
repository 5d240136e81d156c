// Swarm objects (services, tasks, nodes, secrets, configs): on a swarm manager (networks, which
// may be node-local, are networks.ts's); their collection is their access label (nodes: /System
// or /Shared by role).
import { findCollectionByPath, type Collection } from '@orca/rbac';
import { readJsonObject, type Call } from './call.js';
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
  constructor(private readonly gw: Gateway) {}

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

  /**
   * The last answer to each list path, parsed, and the filtered lists made from it, per grants
   * snapshot and caller: swarm lists rarely change between two calls, and parsing and
   * re-serialising them was most of what a non-admin's list cost beyond an admin's.
   */
  private readonly lastLists = new Map<
    string,
    { raw: Buffer; items: Record<string, unknown>[]; filtered: WeakMap<object, Map<string, string>> }
  >();

  async swarmList(call: Call, type: SwarmType, operation: string): Promise<void> {
    const manager = await this.gw.manager();
    this.gw.noteList(call, operation);
    // Admins see everything: the engine's answer goes through untouched.
    if (call.caller.isAdmin) return this.gw.relayGet(call, manager);
    // Tasks take their service's collection: the services list is asked for too (below).
    if (type !== 'Task' && (await this.filteredFromLast(call, manager, type, operation))) return;
    const [list] = await this.gw.fanOut<Record<string, unknown>[]>(
      [manager],
      `${call.prefix}${call.path}${call.search}`,
    );
    if (!list) throw new DockerApiError(502, `the swarm manager did not answer ${call.path}`);
    const services = type === 'Task' ? await this.serviceCollections(manager) : undefined;
    const allowed = await call.caller.allows(operation);
    const visible: Record<string, unknown>[] = [];
    for (const item of Array.isArray(list.body) ? list.body : []) {
      if (allowed(this.swarmCollection(type, item, services))) visible.push(item);
    }
    this.gw.respondJson(call.res, 200, visible);
  }

  /** Answers from the last answer's parse when the engine's bytes are the same; false: not answered. */
  private async filteredFromLast(
    call: Call,
    manager: ClusterNode,
    type: SwarmType,
    operation: string,
  ): Promise<boolean> {
    const path = `${call.prefix}${call.path}${call.search}`;
    const answer = await this.gw.pool.get(manager, path);
    // Errors keep the general path's handling.
    if (answer.status !== 200) return false;
    let last = this.lastLists.get(path);
    if (!last || !last.raw.equals(answer.body)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(answer.body.toString('utf8'));
      } catch {
        throw new DockerApiError(502, `the swarm manager's answer to ${call.path} is not JSON`);
      }
      if (this.lastLists.size >= 32) this.lastLists.clear();
      last = { raw: answer.body, items: Array.isArray(parsed) ? parsed : [], filtered: new WeakMap() };
      this.lastLists.set(path, last);
    }
    const { snapshot, subject } = await call.caller.decisionKey();
    let bySubject = last.filtered.get(snapshot);
    if (!bySubject) last.filtered.set(snapshot, (bySubject = new Map()));
    const key = `${operation}|${subject}`;
    let text = bySubject.get(key);
    if (text === undefined) {
      const allowed = await call.caller.allows(operation);
      text = JSON.stringify(last.items.filter((item) => allowed(this.swarmCollection(type, item))));
      if (bySubject.size >= 256) bySubject.clear();
      bySubject.set(key, text);
    }
    this.gw.respondJsonText(call.res, 200, text);
    return true;
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
}

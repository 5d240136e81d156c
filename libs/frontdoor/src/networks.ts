// Networks as UCP's classic Swarm compatibility showed them: swarm-scope networks are the swarm's
// (a manager holds them), local-scope ones (bridge, host, macvlan...) belong to one node's engine
// and are named "<node>/<name>". A create named "<node>/<name>" goes to that node; inspect, remove,
// connect and disconnect of a local network go to the node that holds it.
import { readJsonObject, type Call } from './call.js';
import type { Containers } from './containers.js';
import type { ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import { collectionOf, isObject, labelsField, withCollectionLabels } from './policy.js';
import type { Route } from './routes.js';

type NetworkRoute = Extract<Route, { kind: 'swarm-object' }>;
type Network = Record<string, unknown>;

/** A network as one node's engine shows it. */
export interface NetworkHit<N extends { name: string } = ClusterNode> {
  node: N;
  network: Network;
}

/** "<node>/<name>" → both parts; a plain name → the name alone. */
export function splitNodeName(value: string, what: string): { node?: string; name: string } {
  const parts = value.split('/');
  if (parts.length === 1) return { name: value };
  if (parts.length !== 2 || parts.some((p) => p === '')) throw badRequest(`invalid ${what} name "${value}"`);
  return { node: parts[0], name: parts[1] };
}

export function isLocal(network: Network): boolean {
  return network.Scope === 'local';
}

/**
 * `docker network ls` across the cluster, as classic Swarm listed it: the swarm's networks once
 * (from the manager's answer; workers know some of them too), each node's local networks under
 * "<node>/<name>". Lists are the engines' parsed answers, changed in place.
 */
export function mergeNetworkLists<N extends { name: string }>(
  manager: N,
  lists: { node: N; body: unknown }[],
): NetworkHit<N>[] {
  const merged: NetworkHit<N>[] = [];
  const seen = new Set<string>();
  for (const { node, body } of lists) {
    for (const network of Array.isArray(body) ? (body as unknown[]) : []) {
      if (!isObject(network)) continue;
      const local = isLocal(network);
      if (!local && node.name !== manager.name) continue;
      const key = local ? `${node.name}\0${String(network.Id)}` : String(network.Id);
      if (seen.has(key)) continue;
      seen.add(key);
      if (local) network.Name = `${node.name}/${String(network.Name)}`;
      merged.push({ node, network });
    }
  }
  return merged;
}

/**
 * The one network an unqualified reference means among what the nodes answered: an exact id; else
 * the swarm network of that name (local ones are listed as "<node>/<name>"); else a local network
 * found on one node only. Undefined when nothing matched; 'ambiguous' when several did.
 */
export function pickNetwork<N extends { name: string }>(
  ref: string,
  hits: NetworkHit<N>[],
): NetworkHit<N> | 'ambiguous' | undefined {
  const distinct = new Map<string, NetworkHit<N>>();
  for (const hit of hits) {
    const key = isLocal(hit.network) ? `${hit.node.name}\0${String(hit.network.Id)}` : String(hit.network.Id);
    if (!distinct.has(key)) distinct.set(key, hit);
  }
  const all = [...distinct.values()];
  const byId = all.filter((h) => h.network.Id === ref);
  if (byId.length === 1) return byId[0];
  for (const group of [all.filter((h) => !isLocal(h.network)), all.filter((h) => isLocal(h.network))]) {
    if (group.length === 1) return group[0];
    if (group.length > 1) return 'ambiguous';
  }
  return undefined;
}

export class Networks {
  constructor(
    private readonly gw: Gateway,
    private readonly containers: Containers,
  ) {}

  /** GET /networks: swarm networks from a manager, local ones from every node the caller may see. */
  async list(call: Call): Promise<void> {
    const manager = await this.gw.manager();
    const ready = await this.gw.cluster.readyNodes();
    const nodes: ClusterNode[] = [];
    for (const node of ready) {
      if (node.id === manager.id || call.caller.isAdmin) nodes.push(node);
      else if ((await call.caller.decide('Node View', node.collection)).allowed) nodes.push(node);
    }
    if (!nodes.some((n) => n.id === manager.id)) nodes.push(manager);
    const lists = await this.gw.fanOut<unknown>(nodes, `${call.prefix}/networks${call.search}`);
    if (!lists.some((l) => l.node.id === manager.id))
      throw new DockerApiError(502, `the swarm manager did not answer ${call.path}`);
    // The manager's own local networks only for those who may see that node.
    const managerVisible =
      call.caller.isAdmin || (await call.caller.decide('Node View', manager.collection)).allowed;
    const visible: Network[] = [];
    for (const { node, network } of mergeNetworkLists(manager, lists)) {
      if (node.id === manager.id && isLocal(network) && !managerVisible) continue;
      if (
        !call.caller.isAdmin &&
        !(await call.caller.decide('Network View', collectionOf(network.Labels))).allowed
      )
        continue;
      visible.push(network);
    }
    this.gw.noteList(call, 'Network View');
    this.gw.respondJson(call.res, 200, visible);
  }

  /** POST /networks/create: "<node>/<name>" on that node (Node Schedule there), else on a manager. */
  async create(call: Call): Promise<void> {
    const body = await readJsonObject(call.req);
    if (body.Name !== undefined && typeof body.Name !== 'string') throw badRequest('Name must be a string');
    const { node, name } = splitNodeName((body.Name as string | undefined) ?? '', 'network');
    const labels = labelsField(body.Labels, 'Labels');
    const collection = await this.gw.targetCollection(call, labels, 'Network Create');
    body.Labels = withCollectionLabels(labels, collection, call.caller.principal.name);
    let target: ClusterNode;
    if (node !== undefined) {
      target = await this.gw.spreadOnto(call, [{ key: 'node', equal: true, value: node }]);
      body.Name = name;
    } else {
      target = await this.gw.manager();
    }
    await this.gw.forward(call, target, 'POST', undefined, Buffer.from(JSON.stringify(body)));
  }

  /** GET or DELETE /networks/{id, name or node/name}: on the node holding a local network. */
  async object(call: Call, route: NetworkRoute): Promise<void> {
    if (route.action === 'connect' || route.action === 'disconnect') return this.attachment(call, route);
    // `?scope=swarm` (the CLI's lookup of a service's --network): the swarm's view, as a manager
    // answers it (the predefined host and none networks included), not a node's.
    const scope = new URLSearchParams(call.search).get('scope');
    if (route.node === undefined && (scope === 'swarm' || scope === 'global') && call.req.method === 'GET') {
      const manager = await this.gw.manager();
      const network = await this.inspect(manager, route.id);
      if (!network) throw notFound(`network ${route.id} not found`);
      await this.gw.require(call, route.operation, collectionOf(network.Labels));
      return this.gw.forward(call, manager, 'GET');
    }
    const { node, network } = await this.resolve(route.id, route.node);
    await this.gw.require(call, route.operation, collectionOf(network.Labels));
    // The engine gets the id, so it cannot pick another network of the same name.
    const target = `${call.prefix}/networks/${encodeURIComponent(String(network.Id))}${call.search}`;
    const method = call.req.method ?? 'GET';
    if (method !== 'GET' || !isLocal(network)) return this.gw.forward(call, node, method, target);
    const answer = await this.gw.pool.json<Network>(node, 'GET', target);
    if (answer.status === 200 && isObject(answer.body))
      answer.body.Name = `${node.name}/${String(answer.body.Name)}`;
    this.gw.respondJson(call.res, answer.status, answer.body ?? {});
  }

  /** A network as one engine shows it (undefined when that engine does not know it). */
  private async inspect(node: ClusterNode, ref: string): Promise<Network | undefined> {
    const answer = await this.gw.pool.json<Network>(node, 'GET', `/networks/${encodeURIComponent(ref)}`);
    if (answer.status === 200 && isObject(answer.body)) return answer.body;
    if (answer.status === 404) return undefined;
    const message =
      isObject(answer.body) && typeof answer.body.message === 'string' ? answer.body.message : '';
    throw new DockerApiError(answer.status < 500 ? answer.status : 502, `node ${node.name}: ${message}`);
  }

  /**
   * The network a reference names and the node to send its calls to (a manager for swarm
   * networks): "<node>/<name>" is looked up on that node, anything else on every Ready node.
   */
  private async resolve(ref: string, nodeName?: string): Promise<{ node: ClusterNode; network: Network }> {
    if (nodeName !== undefined) {
      const node = await this.gw.cluster.byName(nodeName);
      const network = node?.ready ? await this.inspect(node, ref) : undefined;
      if (!node || !network) throw notFound(`No such network: ${nodeName}/${ref}`);
      return { node: isLocal(network) ? node : await this.gw.manager(), network };
    }
    const nodes = await this.gw.cluster.readyNodes();
    const hits = (
      await Promise.all(
        nodes.map(async (node) => {
          const network = await this.inspect(node, ref).catch((error: unknown) => {
            // An engine that cannot be reached holds nothing that can be changed now.
            if (error instanceof DockerApiError) throw error;
            return undefined;
          });
          return network ? { node, network } : undefined;
        }),
      )
    ).filter((h): h is NetworkHit => h !== undefined);
    const hit = pickNetwork(ref, hits);
    if (hit === undefined) throw notFound(`network ${ref} not found`);
    if (hit === 'ambiguous')
      throw new DockerApiError(409, `network ${ref} exists on several nodes: name it as <node>/<name>`);
    return { node: isLocal(hit.network) ? hit.node : await this.gw.manager(), network: hit.network };
  }

  /**
   * docker network connect/disconnect: the engine of the node holding the container does it, as
   * classic Swarm routed them (a local bridge exists only there; for a swarm overlay that engine
   * asks a manager for the attachment itself). Needs Network Connect/Disconnect on the network's
   * collection and Container Update on the container's (its endpoints change).
   */
  private async attachment(call: Call, route: NetworkRoute): Promise<void> {
    const body = await readJsonObject(call.req);
    const ref = body.Container;
    if (typeof ref !== 'string' || ref === '') throw badRequest('Container is required');
    if (body.Force !== undefined && typeof body.Force !== 'boolean')
      throw badRequest('Force must be a boolean');
    // "<node>/<name>", as docker ps names containers here.
    const { node: containerNode, name } = splitNodeName(ref.replace(/^\//, ''), 'container');
    let holder: Awaited<ReturnType<Containers['resolveContainer']>> | undefined;
    try {
      holder = await this.containers.resolveContainer(call.caller, name, containerNode);
    } catch (error) {
      // A forced disconnect of a container that is gone cleans a swarm network's endpoint: a manager.
      const gone = error instanceof DockerApiError && error.status === 404;
      if (!gone || route.action !== 'disconnect' || body.Force !== true) throw error;
    }
    const manager = await this.gw.manager();
    const node = holder?.node ?? manager;
    let network: Network | undefined;
    if (route.node !== undefined) {
      const named = await this.resolve(route.id, route.node);
      if (isLocal(named.network) && named.node.id !== node.id) {
        throw badRequest(
          `network ${route.node}/${route.id} is local to node ${named.node.name}: the container is on node ${node.name}`,
        );
      }
      network = named.network;
    } else {
      network = await this.inspect(node, route.id);
      // A swarm network is known to a worker's engine only once something there is attached to it.
      if (!network && node.id !== manager.id) {
        const onManager = await this.inspect(manager, route.id);
        if (onManager?.Scope === 'swarm') network = onManager;
      }
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

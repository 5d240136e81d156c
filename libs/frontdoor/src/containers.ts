// Containers and execs: found on whichever node holds them ("<node>/<name>" or an id/name asked of
// every node), listed across nodes with node-prefixed names, created on a node chosen by spread
// with the volumes they make labelled (named ones created first, anonymous ones as labelled mounts).
import type { Collection } from '@orca/rbac';
import { type Caller, type Call, readJsonObject } from './call.js';
import type { ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import {
  OWNER_LABEL,
  anonymousVolumeMounts,
  collectionOf,
  containerHostOperations,
  isObject,
  labelsField,
  namedVolumes,
  requestedCollection,
  withCollectionLabels,
  type Labels,
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
    await this.labelAnonymousVolumes(call, node, body, collection);
    await this.prepareVolumes(call, node, body.HostConfig);
    const search = query.toString();
    await this.gw.forward(
      call,
      node,
      'POST',
      `${call.prefix}/containers/create${search ? `?${search}` : ''}`,
      Buffer.from(JSON.stringify(body)),
    );
  }

  /**
   * Named volumes a create mounts, on the node it goes to: an existing one needs Volume Mount on its
   * collection; a missing one is created here first as `docker volume create` would make it (its
   * access label or the caller's default collection, the collection labels, the owner), after every
   * decision, so the engine finds it rather than making it unlabelled (UCP labelled these too).
   */
  private async prepareVolumes(call: Call, node: ClusterNode, hostConfig: unknown): Promise<void> {
    const missing: VolumeToCreate[] = [];
    for (const volume of namedVolumeSpecs(hostConfig)) {
      const found = await this.gw.pool.json<{ Labels?: unknown; message?: string }>(
        node,
        'GET',
        `/volumes/${encodeURIComponent(volume.Name)}`,
      );
      if (found.status === 200) {
        await this.gw.require(call, 'Volume Mount', collectionOf(found.body?.Labels));
        continue;
      }
      if (found.status !== 404) {
        throw new DockerApiError(
          found.status < 500 ? found.status : 502,
          `node ${node.name}: ${found.body?.message ?? `volume ${volume.Name}: engine answered ${found.status}`}`,
        );
      }
      const collection = await this.gw.targetCollection(call, volume.Labels, 'Volume Create');
      await this.gw.require(call, 'Volume Mount', collection.path);
      missing.push({
        ...volume,
        Labels: withCollectionLabels(volume.Labels, collection, call.caller.principal.name),
      });
    }
    for (const volume of missing) {
      const created = await this.gw.pool.json<{ message?: string }>(
        node,
        'POST',
        `${call.prefix}/volumes/create`,
        volume,
      );
      if (created.status !== 201 && created.status !== 200) {
        throw new DockerApiError(
          created.status < 500 ? created.status : 502,
          created.body?.message ?? `creating volume ${volume.Name}: engine answered ${created.status}`,
        );
      }
    }
  }

  /**
   * Anonymous volumes (`-v /path`, the image's VOLUMEs, `--mount type=volume` without a source) are
   * made by the engine, which cannot relabel them afterwards: the create names each one as a mount
   * with the labels of its own access label's collection (`volume-label`) or else the container's,
   * after Volume Create and Volume Mount there. They stay anonymous (`rm -v` removes them).
   */
  private async labelAnonymousVolumes(
    call: Call,
    node: ClusterNode,
    body: Record<string, unknown>,
    collection: Collection,
  ): Promise<void> {
    const hostConfig = isObject(body.HostConfig) ? body.HostConfig : {};
    const [imageVolumes, inherited] = await Promise.all([
      this.imageVolumes(node, body.Image),
      this.inheritedTargets(node, hostConfig.VolumesFrom),
    ]);
    const checked = new Set<string>();
    for (const mount of anonymousVolumeMounts(body, imageVolumes, inherited)) {
      const options = isObject(mount.VolumeOptions) ? mount.VolumeOptions : {};
      const own = labelsField(options.Labels, 'HostConfig.Mounts[].VolumeOptions.Labels');
      // targetCollection decides Volume Create on a collection the label names.
      const target = requestedCollection(own)
        ? await this.gw.targetCollection(call, own, 'Volume Create')
        : collection;
      if (!checked.has(target.path)) {
        if (target === collection) await this.gw.require(call, 'Volume Create', target.path);
        await this.gw.require(call, 'Volume Mount', target.path);
        checked.add(target.path);
      }
      mount.VolumeOptions = {
        ...options,
        Labels: withCollectionLabels(own, target, call.caller.principal.name),
      };
    }
  }

  /** The VOLUMEs of the image a create names, as the node has it (none when it lacks it: the engine says so). */
  private async imageVolumes(node: ClusterNode, image: unknown): Promise<string[]> {
    if (typeof image !== 'string' || image === '') return [];
    const answer = await this.gw.pool
      .json<{ Config?: { Volumes?: unknown } }>(node, 'GET', `/images/${encodeURIComponent(image)}/json`)
      .catch(() => undefined);
    const volumes = answer?.status === 200 ? answer.body?.Config?.Volumes : undefined;
    return isObject(volumes) ? Object.keys(volumes) : [];
  }

  /** Where the containers of --volumes-from mount things: the engine fills those from them. */
  private async inheritedTargets(node: ClusterNode, volumesFrom: unknown): Promise<string[]> {
    if (volumesFrom === undefined || volumesFrom === null) return [];
    if (!Array.isArray(volumesFrom) || volumesFrom.some((v) => typeof v !== 'string'))
      throw badRequest('HostConfig.VolumesFrom must be an array of strings');
    const targets = await Promise.all(
      (volumesFrom as string[]).map(async (entry) => {
        const name = entry.split(':')[0];
        const answer = await this.gw.pool
          .json<{ Mounts?: unknown }>(node, 'GET', `/containers/${encodeURIComponent(name)}/json`)
          .catch(() => undefined);
        const mounts = answer?.status === 200 && Array.isArray(answer.body?.Mounts) ? answer.body.Mounts : [];
        return (mounts as unknown[]).flatMap((m) =>
          isObject(m) && typeof m.Destination === 'string' ? [m.Destination] : [],
        );
      }),
    );
    return targets.flat();
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

interface VolumeToCreate {
  Name: string;
  Driver?: string;
  DriverOpts?: Labels;
  Labels: Labels;
}

/**
 * The named volumes of a HostConfig as the engine would create them: Binds "name:/path" (with
 * VolumeDriver), Mounts of type volume (with their VolumeOptions' driver, options and labels).
 */
function namedVolumeSpecs(hostConfig: unknown): VolumeToCreate[] {
  if (!isObject(hostConfig)) return [];
  const specs = new Map<string, VolumeToCreate>();
  const driver =
    typeof hostConfig.VolumeDriver === 'string' && hostConfig.VolumeDriver !== ''
      ? hostConfig.VolumeDriver
      : undefined;
  for (const name of namedVolumes({ Binds: hostConfig.Binds }))
    specs.set(name, { Name: name, ...(driver ? { Driver: driver } : {}), Labels: {} });
  if (!Array.isArray(hostConfig.Mounts)) return [...specs.values()];
  for (const [i, mount] of hostConfig.Mounts.entries()) {
    if (!isObject(mount) || mount.Type !== 'volume' || typeof mount.Source !== 'string' || !mount.Source)
      continue;
    const where = `HostConfig.Mounts[${i}].VolumeOptions`;
    const options = mount.VolumeOptions ?? {};
    if (!isObject(options)) throw badRequest(`${where} must be an object`);
    const config = options.DriverConfig ?? {};
    if (!isObject(config)) throw badRequest(`${where}.DriverConfig must be an object`);
    const volumeDriver = config.Name ?? '';
    if (typeof volumeDriver !== 'string') throw badRequest(`${where}.DriverConfig.Name must be a string`);
    const driverOpts = labelsField(config.Options, `${where}.DriverConfig.Options`);
    specs.set(mount.Source, {
      Name: mount.Source,
      ...(volumeDriver ? { Driver: volumeDriver } : {}),
      ...(Object.keys(driverOpts).length > 0 ? { DriverOpts: driverOpts } : {}),
      Labels: labelsField(options.Labels, `${where}.Labels`),
    });
  }
  return [...specs.values()];
}

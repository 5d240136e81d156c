// Collections of Docker resources and what a create asks for (ucp-api.md §2.3, §4.1): a resource's
// collection is its com.docker.ucp.access.label (unlabelled: "/"); creates get the collection labels
// and the owner; Restricted Control's limits are the node-affecting operations a spec needs.
import { collectionLabels, type Collection } from '@orca/rbac';
import { badRequest } from './errors.js';

export const ACCESS_LABEL = 'com.docker.ucp.access.label';
export const OWNER_LABEL = 'com.docker.ucp.access.owner';

export type Labels = Record<string, string>;

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The collection path a resource with these labels belongs to. */
export function collectionOf(labels: unknown): string {
  const value = isObject(labels) ? labels[ACCESS_LABEL] : undefined;
  if (typeof value !== 'string' || !value.startsWith('/')) return '/';
  return value.length > 1 ? value.replace(/\/+$/, '') : value;
}

/** A Labels field of a request body: absent, or an object of strings. */
export function labelsField(raw: unknown, where: string): Labels {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw badRequest(`${where} must be an object of strings`);
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') throw badRequest(`${where}["${key}"] must be a string`);
  }
  return raw as Labels;
}

/** The access label a create asks for, if any (a path; checked against the collections later). */
export function requestedCollection(labels: Labels): string | undefined {
  const value = labels[ACCESS_LABEL];
  if (value === undefined) return undefined;
  if (!value.startsWith('/') || value.length > 1024) {
    throw badRequest(`${ACCESS_LABEL} must be a collection path such as /Shared/dev, not "${value}"`);
  }
  return value.length > 1 ? value.replace(/\/+$/, '') : value;
}

/** Labels with the collection's labels (replacing any stale com.docker.ucp.collection.*) and owner. */
export function withCollectionLabels(labels: Labels, collection: Collection, owner?: string): Labels {
  const kept = Object.fromEntries(
    Object.entries(labels).filter(
      ([key]) => key !== 'com.docker.ucp.collection' && !key.startsWith('com.docker.ucp.collection.'),
    ),
  );
  return { ...kept, ...collectionLabels(collection), ...(owner ? { [OWNER_LABEL]: owner } : {}) };
}

const HOST_MODES = ['NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode'] as const;

/**
 * The node-affecting operations a container's HostConfig needs beyond "Container Create" (what
 * Restricted Control leaves out): host bind mounts, privileged mode and devices, added
 * capabilities, host namespaces.
 */
export function containerHostOperations(hostConfig: unknown): string[] {
  if (hostConfig === undefined || hostConfig === null) return [];
  if (!isObject(hostConfig)) throw badRequest('HostConfig must be an object');
  const ops = new Set<string>();
  const binds = hostConfig.Binds;
  if (binds !== undefined && binds !== null) {
    if (!Array.isArray(binds) || binds.some((b) => typeof b !== 'string'))
      throw badRequest('HostConfig.Binds must be an array of strings');
    // "/host/path:/in/container" is a bind mount; "volume:/in/container" is a named volume;
    // "/in/container" alone is an anonymous volume.
    if ((binds as string[]).some((b) => b.startsWith('/') && b.includes(':')))
      ops.add('Container Bind Mount');
  }
  if (mountsHaveBind(hostConfig.Mounts, 'HostConfig.Mounts')) ops.add('Container Bind Mount');
  if (hostConfig.Privileged === true) ops.add('Container Privileged');
  if (Array.isArray(hostConfig.Devices) && hostConfig.Devices.length > 0) ops.add('Container Privileged');
  if (Array.isArray(hostConfig.CapAdd) && hostConfig.CapAdd.length > 0) ops.add('Container Capabilities');
  for (const mode of HOST_MODES) {
    if (hostConfig[mode] === 'host') ops.add('Container Host Network');
  }
  return [...ops];
}

function mountsHaveBind(mounts: unknown, where: string): boolean {
  if (mounts === undefined || mounts === null) return false;
  if (!Array.isArray(mounts) || mounts.some((m) => !isObject(m)))
    throw badRequest(`${where} must be an array of objects`);
  return mounts.some((m) => (m as Record<string, unknown>).Type === 'bind');
}

/** The same limits for a service's task template. */
export function serviceHostOperations(taskTemplate: unknown): string[] {
  if (taskTemplate === undefined || taskTemplate === null) return [];
  if (!isObject(taskTemplate)) throw badRequest('TaskTemplate must be an object');
  const ops = new Set<string>();
  const spec = taskTemplate.ContainerSpec;
  if (spec !== undefined && spec !== null) {
    if (!isObject(spec)) throw badRequest('TaskTemplate.ContainerSpec must be an object');
    if (mountsHaveBind(spec.Mounts, 'TaskTemplate.ContainerSpec.Mounts')) ops.add('Container Bind Mount');
    if (Array.isArray(spec.CapabilityAdd) && spec.CapabilityAdd.length > 0) ops.add('Container Capabilities');
  }
  const networks = taskTemplate.Networks;
  if (Array.isArray(networks) && networks.some((n) => isObject(n) && n.Target === 'host'))
    ops.add('Container Host Network');
  return [...ops];
}

/** Named volumes a container mounts (Binds "name:/path", Mounts of type volume): each needs Volume Mount. */
export function namedVolumes(hostConfig: unknown): string[] {
  if (!isObject(hostConfig)) return [];
  const names = new Set<string>();
  if (Array.isArray(hostConfig.Binds)) {
    for (const bind of hostConfig.Binds) {
      const source = typeof bind === 'string' ? bind.split(':')[0] : '';
      if (source && !source.startsWith('/')) names.add(source);
    }
  }
  if (Array.isArray(hostConfig.Mounts)) {
    for (const mount of hostConfig.Mounts) {
      if (isObject(mount) && mount.Type === 'volume' && typeof mount.Source === 'string' && mount.Source)
        names.add(mount.Source);
    }
  }
  return [...names];
}

/** A container path as the engine compares destinations (filepath.Clean). */
export function cleanPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function objectKeys(value: unknown): string[] {
  return isObject(value) ? Object.keys(value) : [];
}

/**
 * Rewrites a container create so that every anonymous volume the engine would make (`-v /path`
 * as Config.Volumes or a one-part bind, the image's VOLUMEs, `--mount type=volume` without a
 * source) is a HostConfig.Mounts entry of type volume without a Source: the engine still makes it
 * anonymous (removed with the container by `rm -v` and `--rm`), but with the VolumeOptions.Labels
 * the caller sets on the returned entries (engines cannot relabel a volume afterwards).
 * Destinations something else already fills (binds, mounts, tmpfs, `inherited` from
 * --volumes-from) get none, as the engine skips them.
 */
export function anonymousVolumeMounts(
  body: Record<string, unknown>,
  imageVolumes: readonly string[],
  inherited: readonly string[],
): Record<string, unknown>[] {
  const hostConfig = body.HostConfig ?? {};
  if (!isObject(hostConfig)) throw badRequest('HostConfig must be an object');
  const binds = hostConfig.Binds ?? [];
  if (!Array.isArray(binds) || binds.some((b) => typeof b !== 'string'))
    throw badRequest('HostConfig.Binds must be an array of strings');
  const mounts = hostConfig.Mounts ?? [];
  if (!Array.isArray(mounts) || mounts.some((m) => !isObject(m)))
    throw badRequest('HostConfig.Mounts must be an array of objects');
  const covered = new Set(inherited.map(cleanPath));
  const anonymousBinds: string[] = [];
  for (const bind of binds as string[]) {
    const parts = bind.split(':');
    if (parts.length === 1 && bind.startsWith('/')) anonymousBinds.push(bind);
    else if (parts.length > 1) covered.add(cleanPath(parts[1]));
  }
  const anonymous: Record<string, unknown>[] = [];
  for (const [i, mount] of (mounts as Record<string, unknown>[]).entries()) {
    if (typeof mount.Target === 'string') covered.add(cleanPath(mount.Target));
    if (mount.Type !== 'volume' || (typeof mount.Source === 'string' && mount.Source !== '')) continue;
    if (mount.VolumeOptions !== undefined && mount.VolumeOptions !== null && !isObject(mount.VolumeOptions))
      throw badRequest(`HostConfig.Mounts[${i}].VolumeOptions must be an object`);
    anonymous.push(mount);
  }
  for (const target of objectKeys(hostConfig.Tmpfs)) covered.add(cleanPath(target));
  const driver =
    typeof hostConfig.VolumeDriver === 'string' && hostConfig.VolumeDriver !== ''
      ? hostConfig.VolumeDriver
      : undefined;
  const added: Record<string, unknown>[] = [];
  for (const target of [...anonymousBinds, ...objectKeys(body.Volumes), ...imageVolumes]) {
    const clean = cleanPath(target);
    if (covered.has(clean)) continue;
    covered.add(clean);
    added.push({
      Type: 'volume',
      Target: clean,
      VolumeOptions: driver ? { DriverConfig: { Name: driver } } : {},
    });
  }
  if (anonymousBinds.length > 0)
    hostConfig.Binds = (binds as string[]).filter((b) => !anonymousBinds.includes(b));
  if (added.length > 0) {
    hostConfig.Mounts = [...(mounts as Record<string, unknown>[]), ...added];
    body.HostConfig = hostConfig;
  }
  return [...anonymous, ...added];
}

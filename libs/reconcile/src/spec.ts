import { createHash } from 'node:crypto';

/** Labels on everything orca manages; anything without LABEL_MANAGED=true is never touched. */
export const LABEL_MANAGED = 'com.docker.ucp.orca.managed';
export const LABEL_COMPONENT = 'com.docker.ucp.orca.component';
export const LABEL_NODE = 'com.docker.ucp.orca.node';
export const LABEL_SPEC_HASH = 'com.docker.ucp.orca.spec-hash';

export interface ComponentMount {
  source: string;
  target: string;
  readOnly?: boolean;
  type: 'bind' | 'volume';
}

export interface ComponentPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

/** One UCP component on one node (ucp-proxy, ucp-kv, ...), as the reconciler wants it. */
export interface ComponentSpec {
  /** Component name; also the container name on Docker (e.g. `ucp-proxy`). */
  name: string;
  image: string;
  /**
   * On Docker, the container's command after the image's entrypoint (`docker run IMAGE COMMAND...`;
   * empty keeps the image's CMD). For the process runtime, the full argv.
   */
  command: string[];
  env: Record<string, string>;
  mounts: ComponentMount[];
  ports: ComponentPort[];
  network: 'host' | 'none';
  labels: Record<string, string>;
  restartPolicy: 'always' | 'unless-stopped' | 'no';
  user?: string;
}

/** JSON with object keys sorted and undefined members dropped, so equal specs serialise equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : sortDeep(v)));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortDeep(v);
    }
    return out;
  }
  return value;
}

/** sha256 (hex) of the spec's canonical JSON: what LABEL_SPEC_HASH carries. */
export function specHash(spec: ComponentSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

/** The spec's own labels plus orca's bookkeeping labels (orca's win on a clash). */
export function componentLabels(spec: ComponentSpec, nodeId: string): Record<string, string> {
  return {
    ...spec.labels,
    [LABEL_MANAGED]: 'true',
    [LABEL_COMPONENT]: spec.name,
    [LABEL_NODE]: nodeId,
    [LABEL_SPEC_HASH]: specHash(spec),
  };
}

/** Checks an untrusted value (a --desired file) and fills optional members; throws a readable Error. */
export function parseComponentSpec(value: unknown, where = 'component'): ComponentSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error(`${where}: not an object`);
  const v = value as Record<string, unknown>;
  const str = (key: string, required = true): string | undefined => {
    const x = v[key];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'string') throw new Error(`${where}: "${key}" must be a string`);
    return x;
  };
  const strRecord = (key: string): Record<string, string> => {
    const x = v[key] ?? {};
    if (typeof x !== 'object' || x === null || Array.isArray(x))
      throw new Error(`${where}: "${key}" must be an object`);
    for (const [k, s] of Object.entries(x)) {
      if (typeof s !== 'string') throw new Error(`${where}: "${key}.${k}" must be a string`);
    }
    return x as Record<string, string>;
  };
  const name = str('name')!;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new Error(`${where}: invalid name "${name}"`);
  where = `component ${name}`;
  const command = v.command ?? [];
  if (!Array.isArray(command) || command.some((c) => typeof c !== 'string')) {
    throw new Error(`${where}: "command" must be an array of strings`);
  }
  const mounts = (v.mounts ?? []) as ComponentMount[];
  if (!Array.isArray(mounts)) throw new Error(`${where}: "mounts" must be an array`);
  for (const m of mounts) {
    if (
      typeof m?.source !== 'string' ||
      typeof m?.target !== 'string' ||
      !['bind', 'volume'].includes(m?.type)
    ) {
      throw new Error(`${where}: each mount needs source, target and type bind|volume`);
    }
  }
  const ports = (v.ports ?? []) as ComponentPort[];
  if (!Array.isArray(ports)) throw new Error(`${where}: "ports" must be an array`);
  for (const p of ports) {
    if (
      typeof p?.hostIp !== 'string' ||
      !Number.isInteger(p?.hostPort) ||
      !Number.isInteger(p?.containerPort)
    ) {
      throw new Error(`${where}: each port needs hostIp, hostPort and containerPort`);
    }
  }
  const network = v.network ?? 'host';
  if (network !== 'host' && network !== 'none') throw new Error(`${where}: "network" must be host or none`);
  const restartPolicy = v.restartPolicy ?? 'unless-stopped';
  if (!['always', 'unless-stopped', 'no'].includes(restartPolicy as string)) {
    throw new Error(`${where}: "restartPolicy" must be always, unless-stopped or no`);
  }
  const spec: ComponentSpec = {
    name,
    image: str('image')!,
    command: command as string[],
    env: strRecord('env'),
    mounts: mounts.map((m) => ({ source: m.source, target: m.target, type: m.type, readOnly: m.readOnly })),
    ports: ports.map((p) => ({ hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort })),
    network,
    labels: strRecord('labels'),
    restartPolicy: restartPolicy as ComponentSpec['restartPolicy'],
  };
  const user = str('user', false);
  if (user !== undefined) spec.user = user;
  return spec;
}

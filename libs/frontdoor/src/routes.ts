// Which Docker Engine API call a request is, and the UCP operation it needs (operation names from
// libs/rbac's catalogue). Pure: the front door decides routing and authorization from this.
import { splitVersion } from './version.js';

export type SwarmType = 'Service' | 'Task' | 'Node' | 'Secret' | 'Config' | 'Network';

export type Route =
  | { kind: 'system'; name: '_ping' | 'version' | 'info' }
  | { kind: 'unsupported'; message: string }
  | { kind: 'notfound' }
  | { kind: 'containers-list'; operation: 'Container View' }
  | { kind: 'container-create'; operation: 'Container Create' }
  | { kind: 'container'; ref: string; node?: string; action: string; operation: string }
  | { kind: 'exec'; id: string; action: string; operation: string }
  | { kind: 'images-list'; operation: 'Image View' }
  | { kind: 'image-pull'; operation: 'Image Pull' }
  | { kind: 'image-build'; operation: 'Image Build' }
  | { kind: 'image-load'; operation: 'Image Load' }
  | { kind: 'image-save'; operation: 'Image Save' }
  | { kind: 'image'; name: string; action: string; operation: string }
  | { kind: 'distribution'; operation: 'Image View' }
  | { kind: 'swarm-list'; type: SwarmType; operation: string }
  | { kind: 'swarm-create'; type: Exclude<SwarmType, 'Task' | 'Node'>; operation: string }
  | { kind: 'swarm-object'; type: SwarmType; id: string; node?: string; action: string; operation: string }
  | { kind: 'swarm'; operation: string }
  | { kind: 'volumes-list'; operation: 'Volume View' }
  | { kind: 'volume-create'; operation: 'Volume Create' }
  | { kind: 'volume'; name: string; node?: string; operation: string }
  | { kind: 'events'; operation: 'Container View' }
  | { kind: 'registry-auth' };

/** First path segments that belong to the Docker Engine API (the rest is UCP's own API). */
const DOCKER_TOP = new Set([
  '_ping',
  'version',
  'info',
  'containers',
  'images',
  'build',
  'commit',
  'networks',
  'volumes',
  'services',
  'tasks',
  'nodes',
  'secrets',
  'configs',
  'swarm',
  'plugins',
  'exec',
  'events',
  'system',
  'session',
  'grpc',
  'distribution',
]);

const SWARM_TYPES: Record<string, SwarmType> = {
  services: 'Service',
  tasks: 'Task',
  nodes: 'Node',
  secrets: 'Secret',
  configs: 'Config',
  networks: 'Network',
};

const CONTAINER_ACTIONS: Record<string, Record<string, string>> = {
  GET: {
    json: 'Container View',
    logs: 'Container Logs',
    stats: 'Container Stats',
    top: 'Container Top',
    changes: 'Container Changes',
    export: 'Container Export',
    archive: 'Container Export',
    'attach/ws': 'Container Attach',
  },
  HEAD: { archive: 'Container Export' },
  PUT: { archive: 'Container Update' },
  POST: {
    start: 'Container Start',
    stop: 'Container Stop',
    restart: 'Container Restart',
    kill: 'Container Kill',
    pause: 'Container Pause',
    unpause: 'Container Unpause',
    update: 'Container Update',
    rename: 'Container Rename',
    attach: 'Container Attach',
    resize: 'Container Resize',
    exec: 'Container Exec',
    wait: 'Container View',
  },
};

const UCP_STYLE = (what: string) => `${what} is not supported through the UCP API`;

function route(method: string, segments: string[]): Route {
  const [top, ...rest] = segments;
  const n = rest.length;
  if ((top === '_ping' || top === 'version' || top === 'info') && n === 0) {
    return { kind: 'system', name: top };
  }
  switch (top) {
    case 'containers':
      return containerRoute(method, rest);
    case 'exec': {
      if (n !== 2) return { kind: 'notfound' };
      const [id, action] = rest;
      if (method === 'POST' && (action === 'start' || action === 'resize'))
        return { kind: 'exec', id, action, operation: 'Container Exec' };
      if (method === 'GET' && action === 'json')
        return { kind: 'exec', id, action, operation: 'Container View' };
      return { kind: 'notfound' };
    }
    case 'images':
      return imageRoute(method, rest);
    case 'distribution':
      return method === 'GET' && n >= 2 && rest[n - 1] === 'json'
        ? { kind: 'distribution', operation: 'Image View' }
        : { kind: 'notfound' };
    case 'volumes':
      if (n === 0 && method === 'GET') return { kind: 'volumes-list', operation: 'Volume View' };
      if (n === 1 && rest[0] === 'create' && method === 'POST')
        return { kind: 'volume-create', operation: 'Volume Create' };
      if (n === 1 && rest[0] === 'prune') return { kind: 'unsupported', message: UCP_STYLE('volume prune') };
      if (n === 1 || n === 2) {
        const ref = n === 2 ? { node: rest[0], name: rest[1] } : { name: rest[0] };
        if (method === 'GET') return { kind: 'volume', ...ref, operation: 'Volume View' };
        if (method === 'DELETE') return { kind: 'volume', ...ref, operation: 'Volume Delete' };
      }
      return { kind: 'notfound' };
    case 'swarm':
      if (n === 0 && method === 'GET') return { kind: 'swarm', operation: 'Node Update' };
      if (n === 1 && method === 'GET' && rest[0] === 'unlockkey')
        return { kind: 'swarm', operation: 'Node Update' };
      if (n === 1 && method === 'POST' && rest[0] === 'update')
        return { kind: 'swarm', operation: 'Node Update' };
      return { kind: 'unsupported', message: UCP_STYLE(`swarm ${rest[0] ?? 'inspect'}`) };
    case 'auth':
      // docker login: any authenticated caller (nothing changes), as the engine's "Check auth configuration".
      return n === 0 && method === 'POST' ? { kind: 'registry-auth' } : { kind: 'notfound' };
    case 'events':
      return n === 0 && method === 'GET'
        ? { kind: 'events', operation: 'Container View' }
        : { kind: 'notfound' };
    case 'build':
      // The classic builder only: BuildKit's /build/cancel, /build/prune (and /session, /grpc) are not.
      if (n === 0 && method === 'POST') return { kind: 'image-build', operation: 'Image Build' };
      return { kind: 'unsupported', message: UCP_STYLE(`/build/${rest.join('/')}`) };
    case 'commit':
      return { kind: 'unsupported', message: UCP_STYLE('docker commit') };
    case 'plugins':
      return { kind: 'unsupported', message: UCP_STYLE('plugin management') };
    case 'system':
      return { kind: 'unsupported', message: UCP_STYLE(`/system/${rest.join('/')}`) };
    case 'session':
    case 'grpc':
      return { kind: 'unsupported', message: UCP_STYLE(`/${top}`) };
  }
  const type = SWARM_TYPES[top];
  if (!type) return { kind: 'notfound' };
  if (n === 0) {
    return method === 'GET'
      ? { kind: 'swarm-list', type, operation: type === 'Task' ? 'Service View Tasks' : `${type} View` }
      : { kind: 'notfound' };
  }
  if (n === 1 && rest[0] === 'create') {
    if (method !== 'POST' || type === 'Task' || type === 'Node') return { kind: 'notfound' };
    return { kind: 'swarm-create', type, operation: `${type} Create` };
  }
  if (n === 1 && rest[0] === 'prune') return { kind: 'unsupported', message: 'Not supported on UCP' };
  // Node-local networks are "<node>/<name>" (sent unescaped): GET/DELETE with two segments,
  // connect/disconnect with three.
  if (type === 'Network' && ((n === 2 && method !== 'POST') || (n === 3 && method === 'POST'))) {
    const [node, id, action = ''] = rest;
    const operation = swarmObjectOperation(type, method, action);
    return operation ? { kind: 'swarm-object', type, node, id, action, operation } : { kind: 'notfound' };
  }
  const [id, action = ''] = rest;
  if (n > 2) return { kind: 'notfound' };
  const operation = swarmObjectOperation(type, method, action);
  return operation ? { kind: 'swarm-object', type, id, action, operation } : { kind: 'notfound' };
}

function swarmObjectOperation(type: SwarmType, method: string, action: string): string | undefined {
  const own = type === 'Task' ? 'Service' : type;
  if (action === '') {
    if (method === 'GET') return type === 'Task' ? 'Service View Tasks' : `${type} View`;
    if (method === 'DELETE' && type !== 'Task') return `${type} Delete`;
    return undefined;
  }
  if (action === 'update' && method === 'POST' && type !== 'Task' && type !== 'Network')
    return `${type} Update`;
  if (action === 'logs' && method === 'GET' && (type === 'Service' || type === 'Task')) return `${own} Logs`;
  if (type === 'Network' && method === 'POST' && (action === 'connect' || action === 'disconnect'))
    return action === 'connect' ? 'Network Connect' : 'Network Disconnect';
  return undefined;
}

function containerRoute(method: string, rest: string[]): Route {
  const n = rest.length;
  if (n === 0) return { kind: 'notfound' };
  if (n === 1 && rest[0] === 'json' && method === 'GET')
    return { kind: 'containers-list', operation: 'Container View' };
  if (n === 1 && rest[0] === 'create' && method === 'POST')
    return { kind: 'container-create', operation: 'Container Create' };
  if (n === 1 && rest[0] === 'prune') return { kind: 'unsupported', message: UCP_STYLE('container prune') };
  if (method === 'DELETE') {
    if (n === 1) return { kind: 'container', ref: rest[0], action: '', operation: 'Container Delete' };
    if (n === 2)
      return { kind: 'container', node: rest[0], ref: rest[1], action: '', operation: 'Container Delete' };
    return { kind: 'notfound' };
  }
  // The CLI does not escape ids in paths: "<node>/<name>" arrives as two segments.
  const attachWs = n >= 3 && rest[n - 2] === 'attach' && rest[n - 1] === 'ws';
  const action = attachWs ? 'attach/ws' : rest[n - 1];
  const refs = rest.slice(0, attachWs ? n - 2 : n - 1);
  const operation = CONTAINER_ACTIONS[method]?.[action];
  if (!operation || refs.length === 0 || refs.length > 2) return { kind: 'notfound' };
  return refs.length === 2
    ? { kind: 'container', node: refs[0], ref: refs[1], action, operation }
    : { kind: 'container', ref: refs[0], action, operation };
}

function imageRoute(method: string, rest: string[]): Route {
  const n = rest.length;
  if (n === 1 && rest[0] === 'json' && method === 'GET')
    return { kind: 'images-list', operation: 'Image View' };
  if (n === 1 && rest[0] === 'create' && method === 'POST')
    return { kind: 'image-pull', operation: 'Image Pull' };
  if (n === 1 && rest[0] === 'load')
    return method === 'POST' ? { kind: 'image-load', operation: 'Image Load' } : { kind: 'notfound' };
  if (n === 1 && rest[0] === 'get')
    return method === 'GET' ? { kind: 'image-save', operation: 'Image Save' } : { kind: 'notfound' };
  if (n === 1 && rest[0] === 'prune') return { kind: 'unsupported', message: UCP_STYLE('image prune') };
  if (n === 1 && rest[0] === 'search' && method === 'GET')
    return { kind: 'image', name: '', action: 'search', operation: 'Image View' };
  if (n === 0) return { kind: 'notfound' };
  // Image names contain "/" (repo/name:tag): the action is the last segment, DELETE has none.
  if (method === 'DELETE')
    return { kind: 'image', name: rest.join('/'), action: '', operation: 'Image Delete' };
  const action = rest[n - 1];
  const name = rest.slice(0, -1).join('/');
  if (!name) return { kind: 'notfound' };
  const ops: Record<string, string> = {
    'GET json': 'Image View',
    'GET history': 'Image View',
    'POST tag': 'Image Tag',
    'POST push': 'Image Push',
    'GET get': 'Image Save',
  };
  const operation = ops[`${method} ${action}`];
  return operation ? { kind: 'image', name, action, operation } : { kind: 'notfound' };
}

export interface ClassifiedRequest {
  route: Route;
  /** The API version of a `/vX.YY/` prefix, if any. */
  version?: string;
  /** The path without the version prefix. */
  path: string;
}

/**
 * The Docker route of a request, or undefined when the path belongs to UCP's own API. A versioned
 * path is always Docker's; an unversioned one is when its first segment is a Docker resource.
 */
export function classify(method: string, rawPath: string): ClassifiedRequest | undefined {
  const { version, path } = splitVersion(rawPath);
  const segments = path.split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    return version || DOCKER_TOP.has(segments[0] ?? '')
      ? { route: { kind: 'notfound' }, version, path }
      : undefined;
  }
  const upper = method.toUpperCase();
  // Docker's own `POST /auth` (registry login) is not UCP's /auth/login.
  const registryLogin = decoded.length === 1 && decoded[0] === 'auth' && upper === 'POST';
  if (!version && !registryLogin && !DOCKER_TOP.has(decoded[0] ?? '')) return undefined;
  // Dot segments would make the engine's path differ from the one authorized here.
  if (decoded.some((s) => s === '.' || s === '..')) return { route: { kind: 'notfound' }, version, path };
  return { route: route(upper === 'HEAD' && decoded[0] === '_ping' ? 'GET' : upper, decoded), version, path };
}

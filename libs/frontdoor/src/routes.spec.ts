import { ALL_OPERATIONS } from '@orca/rbac';
import { classify, type Route } from './routes.js';

const route = (method: string, path: string): Route | undefined => classify(method, path)?.route;
const operation = (method: string, path: string) => (route(method, path) as { operation?: string }).operation;

describe('classify: Docker path -> route and UCP operation', () => {
  it('leaves UCP API paths to the UCP routes', () => {
    for (const path of [
      '/accounts',
      '/auth/login',
      '/api/clientbundle',
      '/collectionGrants',
      '/id/',
      '/roles',
    ])
      expect(classify('GET', path)).toBeUndefined();
  });

  it('serves /_ping, /version and /info with or without a version prefix', () => {
    expect(classify('HEAD', '/_ping')).toEqual({ route: { kind: 'system', name: '_ping' }, path: '/_ping' });
    expect(classify('GET', '/v1.41/version')).toEqual({
      route: { kind: 'system', name: 'version' },
      version: '1.41',
      path: '/version',
    });
    expect(route('GET', '/v1.30/info')).toEqual({ kind: 'system', name: 'info' });
  });

  it.each([
    ['GET', '/v1.41/containers/json', 'Container View'],
    ['POST', '/v1.41/containers/create', 'Container Create'],
    ['GET', '/v1.41/containers/abc/json', 'Container View'],
    ['GET', '/v1.41/containers/abc/logs', 'Container Logs'],
    ['POST', '/v1.41/containers/abc/start', 'Container Start'],
    ['POST', '/v1.41/containers/abc/kill', 'Container Kill'],
    ['POST', '/v1.41/containers/abc/attach', 'Container Attach'],
    ['POST', '/v1.41/containers/abc/exec', 'Container Exec'],
    ['POST', '/v1.41/containers/abc/wait', 'Container View'],
    ['DELETE', '/v1.41/containers/abc', 'Container Delete'],
    ['POST', '/v1.41/exec/e1/start', 'Container Exec'],
    ['GET', '/v1.41/exec/e1/json', 'Container View'],
    ['GET', '/v1.41/services', 'Service View'],
    ['POST', '/v1.41/services/create', 'Service Create'],
    ['POST', '/v1.41/services/web/update', 'Service Update'],
    ['DELETE', '/v1.41/services/web', 'Service Delete'],
    ['GET', '/v1.41/services/web/logs', 'Service Logs'],
    ['GET', '/v1.41/tasks', 'Service View Tasks'],
    ['GET', '/v1.41/tasks/t1/logs', 'Service Logs'],
    ['GET', '/v1.41/nodes', 'Node View'],
    ['POST', '/v1.41/nodes/n1/update', 'Node Update'],
    ['POST', '/v1.41/secrets/create', 'Secret Create'],
    ['DELETE', '/v1.41/secrets/s1', 'Secret Delete'],
    ['GET', '/v1.41/configs', 'Config View'],
    ['POST', '/v1.41/networks/create', 'Network Create'],
    ['POST', '/v1.41/networks/n1/connect', 'Network Connect'],
    ['GET', '/v1.41/volumes', 'Volume View'],
    ['POST', '/v1.41/volumes/create', 'Volume Create'],
    ['GET', '/v1.41/images/json', 'Image View'],
    ['POST', '/v1.41/images/create', 'Image Pull'],
    ['POST', '/v1.41/images/orca/busybox:1/tag', 'Image Tag'],
    ['GET', '/v1.41/distribution/orca/busybox:1/json', 'Image View'],
    ['GET', '/v1.41/swarm', 'Node Update'],
  ])('%s %s needs %s, an operation of the catalogue', (method, path, expected) => {
    expect(operation(method, path)).toBe(expected);
    expect(ALL_OPERATIONS.has(expected)).toBe(true);
  });

  it('reads node-qualified names, which the CLI sends unescaped', () => {
    expect(route('GET', '/v1.41/containers/node-1/web/logs')).toEqual({
      kind: 'container',
      node: 'node-1',
      ref: 'web',
      action: 'logs',
      operation: 'Container Logs',
    });
    expect(route('DELETE', '/v1.41/containers/node-1/web')).toMatchObject({ node: 'node-1', ref: 'web' });
    expect(route('GET', '/v1.41/containers/abc/attach/ws')).toMatchObject({
      ref: 'abc',
      action: 'attach/ws',
    });
    expect(route('GET', '/v1.41/networks/node-1/web-net')).toEqual({
      kind: 'swarm-object',
      type: 'Network',
      node: 'node-1',
      id: 'web-net',
      action: '',
      operation: 'Network View',
    });
    expect(route('DELETE', '/v1.41/networks/node-1/web-net')).toMatchObject({
      node: 'node-1',
      id: 'web-net',
      operation: 'Network Delete',
    });
    expect(route('POST', '/v1.41/networks/node-1/web-net/connect')).toMatchObject({
      node: 'node-1',
      id: 'web-net',
      action: 'connect',
      operation: 'Network Connect',
    });
    // Two segments with POST are an id and its action, as the engine has them.
    expect(route('POST', '/v1.41/networks/web-net/disconnect')).toEqual({
      kind: 'swarm-object',
      type: 'Network',
      id: 'web-net',
      action: 'disconnect',
      operation: 'Network Disconnect',
    });
    expect(route('POST', '/v1.41/networks/node-1/web-net/update')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/networks/a/b/c')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/secrets/node-1/s')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/volumes/node-1/data')).toMatchObject({
      kind: 'volume',
      node: 'node-1',
      name: 'data',
    });
  });

  it('keeps slashes of image names', () => {
    expect(route('GET', '/v1.41/images/orca/busybox:1/json')).toMatchObject({
      name: 'orca/busybox:1',
      action: 'json',
    });
    expect(route('DELETE', '/v1.41/images/orca/busybox:1')).toMatchObject({
      name: 'orca/busybox:1',
      action: '',
    });
  });

  it('answers unsupported and unknown calls', () => {
    expect(route('POST', '/v1.41/build')).toEqual({ kind: 'image-build', operation: 'Image Build' });
    expect(route('POST', '/v1.41/build/prune')).toEqual({
      kind: 'unsupported',
      message: '/build/prune is not supported through the UCP API',
    });
    expect(route('POST', '/v1.41/session')).toMatchObject({ kind: 'unsupported' });
    expect(route('POST', '/v1.41/images/load')).toEqual({ kind: 'image-load', operation: 'Image Load' });
    expect(route('GET', '/v1.41/images/get')).toEqual({ kind: 'image-save', operation: 'Image Save' });
    expect(route('GET', '/v1.41/images/orca/busybox:1/get')).toMatchObject({
      kind: 'image',
      name: 'orca/busybox:1',
      operation: 'Image Save',
    });
    expect(route('GET', '/v1.41/images/load')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/plugins')).toMatchObject({ kind: 'unsupported' });
    expect(route('POST', '/v1.41/networks/prune')).toEqual({
      kind: 'unsupported',
      message: 'Not supported on UCP',
    });
    expect(route('POST', '/v1.41/swarm/leave')).toMatchObject({ kind: 'unsupported' });
    expect(route('GET', '/v1.41/nope')).toEqual({ kind: 'notfound' });
    expect(route('PUT', '/v1.41/containers/abc/start')).toEqual({ kind: 'notfound' });
    expect(route('POST', '/v1.41/tasks/create')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/containers/a/b/c/json')).toEqual({ kind: 'notfound' });
    expect(route('GET', '/v1.41/containers/%E0%A4%A/json')).toEqual({ kind: 'notfound' });
  });
});

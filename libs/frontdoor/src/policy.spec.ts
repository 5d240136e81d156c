import { BUILTIN_COLLECTIONS } from '@orca/rbac';
import {
  anonymousVolumeMounts,
  cleanPath,
  namedVolumes,
  collectionOf,
  containerHostOperations,
  labelsField,
  requestedCollection,
  serviceHostOperations,
  withCollectionLabels,
} from './policy.js';

describe('collections of Docker resources', () => {
  it('reads the access label; unlabelled resources are in /', () => {
    expect(collectionOf({ 'com.docker.ucp.access.label': '/Shared/dev/' })).toBe('/Shared/dev');
    expect(collectionOf({})).toBe('/');
    expect(collectionOf(null)).toBe('/');
    expect(collectionOf({ 'com.docker.ucp.access.label': 'relative' })).toBe('/');
  });

  it('checks Labels and the requested collection', () => {
    expect(labelsField(undefined, 'Labels')).toEqual({});
    expect(() => labelsField(5, 'Labels')).toThrow('Labels must be an object of strings');
    expect(() => labelsField({ a: 1 }, 'Labels')).toThrow('Labels["a"] must be a string');
    expect(requestedCollection({ 'com.docker.ucp.access.label': '/Shared/prod' })).toBe('/Shared/prod');
    expect(requestedCollection({})).toBeUndefined();
    expect(() => requestedCollection({ 'com.docker.ucp.access.label': 'prod' })).toThrow(/collection path/);
  });

  it('injects the collection labels and the owner, replacing stale collection labels', () => {
    const shared = BUILTIN_COLLECTIONS.find((c) => c.id === 'shared')!;
    expect(
      withCollectionLabels({ app: 'web', 'com.docker.ucp.collection.old': 'true' }, shared, 'alice'),
    ).toEqual({
      app: 'web',
      'com.docker.ucp.access.label': '/Shared',
      'com.docker.ucp.collection': 'shared',
      'com.docker.ucp.collection.root': 'true',
      'com.docker.ucp.collection.swarm': 'true',
      'com.docker.ucp.collection.shared': 'true',
      'com.docker.ucp.access.owner': 'alice',
    });
  });
});

describe("Restricted Control's limits", () => {
  it('names the node-affecting operations a container needs', () => {
    expect(containerHostOperations({ NetworkMode: 'none', Binds: ['data:/data'] })).toEqual([]);
    expect(containerHostOperations(undefined)).toEqual([]);
    expect(containerHostOperations({ Binds: ['/etc:/host-etc:ro'] })).toEqual(['Container Bind Mount']);
    // A one-part bind is an anonymous volume, not a host path.
    expect(containerHostOperations({ Binds: ['/data'] })).toEqual([]);
    expect(containerHostOperations({ Mounts: [{ Type: 'bind', Source: '/', Target: '/h' }] })).toEqual([
      'Container Bind Mount',
    ]);
    expect(containerHostOperations({ Privileged: true })).toEqual(['Container Privileged']);
    expect(containerHostOperations({ Devices: [{ PathOnHost: '/dev/kvm' }] })).toEqual([
      'Container Privileged',
    ]);
    expect(containerHostOperations({ CapAdd: ['NET_ADMIN'] })).toEqual(['Container Capabilities']);
    for (const mode of ['NetworkMode', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode'])
      expect(containerHostOperations({ [mode]: 'host' })).toEqual(['Container Host Network']);
    expect(() => containerHostOperations({ Binds: 'x' })).toThrow(/Binds/);
    expect(() => containerHostOperations('x')).toThrow(/HostConfig/);
  });

  it('names those a service needs', () => {
    expect(serviceHostOperations({ ContainerSpec: { Image: 'x' } })).toEqual([]);
    expect(
      serviceHostOperations({
        ContainerSpec: { Mounts: [{ Type: 'bind' }], CapabilityAdd: ['SYS_ADMIN'] },
        Networks: [{ Target: 'host' }],
      }),
    ).toEqual(['Container Bind Mount', 'Container Capabilities', 'Container Host Network']);
  });
});

describe('named volumes', () => {
  it('lists the named volumes a container mounts, not host paths', () => {
    expect(
      namedVolumes({
        Binds: ['data:/data:ro', '/etc:/host-etc'],
        Mounts: [
          { Type: 'volume', Source: 'cache', Target: '/cache' },
          { Type: 'bind', Source: '/tmp', Target: '/tmp' },
          { Type: 'volume', Target: '/anonymous' },
        ],
      }),
    ).toEqual(['data', 'cache']);
    expect(namedVolumes(undefined)).toEqual([]);
  });
});

describe('anonymous volumes', () => {
  it('cleans container paths as the engine compares them', () => {
    expect(cleanPath('/data/')).toBe('/data');
    expect(cleanPath('//a/./b/../c')).toBe('/a/c');
    expect(cleanPath('/')).toBe('/');
  });

  it('turns each anonymous volume into a mount without a source, skipping filled destinations', () => {
    const body: Record<string, unknown> = {
      Image: 'app',
      Volumes: { '/data': {}, '/bound/': {}, '/tmp': {} },
      HostConfig: {
        Binds: ['/scratch', 'named:/bound', '/etc:/host-etc:ro'],
        Mounts: [
          { Type: 'volume', Target: '/m', VolumeOptions: { Labels: { tier: 'db' } } },
          { Type: 'volume', Source: 'cache', Target: '/cache' },
        ],
        Tmpfs: { '/tmp': '' },
        VolumeDriver: 'local',
      },
    };
    const mounts = anonymousVolumeMounts(
      body,
      ['/data', '/image-vol', '/inherited', '/cache'],
      ['/inherited/'],
    );
    // The --mount one, then -v /scratch (a one-part bind), /data, and the image's /image-vol.
    expect(mounts.map((m) => m.Target)).toEqual(['/m', '/scratch', '/data', '/image-vol']);
    const hostConfig = body.HostConfig as { Binds: string[]; Mounts: Record<string, unknown>[] };
    expect(hostConfig.Binds).toEqual(['named:/bound', '/etc:/host-etc:ro']);
    expect(hostConfig.Mounts).toHaveLength(5);
    expect(hostConfig.Mounts[0]).toBe(mounts[0]);
    expect(hostConfig.Mounts[2]).toEqual({
      Type: 'volume',
      Target: '/scratch',
      VolumeOptions: { DriverConfig: { Name: 'local' } },
    });
  });

  it('leaves a create without anonymous volumes alone', () => {
    const body = { Image: 'app', HostConfig: { Binds: ['data:/data'] } };
    expect(anonymousVolumeMounts(body, [], [])).toEqual([]);
    expect(body).toEqual({ Image: 'app', HostConfig: { Binds: ['data:/data'] } });
    const bare: Record<string, unknown> = { Image: 'app', Volumes: { '/v': {} } };
    expect(anonymousVolumeMounts(bare, [], [])).toHaveLength(1);
    expect(bare.HostConfig).toEqual({ Mounts: [{ Type: 'volume', Target: '/v', VolumeOptions: {} }] });
  });

  it('refuses malformed mounts', () => {
    expect(() => anonymousVolumeMounts({ HostConfig: { Mounts: 'x' } }, [], [])).toThrow(/Mounts/);
    expect(() =>
      anonymousVolumeMounts({ HostConfig: { Mounts: [{ Type: 'volume', VolumeOptions: 3 }] } }, [], []),
    ).toThrow('HostConfig.Mounts[0].VolumeOptions must be an object');
    expect(() => anonymousVolumeMounts({ HostConfig: 7 }, [], [])).toThrow(/HostConfig/);
  });
});

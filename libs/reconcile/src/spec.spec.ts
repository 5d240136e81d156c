import { canonicalJson, componentLabels, parseComponentSpec, specHash, type ComponentSpec } from './spec.js';

const proxy: ComponentSpec = {
  name: 'ucp-proxy',
  image: 'orca/orca:1',
  command: ['proxy', '--listen', '127.0.0.1:12376'],
  env: { A: '1', B: '2' },
  mounts: [{ type: 'volume', source: 'ucp-node-certs', target: '/certs', readOnly: true }],
  ports: [],
  network: 'host',
  labels: { x: 'y' },
  restartPolicy: 'always',
};

describe('specHash', () => {
  it('is a sha256 hex of canonical JSON, independent of key order', () => {
    const reordered = JSON.parse(JSON.stringify({ ...proxy, env: { B: '2', A: '1' } })) as ComponentSpec;
    expect(specHash(proxy)).toMatch(/^[0-9a-f]{64}$/);
    expect(specHash(reordered)).toBe(specHash(proxy));
    expect(canonicalJson({ b: 1, a: { d: 1, c: undefined } })).toBe('{"a":{"d":1},"b":1}');
  });

  it('changes when any field changes, including command order', () => {
    expect(specHash({ ...proxy, command: [...proxy.command, '--debug'] })).not.toBe(specHash(proxy));
    expect(specHash({ ...proxy, image: 'orca/orca:2' })).not.toBe(specHash(proxy));
    expect(specHash({ ...proxy, command: [...proxy.command].reverse() })).not.toBe(specHash(proxy));
    expect(specHash({ ...proxy, user: undefined })).toBe(specHash(proxy));
    expect(specHash({ ...proxy, user: 'nobody' })).not.toBe(specHash(proxy));
  });

  it('labels carry the managed, component, node and hash labels over the spec labels', () => {
    const labels = componentLabels(
      { ...proxy, labels: { 'com.docker.ucp.orca.managed': 'no', x: 'y' } },
      'n1',
    );
    expect(labels).toMatchObject({
      x: 'y',
      'com.docker.ucp.orca.managed': 'true',
      'com.docker.ucp.orca.component': 'ucp-proxy',
      'com.docker.ucp.orca.node': 'n1',
    });
    expect(labels['com.docker.ucp.orca.spec-hash']).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('parseComponentSpec', () => {
  it('fills defaults and keeps the hash of an equivalent full spec', () => {
    const parsed = parseComponentSpec({ name: 'ucp-kv', image: 'orca/etcd:1', command: ['etcd'] });
    expect(parsed).toEqual({
      name: 'ucp-kv',
      image: 'orca/etcd:1',
      command: ['etcd'],
      env: {},
      mounts: [],
      ports: [],
      network: 'host',
      labels: {},
      restartPolicy: 'unless-stopped',
    });
    expect(parseComponentSpec(JSON.parse(JSON.stringify(proxy)))).toEqual(proxy);
  });

  it('rejects malformed input with a readable message', () => {
    expect(() => parseComponentSpec({ image: 'x' })).toThrow('"name" must be a string');
    expect(() => parseComponentSpec({ name: 'a b', image: 'x' })).toThrow('invalid name');
    expect(() => parseComponentSpec({ name: 'a', image: 'x', command: 'sh' })).toThrow('array of strings');
    expect(() => parseComponentSpec({ name: 'a', image: 'x', network: 'bridge' })).toThrow('host or none');
    expect(() => parseComponentSpec({ name: 'a', image: 'x', env: { A: 1 } })).toThrow(
      '"env.A" must be a string',
    );
  });
});

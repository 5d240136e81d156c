import { mergeNetworkLists, pickNetwork, splitNodeName } from './networks.js';

const manager = { name: 'm1' };
const worker = { name: 'w1' };
const net = (Id: string, Name: string, Scope: string) => ({ Id, Name, Scope });

describe('node-local networks', () => {
  it('reads "<node>/<name>"', () => {
    expect(splitNodeName('w1/web', 'network')).toEqual({ node: 'w1', name: 'web' });
    expect(splitNodeName('web', 'network')).toEqual({ name: 'web' });
    expect(() => splitNodeName('w1/', 'network')).toThrow('invalid network name "w1/"');
    expect(() => splitNodeName('a/b/c', 'network')).toThrow(/invalid network name/);
  });

  it('lists swarm networks once, from the manager, and local ones per node with its name', () => {
    const merged = mergeNetworkLists(manager, [
      { node: manager, body: [net('o1', 'ingress', 'swarm'), net('b1', 'bridge', 'local')] },
      {
        node: worker,
        body: [
          net('o1', 'ingress', 'swarm'),
          net('o2', 'only-worker', 'swarm'),
          net('b2', 'bridge', 'local'),
        ],
      },
      { node: worker, body: [net('b2', 'bridge', 'local')] },
      { node: worker, body: { message: 'not a list' } },
    ]);
    expect(merged.map(({ node, network }) => `${node.name} ${String(network.Name)}`)).toEqual([
      'm1 ingress',
      'm1 m1/bridge',
      'w1 w1/bridge',
    ]);
  });

  it('picks what an unqualified reference means, or says it is ambiguous', () => {
    const bridges = [
      { node: manager, network: net('b1', 'bridge', 'local') },
      { node: worker, network: net('b2', 'bridge', 'local') },
    ];
    expect(pickNetwork('bridge', bridges)).toBe('ambiguous');
    expect(pickNetwork('b2', bridges)).toBe(bridges[1]);
    expect(pickNetwork('bridge', [bridges[1]])).toBe(bridges[1]);
    expect(pickNetwork('bridge', [])).toBeUndefined();
    // The swarm network of a name wins over local ones (listed as "<node>/<name>").
    const overlay = { node: manager, network: net('o1', 'web', 'swarm') };
    const sameOnWorker = { node: worker, network: net('o1', 'web', 'swarm') };
    const localWeb = { node: worker, network: net('l1', 'web', 'local') };
    expect(pickNetwork('web', [localWeb, sameOnWorker, overlay])).toBe(sameOnWorker);
    expect(
      pickNetwork('web', [localWeb, { node: manager, network: net('o2', 'web', 'swarm') }, overlay]),
    ).toBe('ambiguous');
  });
});

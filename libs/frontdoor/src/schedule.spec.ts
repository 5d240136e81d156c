import { DockerApiError } from './errors.js';
import { extractConstraints, parseConstraint, satisfies, spread, type SchedulableNode } from './schedule.js';

const node = (name: string, extra: Partial<SchedulableNode> = {}): SchedulableNode => ({
  id: `id-${name}`,
  name,
  hostname: name,
  role: 'worker',
  labels: {},
  ...extra,
});

describe('classic Swarm scheduling', () => {
  it('takes constraint: entries out of the environment and reads the constraints label', () => {
    const { constraints, env } = extractConstraints(['A=1', 'constraint:node==n2', 'constraint:disk!=hdd'], {
      'com.docker.swarm.constraints': '["region==eu"]',
    });
    expect(env).toEqual(['A=1']);
    expect(constraints).toEqual([
      { key: 'node', equal: true, value: 'n2' },
      { key: 'disk', equal: false, value: 'hdd' },
      { key: 'region', equal: true, value: 'eu' },
    ]);
    expect(extractConstraints(undefined, {})).toEqual({ constraints: [], env: undefined });
  });

  it('refuses malformed constraints with a 400', () => {
    expect(() => parseConstraint('node=n1')).toThrow(DockerApiError);
    expect(() => extractConstraints('A=1', {})).toThrow('Env must be an array of strings');
    expect(() => extractConstraints([], { 'com.docker.swarm.constraints': 'node==x' })).toThrow(/JSON array/);
    try {
      parseConstraint('nonsense');
    } catch (error) {
      expect((error as DockerApiError).status).toBe(400);
    }
  });

  it('matches names, ids, roles, labels, globs and regular expressions', () => {
    const n = node('vm-127.0.0.22', { engineNodeId: 'swarm1', labels: { disk: 'ssd' }, hostname: 'vm' });
    expect(satisfies(n, parseConstraint('node==vm-127.0.0.22'))).toBe(true);
    expect(satisfies(n, parseConstraint('node==vm'))).toBe(true);
    expect(satisfies(n, parseConstraint('node==swarm1'))).toBe(true);
    expect(satisfies(n, parseConstraint('node!=vm-127.0.0.22'))).toBe(false);
    expect(satisfies(n, parseConstraint('node==vm-*'))).toBe(true);
    expect(satisfies(n, parseConstraint('node==/^vm-127\\.0\\.0\\.2\\d$/'))).toBe(true);
    expect(satisfies(n, parseConstraint('disk==ssd'))).toBe(true);
    expect(satisfies(n, parseConstraint('node.labels.disk==hdd'))).toBe(false);
    expect(satisfies(n, parseConstraint('missing!=x'))).toBe(true);
    expect(satisfies(n, parseConstraint('node.role==worker'))).toBe(true);
  });

  it('spreads onto the node with the fewest containers, ties by name', () => {
    const nodes = [node('c'), node('a'), node('b')];
    const counts: Record<string, number> = { a: 2, b: 1, c: 1 };
    expect(spread(nodes, [], (n) => counts[n.name])?.name).toBe('b');
    expect(spread(nodes, [parseConstraint('node!=b')], (n) => counts[n.name])?.name).toBe('c');
    expect(spread(nodes, [parseConstraint('node==zzz')], () => 0)).toBeUndefined();
  });
});

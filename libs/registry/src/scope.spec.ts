import { formatScope, grants, intersectActions, parseScopes } from './scope.js';

describe('scopes', () => {
  it('parses several scopes per parameter and merges repeats', () => {
    expect(
      parseScopes([
        'repository:a/b:pull repository:c/d:pull,push',
        'repository:a/b:push',
        'registry:catalog:*',
      ]),
    ).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      { type: 'repository', name: 'c/d', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('drops entries outside the grammar and strips a resource class', () => {
    expect(parseScopes(['nonsense', 'repository::pull', 'repository:a/b:', 'Bad:a/b:pull'])).toEqual([]);
    expect(parseScopes(['repository(plugin):a/b:pull'])).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull'] },
    ]);
  });

  it('keeps a host:port inside the name', () => {
    expect(parseScopes(['repository:host:5000/a/b:pull'])).toEqual([
      { type: 'repository', name: 'host:5000/a/b', actions: ['pull'] },
    ]);
  });

  it('grants the intersection of what was asked and what is allowed', () => {
    expect(intersectActions(['pull', 'push'], ['pull'])).toEqual(['pull']);
    expect(intersectActions(['pull', 'push', 'delete', '*'], ['pull', 'push', 'delete'])).toEqual([
      'pull',
      'push',
      'delete',
    ]);
    expect(intersectActions(['*'], ['pull', 'push', 'delete', '*'])).toEqual(['*']);
    expect(intersectActions(['push'], [])).toEqual([]);
  });

  it('checks one action against granted access, * covering all', () => {
    const access = [
      { type: 'repository', name: 'a/b', actions: ['pull'] },
      { type: 'repository', name: 'c/d', actions: ['*'] },
    ];
    expect(grants(access, 'repository', 'a/b', 'pull')).toBe(true);
    expect(grants(access, 'repository', 'a/b', 'push')).toBe(false);
    expect(grants(access, 'repository', 'c/d', 'delete')).toBe(true);
    expect(grants(access, 'repository', 'a/bb', 'pull')).toBe(false);
    expect(formatScope('repository', 'a/b', ['pull', 'push'])).toBe('repository:a/b:pull,push');
  });
});

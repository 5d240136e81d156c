// Token scopes (distribution docs/spec/auth/scope.md): `type[(class)]:name:action[,action]*`,
// several per `scope` parameter separated by spaces. The granted access is the intersection of
// what was asked and what the subject may do; a partial grant is not an error.

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

const TYPE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;

/** Parses scope strings; entries that do not follow the grammar are dropped. */
export function parseScopes(values: readonly string[]): AccessEntry[] {
  const entries: AccessEntry[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const type = item.slice(0, first);
      const name = item.slice(first + 1, last);
      const actions = item
        .slice(last + 1)
        .split(',')
        .filter((a) => /^[a-z*]+$/.test(a));
      if (!TYPE.test(type) || name === '' || actions.length === 0) continue;
      entries.push({ type: type.replace(/\(.*\)$/, ''), name, actions: [...new Set(actions)] });
    }
  }
  return mergeEntries(entries);
}

/** One entry per (type, name), actions united. */
export function mergeEntries(entries: readonly AccessEntry[]): AccessEntry[] {
  const merged = new Map<string, AccessEntry>();
  for (const e of entries) {
    const key = `${e.type}\u0000${e.name}`;
    const existing = merged.get(key);
    if (existing) existing.actions = [...new Set([...existing.actions, ...e.actions])];
    else merged.set(key, { type: e.type, name: e.name, actions: [...e.actions] });
  }
  return [...merged.values()];
}

/** Requested actions that `allowed` holds; `*` asked for is granted only when `*` is allowed. */
export function intersectActions(requested: readonly string[], allowed: readonly string[]): string[] {
  const have = new Set(allowed);
  return requested.filter((action) => have.has(action));
}

/** Whether granted access covers one action on one resource. */
export function grants(access: readonly AccessEntry[], type: string, name: string, action: string): boolean {
  return access.some(
    (e) => e.type === type && e.name === name && (e.actions.includes(action) || e.actions.includes('*')),
  );
}

export function formatScope(type: string, name: string, actions: readonly string[]): string {
  return `${type}:${name}:${actions.join(',')}`;
}

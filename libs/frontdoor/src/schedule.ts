// Classic Swarm scheduling for `docker run` through UCP: constraints from the environment
// (`-e constraint:node==name`) or the com.docker.swarm.constraints label, then spread (the node with
// the fewest containers; ties by name).
import { badRequest } from './errors.js';

export interface Constraint {
  key: string;
  equal: boolean;
  value: string;
}

export interface SchedulableNode {
  /** Orca node id. */
  id: string;
  name: string;
  hostname: string;
  engineNodeId?: string;
  role: 'manager' | 'worker';
  /** Swarm node labels (engine labels in classic Swarm). */
  labels: Record<string, string>;
}

export const CONSTRAINTS_LABEL = 'com.docker.swarm.constraints';
const EXPRESSION = /^([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.+)$/;

export function parseConstraint(text: string): Constraint {
  const match = EXPRESSION.exec(text.trim());
  if (!match) throw badRequest(`malformed constraint "${text}": expected key==value or key!=value`);
  return { key: match[1], equal: match[2] === '==', value: match[3].trim() };
}

/**
 * Constraints of a container create: `constraint:` entries of Env (removed from the env the
 * container gets) and the JSON array in the com.docker.swarm.constraints label.
 */
export function extractConstraints(
  env: unknown,
  labels: Record<string, string>,
): { constraints: Constraint[]; env: string[] | undefined } {
  if (env !== undefined && env !== null && (!Array.isArray(env) || env.some((e) => typeof e !== 'string')))
    throw badRequest('Env must be an array of strings');
  const constraints: Constraint[] = [];
  const kept: string[] = [];
  for (const entry of (env as string[] | null | undefined) ?? []) {
    if (entry.startsWith('constraint:')) constraints.push(parseConstraint(entry.slice('constraint:'.length)));
    else kept.push(entry);
  }
  const raw = labels[CONSTRAINTS_LABEL];
  if (raw !== undefined) {
    let list: unknown;
    try {
      list = JSON.parse(raw);
    } catch {
      throw badRequest(`${CONSTRAINTS_LABEL} must be a JSON array of strings such as ["node==node1"]`);
    }
    if (!Array.isArray(list) || list.some((c) => typeof c !== 'string'))
      throw badRequest(`${CONSTRAINTS_LABEL} must be a JSON array of strings`);
    for (const c of list as string[]) constraints.push(parseConstraint(c));
  }
  return { constraints, env: env === undefined || env === null ? (env as undefined) : kept };
}

function glob(pattern: string, value: string): boolean {
  if (pattern.length > 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
    try {
      return new RegExp(pattern.slice(1, -1)).test(value);
    } catch {
      throw badRequest(`malformed regular expression in constraint: ${pattern}`);
    }
  }
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return re.test(value);
}

function nodeValues(node: SchedulableNode, key: string): string[] | undefined {
  switch (key) {
    case 'node':
    case 'node.name':
      return [node.name, node.hostname, node.id, ...(node.engineNodeId ? [node.engineNodeId] : [])];
    case 'node.id':
      return [node.id, ...(node.engineNodeId ? [node.engineNodeId] : [])];
    case 'node.hostname':
      return [node.hostname];
    case 'node.role':
    case 'role':
      return [node.role];
  }
  const label = key.replace(/^(node|engine)\.labels\./, '');
  return label in node.labels ? [node.labels[label]] : undefined;
}

export function satisfies(node: SchedulableNode, constraint: Constraint): boolean {
  const values = nodeValues(node, constraint.key);
  const hit = (values ?? []).some((v) => glob(constraint.value, v));
  return constraint.equal ? hit : !hit;
}

/** The node to run on: among those meeting every constraint, the one with the fewest containers. */
export function spread<T extends SchedulableNode>(
  nodes: readonly T[],
  constraints: readonly Constraint[],
  containerCount: (node: T) => number,
): T | undefined {
  const fit = nodes.filter((n) => constraints.every((c) => satisfies(n, c)));
  return [...fit].sort((a, b) => containerCount(a) - containerCount(b) || a.name.localeCompare(b.name))[0];
}

export function describeConstraints(constraints: readonly Constraint[]): string {
  return `[${constraints.map((c) => `${c.key}${c.equal ? '==' : '!='}${c.value}`).join(', ')}]`;
}

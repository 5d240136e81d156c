import { type Engine, EngineError } from '@orca/engine';
import type { RunningComponent, Runtime } from './runtime.js';
import {
  LABEL_COMPONENT,
  LABEL_MANAGED,
  LABEL_NODE,
  LABEL_SPEC_HASH,
  componentLabels,
  type ComponentSpec,
} from './spec.js';

/** Components as containers on one node's engine, named after the component (`ucp-proxy`). */
export class DockerRuntime implements Runtime {
  constructor(private readonly engine: Engine) {}

  async list(): Promise<RunningComponent[]> {
    const containers = await this.engine.listContainers({ all: true, labels: { [LABEL_MANAGED]: 'true' } });
    return containers.map((c) => ({
      id: c.id,
      name: c.labels[LABEL_COMPONENT] ?? c.names[0] ?? c.id,
      nodeId: c.labels[LABEL_NODE] ?? '',
      specHash: c.labels[LABEL_SPEC_HASH] ?? '',
      running: c.state === 'running',
    }));
  }

  async start(spec: ComponentSpec, nodeId: string): Promise<string> {
    const { id } = await this.engine.createAndStartContainer({
      name: spec.name,
      image: spec.image,
      // Like `docker run IMAGE COMMAND...`: the command follows the image's entrypoint.
      cmd: spec.command.length > 0 ? spec.command : undefined,
      env: spec.env,
      labels: componentLabels(spec, nodeId),
      mounts: spec.mounts.map((m) => ({
        type: m.type,
        source: m.source,
        target: m.target,
        readOnly: m.readOnly,
      })),
      // No port bindings: components use host networking (DESIGN.md), so `ports` only documents them.
      networkMode: spec.network,
      restartPolicy: spec.restartPolicy,
      user: spec.user,
    });
    return id;
  }

  async remove(id: string): Promise<void> {
    try {
      await this.engine.removeContainer(id, { force: true });
    } catch (err) {
      if (err instanceof EngineError && err.notFound) return;
      throw err;
    }
  }
}

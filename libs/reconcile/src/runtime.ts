import type { ComponentSpec } from './spec.js';

/** Something orca started for a component, as a runtime reports it. */
export interface RunningComponent {
  /** Runtime-specific handle for remove(): a container id, or a process state key. */
  id: string;
  /** Component name (LABEL_COMPONENT). */
  name: string;
  /** Node it was started for (LABEL_NODE). */
  nodeId: string;
  /** LABEL_SPEC_HASH at start time. */
  specHash: string;
  running: boolean;
}

/** Where components run: containers on the node's engine, or child processes for `npm start`. */
export interface Runtime {
  /** Only orca-managed things (with LABEL_MANAGED=true), running or not. */
  list(): Promise<RunningComponent[]>;
  /** Starts the component for the node, labelled with componentLabels(); returns its id. */
  start(spec: ComponentSpec, nodeId: string): Promise<string>;
  /** Stops and removes; a thing that is already gone is not an error. */
  remove(id: string): Promise<void>;
}

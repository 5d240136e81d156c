// Engine API shapes in orca's own terms, so nothing outside libs/engine depends on dockerode's types.

export type EngineConnection =
  | { socketPath: string; timeoutMs?: number }
  | {
      host: string;
      port: number;
      tls: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer };
      timeoutMs?: number;
    };

export interface EngineVersion {
  version: string;
  apiVersion: string;
  minApiVersion?: string;
  os: string;
  arch: string;
  kernelVersion?: string;
  goVersion?: string;
  gitCommit?: string;
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked' | string;

export interface EngineInfo {
  id: string;
  name: string;
  serverVersion: string;
  operatingSystem: string;
  architecture: string;
  ncpu: number;
  memTotal: number;
  containers: number;
  containersRunning: number;
  images: number;
  dockerRootDir: string;
  labels: string[];
  /** Same as swarm.nodeId ('' outside a swarm). */
  swarmNodeId: string;
  /** Same as swarm.nodeAddr: the address this engine advertises in its swarm. */
  nodeAddr: string;
  swarm: {
    nodeId: string;
    nodeAddr: string;
    localNodeState: LocalNodeState;
    controlAvailable: boolean;
    clusterId?: string;
    managers?: number;
    nodes?: number;
    error?: string;
  };
}

export interface MountSpec {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol?: 'tcp' | 'udp';
}

export type RestartPolicy = 'always' | 'unless-stopped' | 'on-failure' | 'no';

export interface ContainerSpec {
  name?: string;
  image: string;
  /** Arguments after the image's entrypoint (Docker's Cmd). */
  cmd?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
  mounts?: MountSpec[];
  ports?: PortBinding[];
  /** 'host' or 'none' for orca's own components (DESIGN.md network rule). */
  networkMode?: string;
  restartPolicy?: RestartPolicy;
  user?: string;
  workingDir?: string;
}

export interface ContainerSummary {
  id: string;
  /** Without the leading slash. */
  names: string[];
  image: string;
  labels: Record<string, string>;
  /** created, running, exited, ... */
  state: string;
  status: string;
}

export interface ContainerDetails {
  id: string;
  name: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  running: boolean;
  status: string;
  exitCode: number;
  pid: number;
  restartCount: number;
  startedAt?: string;
  finishedAt?: string;
  networkMode: string;
  cmd: string[];
  env: string[];
}

export interface ListContainersOptions {
  all?: boolean;
  /** `true` matches the presence of a label, a string its exact value. */
  labels?: Record<string, string | true>;
  name?: string;
}

export interface LogsOptions {
  stdout?: boolean;
  stderr?: boolean;
  tail?: number;
}

export interface BuildOptions {
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** Called with each line of build output. */
  onOutput?: (line: string) => void;
}

export interface SwarmInitOptions {
  advertiseAddr: string;
  listenAddr: string;
  dataPathAddr?: string;
  forceNewCluster?: boolean;
}

export interface SwarmJoinOptions {
  remoteAddrs: string[];
  joinToken: string;
  advertiseAddr: string;
  listenAddr: string;
  dataPathAddr?: string;
}

export interface SwarmInfo {
  clusterId: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  joinTokens: { worker: string; manager: string };
  /** PEM of the cluster's root CA certificate. */
  trustRoot?: string;
  rootRotationInProgress: boolean;
}

export interface NodeInfo {
  id: string;
  version: number;
  hostname: string;
  role: 'manager' | 'worker';
  availability: 'active' | 'pause' | 'drain' | string;
  /** ready, down, unknown, disconnected */
  state: string;
  addr: string;
  labels: Record<string, string>;
  engineVersion?: string;
  manager?: { leader: boolean; reachability: string; addr: string };
}

export interface ServicePort {
  targetPort: number;
  publishedPort: number;
  protocol?: 'tcp' | 'udp';
  /** Only host mode: orca never publishes through the ingress mesh. */
  mode?: 'host';
}

export interface ServiceSecretRef {
  secretId: string;
  secretName: string;
  /** File name under /run/secrets. */
  target?: string;
}

export interface ServiceSpec {
  name: string;
  image: string;
  /** Arguments after the entrypoint (`docker service create IMAGE ARGS...`). */
  args?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
  containerLabels?: Record<string, string>;
  mode: { global: true } | { replicas: number };
  /** Network targets; 'host' for host networking. */
  networks?: string[];
  mounts?: MountSpec[];
  ports?: ServicePort[];
  constraints?: string[];
  secrets?: ServiceSecretRef[];
  restartCondition?: 'none' | 'on-failure' | 'any';
  user?: string;
}

export interface ServiceInfo {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  spec: ServiceSpec;
}

export interface TaskFilters {
  service?: string;
  node?: string;
  desiredState?: 'running' | 'shutdown' | 'accepted';
  labels?: Record<string, string | true>;
}

export interface TaskInfo {
  id: string;
  serviceId: string;
  nodeId?: string;
  slot?: number;
  desiredState: string;
  /** new, pending, assigned, preparing, starting, running, complete, failed, rejected, ... */
  state: string;
  message: string;
  error?: string;
  containerId?: string;
}

export interface SecretInfo {
  id: string;
  version: number;
  name: string;
  labels: Record<string, string>;
  createdAt: string;
}

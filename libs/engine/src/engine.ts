import Docker from 'dockerode';
import { createReadStream, readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { EngineError, toEngineError } from './errors.js';
import type {
  BuildOptions,
  ContainerDetails,
  ContainerSpec,
  ContainerSummary,
  EngineConnection,
  EngineInfo,
  EngineVersion,
  ListContainersOptions,
  LogsOptions,
  MountSpec,
  NodeInfo,
  SecretInfo,
  ServiceInfo,
  ServiceSpec,
  SwarmInfo,
  SwarmInitOptions,
  SwarmJoinOptions,
  TaskFilters,
  TaskInfo,
} from './types.js';
import { tarFiles } from './tar.js';

// The raw API objects are loosely typed on purpose: we read only the fields we map.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Raw = any;

/** Docker Engine access for orca: the one wrapper around dockerode. */
export class Engine {
  private readonly docker: Docker;
  readonly description: string;

  constructor(connection: EngineConnection) {
    if ('socketPath' in connection) {
      this.docker = new Docker({ socketPath: connection.socketPath, timeout: connection.timeoutMs });
      this.description = `unix://${connection.socketPath}`;
    } else {
      this.docker = new Docker({
        host: connection.host,
        port: connection.port,
        protocol: 'https',
        ca: connection.tls.ca,
        cert: connection.tls.cert,
        key: connection.tls.key,
        timeout: connection.timeoutMs,
      });
      this.description = `tcp://${connection.host}:${connection.port}`;
    }
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toEngineError(operation, err);
    }
  }

  /** True when the engine answers; false when it cannot be reached. Other failures throw. */
  async ping(): Promise<boolean> {
    try {
      await this.call('ping', () => this.docker.ping());
      return true;
    } catch (err) {
      if (err instanceof EngineError && err.unreachable) return false;
      throw err;
    }
  }

  async info(): Promise<EngineInfo> {
    const r: Raw = await this.call('info', () => this.docker.info());
    const s: Raw = r.Swarm ?? {};
    return {
      id: r.ID,
      name: r.Name,
      serverVersion: r.ServerVersion,
      operatingSystem: r.OperatingSystem,
      architecture: r.Architecture,
      ncpu: r.NCPU,
      memTotal: r.MemTotal,
      containers: r.Containers,
      containersRunning: r.ContainersRunning,
      images: r.Images,
      dockerRootDir: r.DockerRootDir,
      labels: r.Labels ?? [],
      swarmNodeId: s.NodeID ?? '',
      nodeAddr: s.NodeAddr ?? '',
      swarm: {
        nodeId: s.NodeID ?? '',
        nodeAddr: s.NodeAddr ?? '',
        localNodeState: s.LocalNodeState ?? 'inactive',
        controlAvailable: Boolean(s.ControlAvailable),
        clusterId: s.Cluster?.ID,
        managers: s.Managers,
        nodes: s.Nodes,
        error: s.Error || undefined,
      },
    };
  }

  async version(): Promise<EngineVersion> {
    const r: Raw = await this.call('version', () => this.docker.version());
    return {
      version: r.Version,
      apiVersion: r.ApiVersion,
      minApiVersion: r.MinAPIVersion,
      os: r.Os,
      arch: r.Arch,
      kernelVersion: r.KernelVersion,
      goVersion: r.GoVersion,
      gitCommit: r.GitCommit,
    };
  }

  // ---- containers ----

  async listContainers(opts: ListContainersOptions = {}): Promise<ContainerSummary[]> {
    const filters: Record<string, string[]> = {};
    if (opts.labels) filters.label = labelFilters(opts.labels);
    if (opts.name) filters.name = [opts.name];
    const list: Raw[] = await this.call('list containers', () =>
      this.docker.listContainers({ all: opts.all ?? false, filters: JSON.stringify(filters) }),
    );
    return list.map((c) => ({
      id: c.Id,
      names: (c.Names ?? []).map((n: string) => n.replace(/^\//, '')),
      image: c.Image,
      labels: c.Labels ?? {},
      state: c.State,
      status: c.Status,
    }));
  }

  async inspectContainer(id: string): Promise<ContainerDetails> {
    const r: Raw = await this.call(`inspect container ${id}`, () => this.docker.getContainer(id).inspect());
    return {
      id: r.Id,
      name: String(r.Name ?? '').replace(/^\//, ''),
      image: r.Config?.Image,
      imageId: r.Image,
      labels: r.Config?.Labels ?? {},
      running: Boolean(r.State?.Running),
      status: r.State?.Status,
      exitCode: r.State?.ExitCode ?? 0,
      pid: r.State?.Pid ?? 0,
      restartCount: r.RestartCount ?? 0,
      startedAt: r.State?.StartedAt,
      finishedAt: r.State?.FinishedAt,
      networkMode: r.HostConfig?.NetworkMode,
      cmd: r.Config?.Cmd ?? [],
      env: r.Config?.Env ?? [],
    };
  }

  /** Creates and starts a container; a container that fails to start is removed again. */
  async createAndStartContainer(spec: ContainerSpec): Promise<{ id: string }> {
    const what = `create container ${spec.name ?? spec.image}`;
    const container = await this.call(what, () => this.docker.createContainer(containerCreateBody(spec)));
    try {
      await this.call(`start container ${spec.name ?? container.id}`, () => container.start());
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
    return { id: container.id };
  }

  /**
   * Writes files into a named volume (created if missing) through a stopped helper container and
   * the archive API, so their contents (keys) never appear in a container's config or argv.
   */
  async writeVolumeFiles(
    volume: string,
    image: string,
    files: Record<string, { content: string; mode?: number }>,
  ): Promise<void> {
    const container = await this.call(`create helper for volume ${volume}`, () =>
      this.docker.createContainer(
        containerCreateBody({
          image,
          cmd: ['true'],
          networkMode: 'none',
          mounts: [{ type: 'volume', source: volume, target: '/target' }],
        }),
      ),
    );
    try {
      const archive = tarFiles(
        Object.entries(files).map(([name, file]) => ({ name, content: file.content, mode: file.mode })),
      );
      await this.call(`write files to volume ${volume}`, () =>
        container.putArchive(archive, { path: '/target' }),
      );
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  async removeContainer(id: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    await this.call(`remove container ${id}`, () =>
      this.docker.getContainer(id).remove({ force: opts.force ?? false, v: opts.volumes ?? false }),
    );
  }

  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    try {
      await this.call(`stop container ${id}`, () => this.docker.getContainer(id).stop({ t: timeoutSeconds }));
    } catch (err) {
      // 304: already stopped.
      if (err instanceof EngineError && err.statusCode === 304) return;
      throw err;
    }
  }

  /** The container's output as text (the multiplexed stream is de-framed). */
  async containerLogs(id: string, opts: LogsOptions = {}): Promise<string> {
    const buf: Raw = await this.call(`logs of container ${id}`, () =>
      this.docker.getContainer(id).logs({
        follow: false,
        stdout: opts.stdout ?? true,
        stderr: opts.stderr ?? true,
        tail: opts.tail,
      }),
    );
    return demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
  }

  // ---- images ----

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.call(`inspect image ${ref}`, () => this.docker.getImage(ref).inspect());
      return true;
    } catch (err) {
      if (err instanceof EngineError && err.notFound) return false;
      throw err;
    }
  }

  /** Builds an image from a context directory (honouring its .dockerignore) or a tar stream; returns the image id. */
  async buildImage(context: string | Readable, tag: string, opts: BuildOptions = {}): Promise<string> {
    const file = typeof context === 'string' ? { context, src: readdirSync(context) } : context;
    const stream: Raw = await this.call(`build image ${tag}`, () =>
      this.docker.buildImage(file as Raw, {
        t: tag,
        dockerfile: opts.dockerfile,
        buildargs: opts.buildArgs,
        labels: opts.labels,
        rm: true,
        forcerm: true,
      }),
    );
    const events = await followJsonStream(`build image ${tag}`, stream, (e) => {
      if (typeof e.stream === 'string' && opts.onOutput) opts.onOutput(e.stream.replace(/\n$/, ''));
    });
    const aux = events.find((e) => e.aux?.ID)?.aux?.ID as string | undefined;
    if (aux) return aux;
    const built = events
      .map((e) => (typeof e.stream === 'string' ? /Successfully built ([0-9a-f]+)/.exec(e.stream) : null))
      .find((m) => m);
    if (built) return built[1];
    const inspected: Raw = await this.call(`inspect image ${tag}`, () => this.docker.getImage(tag).inspect());
    return inspected.Id;
  }

  /** `docker import` of a rootfs tar file under the given reference. */
  async importImage(tarPath: string, ref: string): Promise<void> {
    const { repo, tag } = splitRef(ref);
    const stream: Raw = await this.call(`import image ${ref}`, () =>
      this.docker.importImage(createReadStream(tarPath) as Raw, { repo, tag }),
    );
    await followJsonStream(`import image ${ref}`, stream);
  }

  // ---- swarm ----

  /** Initialises a swarm on this engine; returns the new node id. */
  async swarmInit(opts: SwarmInitOptions): Promise<string> {
    const id: Raw = await this.call('swarm init', () =>
      this.docker.swarmInit({
        ListenAddr: opts.listenAddr,
        AdvertiseAddr: opts.advertiseAddr,
        DataPathAddr: opts.dataPathAddr,
        ForceNewCluster: opts.forceNewCluster ?? false,
      }),
    );
    return typeof id === 'string' ? id.replace(/"/g, '').trim() : String(id);
  }

  async swarmInspect(): Promise<SwarmInfo> {
    const r: Raw = await this.call('swarm inspect', () => this.docker.swarmInspect());
    return {
      clusterId: r.ID,
      version: r.Version?.Index ?? 0,
      createdAt: r.CreatedAt,
      updatedAt: r.UpdatedAt,
      joinTokens: { worker: r.JoinTokens?.Worker, manager: r.JoinTokens?.Manager },
      trustRoot: r.TLSInfo?.TrustRoot,
      rootRotationInProgress: Boolean(r.RootRotationInProgress),
    };
  }

  async swarmJoin(opts: SwarmJoinOptions): Promise<void> {
    await this.call('swarm join', () =>
      this.docker.swarmJoin({
        RemoteAddrs: opts.remoteAddrs,
        JoinToken: opts.joinToken,
        AdvertiseAddr: opts.advertiseAddr,
        ListenAddr: opts.listenAddr,
        DataPathAddr: opts.dataPathAddr,
      }),
    );
  }

  async swarmLeave(force = false): Promise<void> {
    await this.call('swarm leave', () => this.docker.swarmLeave({ force }));
  }

  async listNodes(): Promise<NodeInfo[]> {
    const list: Raw[] = await this.call('list nodes', () => this.docker.listNodes());
    return list.map((n) => ({
      id: n.ID,
      version: n.Version?.Index ?? 0,
      hostname: n.Description?.Hostname ?? '',
      role: n.Spec?.Role,
      availability: n.Spec?.Availability,
      state: n.Status?.State,
      addr: n.Status?.Addr,
      labels: n.Spec?.Labels ?? {},
      engineVersion: n.Description?.Engine?.EngineVersion,
      manager: n.ManagerStatus
        ? {
            leader: Boolean(n.ManagerStatus.Leader),
            reachability: n.ManagerStatus.Reachability,
            addr: n.ManagerStatus.Addr,
          }
        : undefined,
    }));
  }

  async createService(spec: ServiceSpec): Promise<string> {
    const r: Raw = await this.call(`create service ${spec.name}`, () =>
      this.docker.createService(serviceBody(spec) as Raw),
    );
    return r.ID ?? r.id;
  }

  async inspectService(id: string): Promise<ServiceInfo> {
    const r: Raw = await this.call(`inspect service ${id}`, () => this.docker.getService(id).inspect());
    return {
      id: r.ID,
      version: r.Version?.Index ?? 0,
      createdAt: r.CreatedAt,
      updatedAt: r.UpdatedAt,
      spec: serviceSpecFromRaw(r.Spec),
    };
  }

  /** Replaces a service's spec; without `version`, the current one is read first. */
  async updateService(id: string, spec: ServiceSpec, version?: number): Promise<void> {
    const v = version ?? (await this.inspectService(id)).version;
    await this.call(`update service ${id}`, () =>
      this.docker.getService(id).update({ ...serviceBody(spec), version: v } as Raw),
    );
  }

  async removeService(id: string): Promise<void> {
    await this.call(`remove service ${id}`, () => this.docker.getService(id).remove());
  }

  async listServices(): Promise<ServiceInfo[]> {
    const list: Raw[] = await this.call('list services', () => this.docker.listServices());
    return list.map((r) => ({
      id: r.ID,
      version: r.Version?.Index ?? 0,
      createdAt: r.CreatedAt,
      updatedAt: r.UpdatedAt,
      spec: serviceSpecFromRaw(r.Spec),
    }));
  }

  async listTasks(filters: TaskFilters = {}): Promise<TaskInfo[]> {
    const f: Record<string, string[]> = {};
    if (filters.service) f.service = [filters.service];
    if (filters.node) f.node = [filters.node];
    if (filters.desiredState) f['desired-state'] = [filters.desiredState];
    if (filters.labels) f.label = labelFilters(filters.labels);
    const list: Raw[] = await this.call('list tasks', () =>
      this.docker.listTasks({ filters: JSON.stringify(f) }),
    );
    return list.map((t) => ({
      id: t.ID,
      serviceId: t.ServiceID,
      nodeId: t.NodeID || undefined,
      slot: t.Slot,
      desiredState: t.DesiredState,
      state: t.Status?.State,
      message: t.Status?.Message ?? '',
      error: t.Status?.Err || undefined,
      containerId: t.Status?.ContainerStatus?.ContainerID || undefined,
    }));
  }

  async createSecret(
    name: string,
    data: string | Buffer,
    labels: Record<string, string> = {},
  ): Promise<string> {
    const r: Raw = await this.call(`create secret ${name}`, () =>
      this.docker.createSecret({
        Name: name,
        Labels: labels,
        Data: Buffer.from(data).toString('base64'),
      } as Raw),
    );
    return r.ID ?? r.id;
  }

  async listSecrets(): Promise<SecretInfo[]> {
    const list: Raw[] = await this.call('list secrets', () => this.docker.listSecrets());
    return list.map((s) => ({
      id: s.ID,
      version: s.Version?.Index ?? 0,
      name: s.Spec?.Name,
      labels: s.Spec?.Labels ?? {},
      createdAt: s.CreatedAt,
    }));
  }

  async removeSecret(id: string): Promise<void> {
    await this.call(`remove secret ${id}`, () => this.docker.getSecret(id).remove());
  }
}

function labelFilters(labels: Record<string, string | true>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
}

function envList(env: Record<string, string> | undefined): string[] | undefined {
  return env ? Object.entries(env).map(([k, v]) => `${k}=${v}`) : undefined;
}

function envRecord(env: string[] | undefined): Record<string, string> | undefined {
  if (!env) return undefined;
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf('=');
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

function rawMount(m: MountSpec): Raw {
  return { Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly ?? false };
}

function containerCreateBody(spec: ContainerSpec): Raw {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol ?? 'tcp'}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: spec.cmd,
    Entrypoint: spec.entrypoint,
    Env: envList(spec.env),
    Labels: spec.labels ?? {},
    User: spec.user,
    WorkingDir: spec.workingDir,
    ExposedPorts: spec.ports?.length ? exposed : undefined,
    HostConfig: {
      NetworkMode: spec.networkMode ?? 'none',
      Mounts: (spec.mounts ?? []).map(rawMount),
      PortBindings: spec.ports?.length ? bindings : undefined,
      RestartPolicy: { Name: spec.restartPolicy ?? 'no' },
    },
  };
}

function serviceBody(spec: ServiceSpec): Raw {
  return {
    Name: spec.name,
    Labels: spec.labels ?? {},
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        Command: spec.entrypoint,
        Args: spec.args,
        Env: envList(spec.env),
        Labels: spec.containerLabels,
        User: spec.user,
        Mounts: (spec.mounts ?? []).map(rawMount),
        Secrets: (spec.secrets ?? []).map((s) => ({
          SecretID: s.secretId,
          SecretName: s.secretName,
          File: { Name: s.target ?? s.secretName, UID: '0', GID: '0', Mode: 0o444 },
        })),
      },
      Networks: (spec.networks ?? []).map((n) => ({ Target: n })),
      Placement: spec.constraints ? { Constraints: spec.constraints } : undefined,
      RestartPolicy: spec.restartCondition ? { Condition: spec.restartCondition } : undefined,
    },
    Mode: 'global' in spec.mode ? { Global: {} } : { Replicated: { Replicas: spec.mode.replicas } },
    EndpointSpec: spec.ports?.length
      ? {
          Mode: 'vip',
          Ports: spec.ports.map((p) => ({
            Protocol: p.protocol ?? 'tcp',
            TargetPort: p.targetPort,
            PublishedPort: p.publishedPort,
            PublishMode: 'host',
          })),
        }
      : undefined,
  };
}

function serviceSpecFromRaw(s: Raw): ServiceSpec {
  const c: Raw = s?.TaskTemplate?.ContainerSpec ?? {};
  const spec: ServiceSpec = {
    name: s?.Name,
    image: c.Image,
    args: c.Args,
    entrypoint: c.Command,
    env: envRecord(c.Env),
    labels: s?.Labels ?? {},
    containerLabels: c.Labels,
    mode: s?.Mode?.Global ? { global: true } : { replicas: s?.Mode?.Replicated?.Replicas ?? 1 },
    networks: (s?.TaskTemplate?.Networks ?? []).map((n: Raw) => n.Target),
    mounts: (c.Mounts ?? []).map((m: Raw) => ({
      type: m.Type,
      source: m.Source,
      target: m.Target,
      readOnly: Boolean(m.ReadOnly),
    })),
    ports: (s?.EndpointSpec?.Ports ?? []).map((p: Raw) => ({
      targetPort: p.TargetPort,
      publishedPort: p.PublishedPort,
      protocol: p.Protocol,
      mode: 'host' as const,
    })),
    constraints: s?.TaskTemplate?.Placement?.Constraints,
    secrets: (c.Secrets ?? []).map((x: Raw) => ({
      secretId: x.SecretID,
      secretName: x.SecretName,
      target: x.File?.Name,
    })),
    restartCondition: s?.TaskTemplate?.RestartPolicy?.Condition,
    user: c.User,
  };
  return spec;
}

/** Splits `repo[:tag]` (a registry port is not a tag). */
export function splitRef(ref: string): { repo: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: 'latest' };
}

/** Reads a JSON-lines progress stream to its end; an `error` event becomes an EngineError. */
function followJsonStream(operation: string, stream: Readable, onEvent?: (e: Raw) => void): Promise<Raw[]> {
  return new Promise((resolve, reject) => {
    const events: Raw[] = [];
    let buffered = '';
    let failure: EngineError | undefined;
    const handle = (line: string) => {
      if (line.trim() === '') return;
      let e: Raw;
      try {
        e = JSON.parse(line);
      } catch {
        return;
      }
      events.push(e);
      if (e.error || e.errorDetail)
        failure ??= new EngineError(500, `${operation}: ${e.error ?? e.errorDetail?.message}`, operation);
      onEvent?.(e);
    };
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        handle(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
      }
    });
    stream.on('error', (err) => reject(toEngineError(operation, err)));
    stream.on('end', () => {
      handle(buffered);
      if (failure) reject(failure);
      else resolve(events);
    });
  });
}

/** De-frames Docker's multiplexed stdout/stderr stream (8-byte headers); TTY output passes unchanged. */
export function demuxLogs(buf: Buffer): string {
  const framed = buf.length >= 8 && buf[0] <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
  if (!framed) return buf.toString('utf8');
  const parts: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off + 4);
    parts.push(buf.subarray(off + 8, off + 8 + len));
    off += 8 + len;
  }
  return Buffer.concat(parts).toString('utf8');
}
